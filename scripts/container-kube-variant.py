"""Derives the `podman kube play` variant of deploy/k8s/ that scripts/containers-test.sh runs.

The manifests are read as they are and changed only where podman or this machine
require it; everything else (commands, args, every other variable, security contexts,
resources, init container, volumes) is what a cluster would run. The changes:

- Kinds podman does not run are left out: Namespace, Service, HorizontalPodAutoscaler,
  PodDisruptionBudget, NetworkPolicy and the operator's ServiceMonitor and
  PrometheusRule (podman 4 plays Pods, Deployments, ConfigMaps, Secrets and volumes
  only). So nothing here tests Service routing, autoscaling, disruption budgets or
  network policy; the test scrapes each /metrics itself.
- The migration Job becomes a Pod (podman 4.3 has no Jobs; restartPolicy OnFailure
  retries like the Job's backoffLimit).
- Every pod gets restartPolicy OnFailure: podman 4.3 applies the policy to init
  containers too, and under Always it restarts the finished init container and then
  fails to remove it.
- hostNetwork: true and one replica: only loopback traffic is allowed on this machine
  (podman's bridge hands out 10.88.x addresses), and two replicas on the host network
  would bind the same address. Each Deployment listens on its own 127.0.0.x address
  (ADDRESSES below), away from the ports of `make up` and of the compose test.
- Container ports are removed (podman 4.3 turns them into port mappings, which it
  refuses on the host network), and so are probes: podman 4.3 turns liveness probes
  into healthchecks driven by systemd timers, which this machine does not run, and
  httpGet probes would need curl in the images; readiness and startup probes it
  ignores. The test waits on the endpoints itself.
- Images: registry.example.com/nova/X:0.1.0 becomes localhost/nova/X:TAG (built here).
- Secret nova-secrets is not in the variant: this script writes its keys as JSON for
  `podman secret create` (podman 4.3 stores a played Secret as YAML but reads
  secretKeyRef values as JSON). Secret volumes (nova-grpc-tls) become hostPath
  volumes of a folder holding the same files (podman 4.3 mounts a Secret volume as
  an empty named volume). The values are generated per run by containers-test.sh.
- PostgreSQL and Redis, which the manifests expect from outside the cluster
  (database-url, redis-url), are added as two Deployments of the postgres:16 and
  redis:7 images.
- ConfigMap values and a few listen/URL variables point at those addresses (ENV).
  The gRPC hop stays TLS, verified against the generated CA; the edge keeps the
  manifest's NOVA_JWT_ISSUER / NOVA_JWT_AUDIENCE, so test tokens carry them.

Usage: container-kube-variant.py --tag dev --tls-dir DIR --out variant.yaml
       --secret-json nova-secrets.json   (secrets from NOVA_* environment variables,
       the same ones compose.yaml takes); prints edge=URL and metrics=URL,… to reach.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import os
import sys
from pathlib import Path

import yaml

K8S = Path(__file__).resolve().parent.parent / "deploy" / "k8s"

# Listen addresses of the variant (hostNetwork). RTMP stays on 127.0.0.1: the relay and
# the ABR transcoder connect to rtmp://127.0.0.1:PORT inside the "pod".
POSTGRES = "127.0.0.31:35432"
REDIS = "127.0.0.32:36379"
GRPC = "127.0.0.33:35051"
CP_METRICS = "127.0.0.33:39464"
EDGE = "127.0.0.34:38080"
EDGE_METRICS = "127.0.0.34:39465"
RTMP_PORT = "31935"
ORIGIN = "127.0.0.35:38088"
STAT = "127.0.0.35:38089"
HOOKS = "127.0.0.35:38090"
HOOKS_METRICS = "127.0.0.35:39466"

#: What containers-test.sh needs, printed as key=value lines (jwt_issuer and
#: jwt_audience are added from the edge's manifest).
ADDRESSES = {
    "edge": f"http://{EDGE}",
    "metrics": f"http://{CP_METRICS}/metrics,http://{EDGE_METRICS}/metrics,http://{HOOKS_METRICS}/metrics",
}

#: Label on every pod of the variant: containers-test finds its pods by it (logs, and
#: clean-up when `kube play --down` stops at a pod that never came up).
LABEL = "io.nova-streaming/containers-test"

DROPPED_KINDS = {
    "Namespace", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
    "NetworkPolicy", "ServiceMonitor", "PrometheusRule",
}

CONFIG = {
    "rtmp-url": f"rtmp://127.0.0.1:{RTMP_PORT}/live",
    "ingest-a-origin-url": f"http://{ORIGIN}",
    # No S3 server on the test host: recording off, /vod/ a 404.
    "asset-store": "",
    "vod": "off",
    "vod-url": f"http://{ORIGIN}/vod",
}

# container name → variable → value. Each variable must already be in the manifest,
# except those in ADDED (the manifest leaves them at the image's default).
ENV = {
    "control-plane": {"NOVA_GRPC_ADDR": GRPC, "NOVA_METRICS_ADDR": CP_METRICS},
    "edge": {
        "NOVA_EDGE_ADDR": EDGE,
        "NOVA_EDGE_METRICS_ADDR": EDGE_METRICS,
        "NOVA_CONTROL_PLANE_URL": f"https://{GRPC}",
    },
    "render-nginx-conf": {
        "NOVA_NGINX_RTMP_PORT": RTMP_PORT,
        "NOVA_NGINX_RTMP_LISTEN": f"127.0.0.1:{RTMP_PORT}",
        "NOVA_NGINX_HTTP_LISTEN": ORIGIN,
        "NOVA_NGINX_STAT_LISTEN": STAT,
        "NOVA_NGINX_HOOKS_URL": f"http://{HOOKS}/rtmp",
    },
    "ingest-hooks": {
        "NOVA_HOOKS_ADDR": HOOKS,
        "NOVA_HOOKS_METRICS_ADDR": HOOKS_METRICS,
        "NOVA_CONTROL_PLANE_URL": f"https://{GRPC}",
        "NOVA_RELAY_URL": f"rtmp://127.0.0.2:{RTMP_PORT}/stream",
        "NOVA_RECORD_URL": f"rtmp://127.0.0.2:{RTMP_PORT}/record",
        "NOVA_STAT_URL": f"http://{STAT}/stat",
    },
}
ADDED = {("render-nginx-conf", "NOVA_NGINX_RTMP_LISTEN")}


def secrets() -> dict[str, str]:
    """Returns the nova-secrets keys from the NOVA_* variables compose.yaml also takes."""
    names = ["NOVA_POSTGRES_PASSWORD", "NOVA_SERVICE_TOKEN", "NOVA_EDGE_SERVICE_TOKEN",
             "NOVA_INGEST_SERVICE_TOKEN", "NOVA_HOOKS_SECRET", "NOVA_JWT_HS256_SECRET"]
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        sys.exit(f"container-kube-variant: set {', '.join(missing)}")
    env = os.environ
    return {
        "database-url": f"postgres://nova:{env['NOVA_POSTGRES_PASSWORD']}@{POSTGRES}/nova",
        "redis-url": f"redis://{REDIS}/",
        "service-token": env["NOVA_SERVICE_TOKEN"],
        "edge-service-token": env["NOVA_EDGE_SERVICE_TOKEN"],
        "ingest-service-token": env["NOVA_INGEST_SERVICE_TOKEN"],
        "hooks-secret": env["NOVA_HOOKS_SECRET"],
        "jwt-hs256-secret": env["NOVA_JWT_HS256_SECRET"],
    }


def engine(name: str, image: str, args: list[str], env: dict[str, str]) -> dict:
    """Returns a one-replica host-network Deployment of a stand-in engine."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"nova-{name}", "labels": {"app.kubernetes.io/name": f"nova-{name}"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": f"nova-{name}"}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": f"nova-{name}", LABEL: "true"}},
                "spec": {
                    "hostNetwork": True,
                    "containers": [{
                        "name": name,
                        "image": image,
                        "args": args,
                        "env": [{"name": k, "value": v} for k, v in env.items()],
                    }],
                },
            },
        },
    }


