#!/usr/bin/env bash
# Builds local stand-ins for the public base images that deploy/docker/Dockerfile and
# compose.yaml use, from Debian packages, for machines that cannot reach Docker Hub.
# Each is tagged with the public name, so the Dockerfile and compose file stay the
# ones users build and run on the internet:
#
#   debian  docker.io/library/debian:bookworm-slim   debootstrap --variant=minbase bookworm
#   node    docker.io/library/node:22-bookworm-slim  debian + Debian's nodejs/npm (18/9)
#   postgres docker.io/library/postgres:16           debian + Debian's PostgreSQL 15
#   redis   docker.io/library/redis:7                debian + Debian's Redis 7.0
#   rust    docker.io/library/rust:1.95-bookworm     debian + gcc + this machine's Rust toolchain
#
#   scripts/container-base-images.sh [--force] [NAME…]   (default: debian node postgres redis)
#
# An image that already exists (a stand-in or the real one) is kept; --force rebuilds.
# Containerfiles and entry points: deploy/podman/base-images/. It also makes podman
# usable here first (scripts/container-podman-setup.sh). See docs/containers.md.
set -euo pipefail
cd "$(dirname "$0")/.."

force=false
names=()
for arg in "$@"; do
  case $arg in
    --force) force=true ;;
    debian | node | postgres | redis | rust) names+=("$arg") ;;
    *) echo "container-base-images: unknown argument $arg (want --force, debian, node, postgres, redis, rust)" >&2; exit 2 ;;
  esac
done
[ ${#names[@]} -gt 0 ] || names=(debian node postgres redis)

bash scripts/container-podman-setup.sh

mirror=${NOVA_DEBIAN_MIRROR:-http://deb.debian.org/debian}
declare -A image=(
  [debian]=docker.io/library/debian:bookworm-slim
  [node]=docker.io/library/node:22-bookworm-slim
  [postgres]=docker.io/library/postgres:16
  [redis]=docker.io/library/redis:7
  [rust]=docker.io/library/rust:1.95-bookworm
)

work=$(mktemp -d /var/tmp/nova-base-images.XXXXXX)
trap 'rm -rf "$work"' EXIT

# have NAME: the image exists and is not to be rebuilt.
have() { ! $force && podman image exists "${image[$1]}"; }

build_debian() {
  # minbase: apt, dpkg and the essential packages only, as the official slim image.
  echo "container-base-images: debootstrap bookworm (about a minute)"
  debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log" >&2; echo "container-base-images: debootstrap failed" >&2; exit 1; }
  # The official image's sources: the release, its updates and security fixes.
  rm -f "$work/rootfs/etc/apt/sources.list"
  cat >"$work/rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # Like the official image: no package lists or downloaded .debs kept.
  printf 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\nAPT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\nBinary::apt::APT::Keep-Downloaded-Packages "false";\n' \
    >"$work/rootfs/etc/apt/apt.conf.d/docker-clean"
  printf 'APT::Install-Recommends "false";\n' >"$work/rootfs/etc/apt/apt.conf.d/docker-no-recommends"
  # This machine's own CA certificates (a TLS-inspecting proxy's, say) come along, so
  # npm and cargo inside the builds reach their registries as the host does. They are
  # inert until an image installs ca-certificates (as the Dockerfile's do).
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$work/rootfs/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$work/rootfs/usr/local/share/ca-certificates/"
  fi
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  tar -C "$work/rootfs" -c . | podman import --quiet \
    --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'LABEL io.nova-streaming.stand-in="debian:bookworm-slim (debootstrap --variant=minbase bookworm)"' \
    - "${image[debian]}" >/dev/null
  rm -rf "$work/rootfs"
}

build_from_containerfile() {
  local name=$1 context=$2
  echo "container-base-images: build ${image[$name]} (stand-in from Debian packages)"
  # Host network: the build's apt-get reaches the mirror without podman's bridge.
  podman build --network host --quiet -f "deploy/podman/base-images/$name.Containerfile" \
    -t "${image[$name]}" "$context" >/dev/null
}

build_rust() {
  # The toolchain cargo uses here (rust-toolchain files or the rustup default),
  # without its documentation.
  local sysroot
  sysroot=$(rustc --print sysroot)
  echo "container-base-images: copy the Rust toolchain $(rustc --version | cut -d' ' -f2) from $sysroot"
  mkdir -p "$work/rust/toolchain"
  cp deploy/podman/base-images/rust.Containerfile "$work/rust/"
  tar -C "$sysroot" --exclude=./share/doc --exclude=./share/man -c . | tar -C "$work/rust/toolchain" -x
  build_from_containerfile rust "$work/rust"
}

for name in "${names[@]}"; do
  # Every other stand-in is built FROM debian.
  if [ "$name" != debian ] && ! podman image exists "${image[debian]}"; then
    build_debian
  fi
  if have "$name"; then
    echo "container-base-images: ${image[$name]} exists"
    continue
  fi
  case $name in
    debian) build_debian ;;
    rust) build_rust ;;
    *) build_from_containerfile "$name" deploy/podman/base-images ;;
  esac
  echo "container-base-images: ${image[$name]} built"
done
