#!/usr/bin/env bash
# Checks the deployment files offline: Prometheus rules (promtool check + unit tests),
# the generated PrometheusRule is current, Kubernetes core resources against their
# schemas (kubernetes-validate, strict), operator resources against the operator's CRD
# schemas, the wiring between manifests, compose file and Dockerfile (every NOVA_*
# variable set is one its program reads; Secret/ConfigMap keys and Service ports
# exist; the same for the host-network compose override of make containers-test), the
# nginx image's render script against deploy/nginx (nginx -t), that the kube-play
# variant of make containers-test still derives from the manifests, and the Grafana
# dashboard is valid JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=.nova/tools
promtool check rules deploy/prometheus/rules.yml
(cd deploy/prometheus && promtool test rules rules_test.yml)
"$tools/venv/bin/python" scripts/gen-prometheusrule.py --check

# Core kinds. kubernetes-validate only warns about a kind it has no schema for (a
# typo such as `Deploymnet` would pass), so any warning except for the operator's
# kinds, which validate-crds.mjs checks, is a failure.
k8s=(deploy/k8s/*.yaml)
if ! report=$("$tools/venv/bin/kubernetes-validate" --strict --quiet "${k8s[@]}"); then
  echo "$report" >&2
  exit 1
fi
unexpected=$(grep -v "with api version monitoring.coreos.com/v1 " <<<"$report" || true)
if [ -n "$unexpected" ]; then
  echo "$unexpected" >&2
  echo "validate-deploy: kubernetes-validate warned about the lines above" >&2
  exit 1
fi
node scripts/validate-crds.mjs "${k8s[@]}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$tools/venv/bin/python" - "$work/nova-nginx" "${k8s[@]}" <<'PY'
"""Cross-checks the manifests, compose file and Dockerfile against the code."""
import re
import sys
from pathlib import Path

import yaml

errors = []
dockerfile = Path("deploy/docker/Dockerfile").read_text()
stages = set(re.findall(r"^FROM \S+ AS (\S+)$", dockerfile, re.M))
if not re.search(r"^COPY --chmod=0755 deploy/docker/nova-nginx /usr/local/bin/nova-nginx$", dockerfile, re.M):
    errors.append("Dockerfile: nginx-rtmp does not install deploy/docker/nova-nginx as /usr/local/bin/nova-nginx")
script = Path("deploy/docker/nova-nginx").read_text()
reads = {
    name: set(re.findall(r'env = "(NOVA_[A-Z0-9_]+)"', Path(f"{name}/src/config.rs").read_text()))
    for name in ("control-plane", "edge", "ingest-hooks")
}
# Every binary serves HTTP through nova-runtime's server, which reads its own limits.
for name in reads:
    reads[name] |= set(re.findall(r'env = "(NOVA_[A-Z0-9_]+)"', Path("runtime/src/http.rs").read_text()))
# nova-runtime's shared config: the log settings are flattened into every binary's
# config, the control-plane connection (URL, CA, token) into the edge's and ingest-hooks'.
shared = Path("runtime/src/config.rs").read_text()
def flattened(struct):
    block = re.search(r"pub struct " + struct + r" \{(.*?)\n\}", shared, re.S).group(1)
    return set(re.findall(r'env = "(NOVA_[A-Z0-9_]+)"', block))
for name in reads:
    reads[name] |= flattened("LogArgs")
for name in ("edge", "ingest-hooks"):
    reads[name] |= flattened("UpstreamArgs")
# The control plane and ingest-hooks flatten the asset store's variables into theirs.
for name in ("control-plane", "ingest-hooks"):
    reads[name] |= set(re.findall(r'env = "(NOVA_[A-Z0-9_]+)"', Path("store/src/config.rs").read_text()))
reads["nginx-rtmp"] = set(re.findall(r"\$\{?(NOVA_[A-Z0-9_]+)", script))
for program in ("control-plane", "edge", "ingest-hooks", "nginx-rtmp"):
    if program not in stages:
        errors.append(f"Dockerfile: no stage `{program}`")


def program_of(image):
    """`registry/nova/edge:0.1.0` or `nova/edge:dev` → `edge`."""
    return image.rsplit("/", 1)[-1].split(":", 1)[0]


def check_env(where, program, names):
    for name in names:
        if name.startswith("NOVA_") and name not in reads.get(program, ()):
            errors.append(f"{where}: {program} does not read {name}")


# Dockerfile ENV instructions (with their continuation lines), per stage.
stage = None
for m in re.finditer(r"^(?:FROM \S+ AS (\S+)|ENV ((?:[^\n]*\\\n)*[^\n]*))$", dockerfile, re.M):
    if m.group(1):
        stage = m.group(1)
    else:
        check_env(f"Dockerfile stage {stage}", stage, re.findall(r"\b(NOVA_[A-Z0-9_]+)=", m.group(2)))

# Kubernetes: env per container, Secret/ConfigMap keys, Service ports.
docs = [d for f in sys.argv[2:] for d in yaml.safe_load_all(Path(f).read_text()) if d]
secret_keys = {k for d in docs if d["kind"] == "Secret" for k in d.get("stringData", {})}
config_keys = {k for d in docs if d["kind"] == "ConfigMap" for k in d.get("data", {})}
pods = []
for d in docs:
    spec = d.get("spec", {})
    template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template")
    if not template:
        continue
    pods.append(template)
    pod = template["spec"]
    for c in pod.get("initContainers", []) + pod["containers"]:
        where = f"{d['kind']}/{d['metadata']['name']}/{c['name']}"
        env = c.get("env", [])
        check_env(where, program_of(c["image"]), [e["name"] for e in env])
        for e in env:
            ref = e.get("valueFrom", {})
            if (key := ref.get("secretKeyRef", {}).get("key")) and key not in secret_keys:
                errors.append(f"{where}: Secret key {key} is not in secret.example.yaml")
            if (key := ref.get("configMapKeyRef", {}).get("key")) and key not in config_keys:
                errors.append(f"{where}: ConfigMap key {key} is not in config.yaml")
for d in docs:
    if d["kind"] != "Service":
        continue
    selector = d["spec"]["selector"].items()
    matched = [p for p in pods if selector <= p["metadata"]["labels"].items()]
    if not matched:
        errors.append(f"Service/{d['metadata']['name']}: selects no pod")
    names = {port["name"] for t in matched for c in t["spec"]["containers"] for port in c.get("ports", [])}
    for port in d["spec"]["ports"]:
        target = port.get("targetPort")
        if isinstance(target, str) and target not in names:
            errors.append(f"Service/{d['metadata']['name']}: no container port named {target}")

# Compose: parses, builds existing stages, sets only variables its programs read.
compose = yaml.safe_load(Path("deploy/docker/compose.yaml").read_text())
for name, service in compose["services"].items():
    if target := service.get("build", {}).get("target"):
        if target not in stages:
            errors.append(f"compose.yaml: {name} builds unknown stage {target}")
    program = service.get("build", {}).get("target") or program_of(service["image"])
    check_env(f"compose.yaml: {name}", program, service.get("environment", {}))

# The host-network override of make containers-test: overrides existing services only,
# sets only variables their programs read. Its compose merge tags read as plain values.
class ComposeLoader(yaml.SafeLoader):
    """A SafeLoader that reads compose's `!override` and `!reset` tags as plain values."""


def plain(loader, node):
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    return loader.construct_scalar(node)


for tag in ("!override", "!reset"):
    ComposeLoader.add_constructor(tag, plain)
override = yaml.load(Path("deploy/podman/compose.host-network.yaml").read_text(), Loader=ComposeLoader)
for name, service in override["services"].items():
    base = compose["services"].get(name)
    if base is None:
        errors.append(f"compose.host-network.yaml: {name} is not a service of compose.yaml")
        continue
    program = base.get("build", {}).get("target") or program_of(base["image"])
    check_env(f"compose.host-network.yaml: {name}", program, service.get("environment", {}))

# hls.js: the image and the local stack serve the same version.
local = re.search(r"hls\.js@([0-9.]+)", Path("scripts/install-deps.sh").read_text()).group(1)
image = re.search(r"ARG HLS_JS_VERSION=([0-9.]+)", dockerfile).group(1)
if local != image:
    errors.append(f"hls.js {image} in the Dockerfile, {local} in scripts/install-deps.sh")

Path(sys.argv[1]).write_text(script)
for e in errors:
    print(f"validate-deploy: {e}", file=sys.stderr)
sys.exit(1 if errors else 0)
PY

# The nginx image's render script (deploy/docker/nova-nginx) fills deploy/nginx/ completely
# and nginx accepts the result (nginx -t), with and without ABR, and with each way the
# VOD origin reads asset files (an S3 endpoint by address: no DNS needed here).
for setting in "false off" "true off" "false file" "false s3"; do
  set -- $setting
  NOVA_NGINX_TEMPLATES=deploy/nginx NOVA_NGINX_PREFIX="$work/run-$1-$2" \
    NOVA_NGINX_MEDIA="$work/media" NOVA_NGINX_RECORD_PATH="$work/recordings" \
    NOVA_HOOKS_SECRET=validate-deploy-secret NOVA_ABR=$1 NOVA_NGINX_VOD=$2 \
    NOVA_NGINX_VOD_ROOT="$work/assets" NOVA_NGINX_VOD_S3_ENDPOINT=http://127.0.0.1:9000 \
    sh "$work/nova-nginx" render 2>"$work/log" \
    || { cat "$work/log" >&2; echo "validate-deploy: nova-nginx render failed (NOVA_ABR=$1, NOVA_NGINX_VOD=$2)" >&2; exit 1; }
done

# The `podman kube play` variant of make containers-test still derives from deploy/k8s
# (the script fails on a variable, ConfigMap key, Secret key or kind it no longer finds).
mkdir "$work/kube"
touch "$work/kube/tls.crt" "$work/kube/tls.key" "$work/kube/ca.crt"
NOVA_POSTGRES_PASSWORD=validate NOVA_SERVICE_TOKEN=validate NOVA_EDGE_SERVICE_TOKEN=validate \
  NOVA_INGEST_SERVICE_TOKEN=validate NOVA_HOOKS_SECRET=validate NOVA_JWT_HS256_SECRET=validate \
  "$tools/venv/bin/python" scripts/container-kube-variant.py --tls-dir "$work/kube" \
  --out "$work/kube/variant.yaml" --secret-json "$work/kube/secrets.json" >/dev/null

python3 -m json.tool grafana/nova-streaming.json >/dev/null
echo "validate-deploy: ok"