def adapt_pod(where: str, pod: dict, tag: str, tls_dir: Path, used: set) -> None:
    """Applies the host-network, image, probe, env and volume changes to a pod spec."""
    spec = pod["spec"]
    spec["hostNetwork"] = True
    # podman 4.3 applies the pod's restart policy to init containers as well: under
    # Always it restarts the finished render-nginx-conf and then fails to remove it
    # ("cannot remove container … as it is running"). OnFailure still restarts a
    # container that crashes (the control plane until PostgreSQL is up).
    spec["restartPolicy"] = "OnFailure"
    pod["metadata"]["labels"][LABEL] = "true"
    for c in spec.get("initContainers", []) + spec["containers"]:
        program = c["image"].rsplit("/", 1)[-1].split(":", 1)[0]
        c["image"] = f"localhost/nova/{program}:{tag}"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            c.pop(probe, None)
        # On the host network there is nothing to publish, and podman 4.3 refuses
        # containerPorts there ("PortMappings can only be used with Bridge …").
        c.pop("ports", None)
        overrides = ENV.get(c["name"], {})
        env = c.setdefault("env", [])
        present = {e["name"] for e in env}
        for name, value in overrides.items():
            if name not in present and (c["name"], name) not in ADDED:
                sys.exit(f"container-kube-variant: {where}/{c['name']} has no {name} any more; update ENV")
            env[:] = [e for e in env if e["name"] != name]
            env.append({"name": name, "value": value})
            used.add((c["name"], name))
        if c["name"] == "edge":
            # Test tokens must carry the iss and aud the manifest makes the edge require.
            for e in env:
                if e["name"] in ("NOVA_JWT_ISSUER", "NOVA_JWT_AUDIENCE") and "value" in e:
                    ADDRESSES[e["name"].removeprefix("NOVA_").lower()] = e["value"]
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            source = volume.pop("secret")
            folder = tls_dir / volume["name"]
            folder.mkdir(parents=True, exist_ok=True)
            for item in source.get("items", []):
                src = tls_dir / item["key"]
                dst = folder / item["path"]
                dst.write_bytes(src.read_bytes())
                # The hostPath keeps file owners: readable by the pod's user (10001).
                # (Not as non-root, e.g. scripts/validate-deploy.sh: owner unchanged.)
                try:
                    os.chown(dst, 10001, 10001)
                except PermissionError:
                    pass
                dst.chmod(0o400)
            folder.chmod(0o755)
            volume["hostPath"] = {"path": str(folder), "type": "Directory"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", default="dev", help="tag of the localhost/nova/* images")
    parser.add_argument("--tls-dir", type=Path, required=True,
                        help="folder with tls.crt, tls.key, ca.crt (nova-grpc-tls's keys)")
    parser.add_argument("--out", type=Path, required=True, help="the variant YAML to write")
    parser.add_argument("--secret-json", type=Path, required=True,
                        help="where to write nova-secrets for `podman secret create`")
    args = parser.parse_args()

    values = secrets()
    docs = [d for f in sorted(K8S.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    out, used = [], set()
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind in DROPPED_KINDS:
            continue
        doc = copy.deepcopy(doc)
        doc["metadata"].pop("namespace", None)
        if kind == "Secret":
            if name == "nova-secrets":
                example = set(doc["stringData"])
                if example != set(values):
                    sys.exit(f"container-kube-variant: nova-secrets keys {sorted(example)} "
                             f"differ from the generated {sorted(values)}")
            continue  # nova-secrets: podman secret; nova-grpc-tls: hostPath volumes
        if kind == "ConfigMap":
            for key, value in CONFIG.items():
                if key not in doc["data"]:
                    sys.exit(f"container-kube-variant: ConfigMap {name} has no key {key} any more")
                doc["data"][key] = value
        elif kind == "Deployment":
            doc["spec"]["replicas"] = 1
            adapt_pod(f"Deployment/{name}", doc["spec"]["template"], args.tag, args.tls_dir, used)
        elif kind == "Job":
            template = doc["spec"]["template"]
            adapt_pod(f"Job/{name}", template, args.tag, args.tls_dir, used)
            doc = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": name, "labels": template["metadata"]["labels"]},
                   "spec": template["spec"]}
        else:
            sys.exit(f"container-kube-variant: {kind}/{name} is new: decide how podman plays it")
        out.append(doc)
    unused = {(c, n) for c, names in ENV.items() for n in names} - used
    if unused:
        sys.exit(f"container-kube-variant: no container took {sorted(unused)}; update ENV")

    pg_host, pg_port = POSTGRES.split(":")
    redis_host, redis_port = REDIS.split(":")
    engines = [
        engine("postgres", "docker.io/library/postgres:16",
               ["postgres", "-c", f"listen_addresses={pg_host}"],
               {"PGPORT": pg_port, "POSTGRES_DB": "nova", "POSTGRES_USER": "nova",
                "POSTGRES_PASSWORD": os.environ["NOVA_POSTGRES_PASSWORD"]}),
        engine("redis", "docker.io/library/redis:7",
               ["redis-server", "--bind", redis_host, "--port", redis_port,
                "--save", "", "--appendonly", "no"], {}),
    ]
    header = ("# Generated by scripts/container-kube-variant.py from deploy/k8s/ for\n"
              "# `podman kube play` on a loopback-only machine; see that script for every change.\n")
    args.out.write_text(header + yaml.safe_dump_all(engines + out, sort_keys=False))
    args.secret_json.write_text(json.dumps(
        {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}))
    args.secret_json.chmod(0o600)
    for key, value in ADDRESSES.items():
        print(f"{key}={value}")


if __name__ == "__main__":
    main()
