#!/usr/bin/env bash
# Makes podman usable on this kind of machine (docs/containers.md), idempotently:
# installs podman, runc, catatonit and debootstrap with apt-get when missing, and writes
# /etc/containers/containers.conf.d/50-nova-streaming.conf with the two settings podman
# needs here:
#   runtime = "runc"      crun, Debian's default, fails ("cgroups in hybrid mode not
#                         supported"); runc works
#   default_ulimits = []  podman's default RLIMIT_NOFILE cannot be set without
#                         CAP_SYS_RESOURCE ("setrlimit RLIMIT_NOFILE: Operation not
#                         permitted"); containers inherit the host's 20,000
# A drop-in rather than an edit of containers.conf: it leaves the machine's own file
# alone and is removed with one rm.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

# catatonit: the init of the infra container of every pod `podman kube play` makes
# (a recommendation of Debian's podman, so absent after --no-install-recommends).
need=()
for tool in podman runc debootstrap catatonit; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "container-podman-setup: apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

conf=/etc/containers/containers.conf.d/50-nova-streaming.conf
want='# Written by Nova Streaming scripts/container-podman-setup.sh (docs/containers.md).
[containers]
default_ulimits = []

[engine]
runtime = "runc"'
if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
  echo "container-podman-setup: write $conf (runtime runc, default_ulimits [])"
  $SUDO mkdir -p "$(dirname "$conf")"
  printf '%s\n' "$want" | $SUDO tee "$conf" >/dev/null
fi
runtime=$(podman info --format '{{.Host.OCIRuntime.Name}}')
[ "$runtime" = runc ] || {
  echo "container-podman-setup: podman uses $runtime, not runc, despite $conf" >&2
  exit 1
}
