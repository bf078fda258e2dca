#!/usr/bin/env bash
# `make containers-test`: builds the images of deploy/docker/Dockerfile with podman,
# runs deploy/docker/compose.yaml with podman-compose and deploy/k8s/ with
# `podman kube play`, and goes live through each (scripts/container-golive.py: a stream
# created over the edge's REST API, ffmpeg into nginx-rtmp, the HLS playlist, the
# viewer count over WebSocket, every /metrics). Everything it starts is removed at the
# end, also on failure. Not part of `make test`: it takes minutes. docs/containers.md.
#
# Only loopback traffic: both deployments use host networking, each service on its
# own 127.0.0.x address (deploy/podman/compose.host-network.yaml,
# scripts/container-kube-variant.py), away from the ports of `make up`.
#
# Variables:
#   NOVA_CONTAINERS_BINARIES  host (default): `cargo build --release` here, then the
#                             images take those binaries (Dockerfile NOVA_BINARIES);
#                             container: the Dockerfile's own in-container build
#                             (the rust:1.95-bookworm stand-in; much slower here)
#   NOVA_PREBUILT_DIR         with host: take the three binaries from this folder
#                             instead of building them (e.g. a CI artifact)
#   NOVA_CONTAINERS_ONLY      compose or kube: run only that half
set -euo pipefail
cd "$(dirname "$0")/.."

tools=.nova/tools
py=$tools/venv/bin/python
tag=containers-test
project=nova-containers-test
binaries=${NOVA_CONTAINERS_BINARIES:-host}
only=${NOVA_CONTAINERS_ONLY:-}

step() { printf 'containers-test: [%3ds] %s\n' "$SECONDS" "$*"; }
fail() { echo "containers-test: FAILED: $*" >&2; exit 1; }

case $binaries in host | container) ;; *) fail "NOVA_CONTAINERS_BINARIES must be host or container" ;; esac
case $only in '' | compose | kube) ;; *) fail "NOVA_CONTAINERS_ONLY must be compose or kube" ;; esac
[ -x "$py" ] && "$py" -c 'import websockets, yaml' 2>/dev/null \
  || fail "$py with websockets and PyYAML is missing: run make deps (scripts/install-deps.sh)"
command -v ffmpeg >/dev/null || fail "ffmpeg is missing: run make deps"
command -v openssl >/dev/null || fail "openssl is missing: run make deps"

# --- tools: podman (runc, containers.conf), podman-compose -------------------------
step "podman set-up"
bash scripts/container-podman-setup.sh
if [ ! -x "$tools/venv/bin/podman-compose" ]; then
  step "pip install podman-compose"
  "$tools/venv/bin/pip" install -q podman-compose==1.6.0
fi

# --- base images: stand-ins for Docker Hub's, kept between runs ---------------------
step "base images"
base=(debian node postgres redis)
[ "$binaries" = container ] && base+=(rust)
bash scripts/container-base-images.sh "${base[@]}"

work=$(mktemp -d /var/tmp/nova-containers-test.XXXXXX)
chmod 755 "$work"

