#!/usr/bin/env bash
# The layering rules `make lint` enforces (docs/development.md, "Layers"):
#   1. in the control plane, `db` and `redis` never name `service` or `grpc`: storage
#      knows nothing of the rules above it;
#   2. in the control plane, `grpc` never names `db` or `redis`: the adapters reach
#      rows, the pool and Redis only through `service` and its domain types;
#   3. no service crate (nova-control-plane, nova-edge, nova-ingest-hooks) depends on
#      another: they share only `nova-proto` and `nova-runtime`.
# Prints every violation and exits 1 if there is any.
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
for layer in db redis; do
  # Code lines (not comments) that reach up a layer.
  if hits=$(grep -rnE '\b(service|grpc)::' "control-plane/src/$layer" --include='*.rs' |
    grep -vE '^[^:]+:[0-9]+:\s*//'); then
    echo "check-layers: control-plane/src/$layer reaches up into service/grpc:" >&2
    echo "$hits" >&2
    status=1
  fi
done

# Code lines (not comments) of the adapters that reach past the service layer.
if hits=$(grep -rnE '\b(db|redis)::' control-plane/src/grpc --include='*.rs' |
  grep -vE '^[^:]+:[0-9]+:\s*//'); then
  echo "check-layers: control-plane/src/grpc reaches past service into db/redis:" >&2
  echo "$hits" >&2
  status=1
fi

if ! cargo metadata --no-deps --format-version 1 --offline 2>/dev/null |
  /usr/bin/python3 -c '
import json, sys
services = {"nova-control-plane", "nova-edge", "nova-ingest-hooks"}
bad = [
    p["name"] + " depends on " + d["name"]
    for p in json.load(sys.stdin)["packages"] if p["name"] in services
    for d in p["dependencies"] if d["name"] in services and d["kind"] is None
]
for line in bad:
    print("check-layers: " + line, file=sys.stderr)
sys.exit(1 if bad else 0)
'; then
  status=1
fi

if [ "$status" -eq 0 ]; then
  echo "check-layers: ok"
fi
exit "$status"