compose_up=false
kube_up=false
variant=$work/kube-play.yaml
compose() {
  "$tools/venv/bin/podman-compose" -p "$project" \
    -f deploy/docker/compose.yaml -f deploy/podman/compose.host-network.yaml "$@"
}
# The containers podman-compose / kube play made (their logs on failure, their volumes).
compose_containers() { podman ps -a --filter "label=com.docker.compose.project=$project" --format '{{.Names}}'; }
kube_pods() { podman pod ps -q --filter "label=io.nova-streaming/containers-test=true"; }
kube_containers() {
  local pod
  for pod in $(kube_pods); do
    podman ps -a --filter "pod=$pod" --format '{{.Names}}' | grep -v -- '-infra$' || true
  done
}
show_logs() {
  local c
  for c in "$@"; do
    echo "----- podman logs --tail 30 $c" >&2
    podman logs --tail 30 "$c" 2>&1 | sed 's/^/    /' >&2 || true
  done
}
# volumes_of CONTAINER…: the named and anonymous volumes mounted (the image VOLUMEs of
# postgres and redis outlive `podman-compose down` and `pod rm` otherwise).
volumes_of() {
  [ $# -eq 0 ] || podman inspect -f '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}' "$@" 2>/dev/null || true
}
kube_down() {
  local volumes pods
  volumes=$(volumes_of $(kube_containers))
  # podman 4.3's --down stops at the first pod that is missing: the rest by label.
  podman kube play --down "$variant" >/dev/null 2>&1
  pods=$(kube_pods)
  [ -z "$pods" ] || podman pod rm -f -t 10 $pods >/dev/null 2>&1
  [ -z "$volumes" ] || podman volume rm -f $volumes >/dev/null 2>&1
}
cleanup() {
  local status=$? volumes
  set +e
  if [ $status -ne 0 ]; then
    $compose_up && show_logs $(compose_containers)
    $kube_up && show_logs $(kube_containers)
  fi
  if $compose_up; then
    step "compose down"
    volumes=$(volumes_of $(compose_containers))
    compose down -v -t 10 >"$work/compose-down.log" 2>&1 || cat "$work/compose-down.log" >&2
    [ -z "$volumes" ] || podman volume rm -f $volumes >/dev/null 2>&1
  fi
  if $kube_up; then
    step "kube play --down"
    kube_down
  fi
  podman secret rm nova-secrets >/dev/null 2>&1
  rm -rf "$work"
  if [ $status -eq 0 ]; then step "ok"; else step "failed (exit $status)"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- secrets: fresh per run, URL-safe (compose.yaml's .env contract) ----------------
NOVA_POSTGRES_PASSWORD=$(openssl rand -hex 16)
NOVA_SERVICE_TOKEN=nova_svc_$(openssl rand -hex 24)
NOVA_EDGE_SERVICE_TOKEN=nova_svc_edge_$(openssl rand -hex 24)
NOVA_INGEST_SERVICE_TOKEN=nova_svc_ingest_$(openssl rand -hex 24)
NOVA_HOOKS_SECRET=nova_hook_$(openssl rand -hex 24)
NOVA_JWT_HS256_SECRET=$(openssl rand -hex 32)
NOVA_TAG=$tag
export NOVA_POSTGRES_PASSWORD NOVA_SERVICE_TOKEN NOVA_EDGE_SERVICE_TOKEN \
  NOVA_INGEST_SERVICE_TOKEN NOVA_HOOKS_SECRET NOVA_JWT_HS256_SECRET NOVA_TAG

# --- Nova images ----------------------------------------------------------------------
build_args=()
if [ "$binaries" = host ]; then
  if [ -n "${NOVA_PREBUILT_DIR:-}" ]; then
    bin_dir=$NOVA_PREBUILT_DIR
  else
    step "cargo build --release (control plane, edge, ingest-hooks)"
    cargo build --release --locked -q -p nova-control-plane -p nova-edge -p nova-ingest-hooks
    bin_dir=$(cargo metadata --format-version 1 --no-deps | "$py" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release
  fi
  mkdir -p "$work/binaries"
  for b in nova-control-plane nova-edge nova-ingest-hooks; do
    [ -x "$bin_dir/$b" ] || fail "$bin_dir/$b is missing"
    cp "$bin_dir/$b" "$work/binaries/"
  done
  printf 'FROM scratch\nCOPY nova-control-plane nova-edge nova-ingest-hooks /out/\n' >"$work/binaries/Containerfile"
  podman build --quiet -t "localhost/nova/prebuilt-binaries:$tag" "$work/binaries" >/dev/null
  build_args=(--build-arg "NOVA_BINARIES=localhost/nova/prebuilt-binaries:$tag")
fi
for target in control-plane edge ingest-hooks nginx-rtmp; do
  step "podman build --target $target"
  # Host network: apt-get and npm in the build reach their registries over loopback-only rules.
  podman build --network host --layers -f deploy/docker/Dockerfile --target "$target" \
    "${build_args[@]}" -t "localhost/nova/$target:$tag" . >"$work/build-$target.log" 2>&1 \
    || { tail -n 40 "$work/build-$target.log" >&2; fail "podman build --target $target (log above)"; }
done

# wait_healthy CONTAINER SECONDS: runs the container's own healthcheck until it passes.
wait_healthy() {
  local c=$1 limit=$2 end=$((SECONDS + $2))
  until podman healthcheck run "$c" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || fail "waited ${limit}s for $c's healthcheck ($(podman inspect -f '{{.Config.Healthcheck.Test}}' "$c" 2>/dev/null))"
    sleep 1
  done
}
compose_name() {
  podman ps -a --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=$1" --format '{{.Names}}' | head -n 1
}

# --- compose ------------------------------------------------------------------------------
if [ "$only" != kube ]; then
  # podman 4.3 cannot wait for `condition: service_healthy` (podman-compose skips it
  # with a warning), so the dependency order of compose.yaml is walked here, each
  # step gated by the condition compose.yaml names.
  step "compose: up postgres, redis"
  compose_up=true
  compose up -d --no-build postgres redis >"$work/compose-up.log" 2>&1 \
    || { cat "$work/compose-up.log" >&2; fail "podman-compose up postgres redis"; }
  wait_healthy "$(compose_name postgres)" 90
  wait_healthy "$(compose_name redis)" 30
  step "compose: migrate"
  compose up -d --no-build --no-deps migrate >>"$work/compose-up.log" 2>&1 \
    || { cat "$work/compose-up.log" >&2; fail "podman-compose up migrate"; }
  migrate=$(compose_name migrate)
  code=$(timeout 120 podman wait "$migrate") || fail "waited 120s for $migrate (--migrate-only) to exit"
  [ "$code" = 0 ] || fail "$migrate (--migrate-only) exited $code"
  step "compose: up control-plane"
  compose up -d --no-build --no-deps control-plane >>"$work/compose-up.log" 2>&1 \
    || { cat "$work/compose-up.log" >&2; fail "podman-compose up control-plane"; }
  wait_healthy "$(compose_name control-plane)" 60
  step "compose: up edge, nginx-rtmp, ingest-hooks"
  compose up -d --no-build --no-deps edge nginx-rtmp ingest-hooks >>"$work/compose-up.log" 2>&1 \
    || { cat "$work/compose-up.log" >&2; fail "podman-compose up edge nginx-rtmp ingest-hooks"; }
  step "compose: go live"
  "$py" scripts/container-golive.py --label compose --edge http://127.0.0.24:28080 \
    --metrics http://127.0.0.23:29464/metrics,http://127.0.0.24:28080/metrics,http://127.0.0.25:28090/metrics
  step "compose down"
  volumes=$(volumes_of $(compose_containers))
  compose down -v -t 10 >"$work/compose-down.log" 2>&1 \
    || { cat "$work/compose-down.log" >&2; fail "podman-compose down"; }
  compose_up=false
  [ -z "$volumes" ] || podman volume rm -f $volumes >/dev/null
fi

# --- podman kube play -----------------------------------------------------------------------
if [ "$only" != compose ]; then
  step "kube: TLS for the gRPC hop, secrets, the host-network variant of deploy/k8s"
  tls=$work/tls
  mkdir -p "$tls"
  (
    cd "$tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
      -subj /CN=nova-containers-test-ca -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj /CN=nova-control-plane -keyout tls.key -out tls.csr 2>/dev/null
    printf 'subjectAltName=DNS:nova-control-plane,DNS:nova-control-plane.nova-streaming.svc,IP:127.0.0.33\n' >ext
    openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
      -extfile ext -out tls.crt 2>/dev/null
  )
  addresses=$("$py" scripts/container-kube-variant.py --tag "$tag" --tls-dir "$tls" \
    --out "$variant" --secret-json "$work/nova-secrets.json")
  kube_edge=$(sed -n 's/^edge=//p' <<<"$addresses")
  kube_metrics=$(sed -n 's/^metrics=//p' <<<"$addresses")
  kube_iss=$(sed -n 's/^jwt_issuer=//p' <<<"$addresses")
  kube_aud=$(sed -n 's/^jwt_audience=//p' <<<"$addresses")
  podman secret rm nova-secrets >/dev/null 2>&1 || true
  podman secret create nova-secrets "$work/nova-secrets.json" >/dev/null
  step "kube: podman kube play"
  kube_up=true
  podman kube play "$variant" >"$work/kube-play.log" 2>&1 \
    || { cat "$work/kube-play.log" >&2; fail "podman kube play $variant"; }
  step "kube: go live"
  "$py" scripts/container-golive.py --label kube --edge "$kube_edge" --metrics "$kube_metrics" \
    --jwt-issuer "$kube_iss" --jwt-audience "$kube_aud"
  # The migration Job (played as Pod nova-migrate) must have finished cleanly too.
  migrate=$(kube_containers | grep -- '-migrate$' | head -n 1)
  [ -n "$migrate" ] || fail "no container of the migration pod (Job nova-migrate) was made"
  # (A failed try is restarted, OnFailure: wait for an exit 0, not just any exit.)
  end=$((SECONDS + 60))
  until [ "$(podman inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$migrate")" = "exited 0" ]; do
    [ $SECONDS -lt $end ] || fail "waited 60s for $migrate (--migrate-only) to exit 0; it is $(podman inspect -f '{{.State.Status}}, exit code {{.State.ExitCode}}' "$migrate")"
    sleep 1
  done
  step "kube: migration pod $migrate exited 0"
fi
