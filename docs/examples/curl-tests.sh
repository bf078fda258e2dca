#!/usr/bin/env bash
# Smoke test of a Nova Streaming edge with curl: every REST route of docs/openapi.yaml
# and the WebSocket upgrade, against any environment.
#
#   make up && source .nova/stack.env
#   bash docs/examples/curl-tests.sh
#
# Environment:
#   NOVA_EDGE_URL   the edge's base URL (http://127.0.0.1:8080 on the local stack)
#   NOVA_TOKEN      a bearer token (JWT) the edge accepts; NOVA_DEV_JWT (the stack's
#                   token of the user `demo`) when unset. Its `sub` owns the test stream.
#
# It creates one stream, reads it, lists it, reads its metrics, rotates its key,
# opens its WebSocket (101, then the snapshot frame), ends it, reads its audit trail
# and the webhook endpoints, and checks the error answers the API promises (401, 400,
# 404, 426). It stops at the first failure with
# a message naming the call, the status and the body, and exits 1; it ends with
# "curl-tests: N checks passed" and exits 0. The token never appears in a URL, on
# a command line (curl reads the header from a private file) or in the output, and stream
# keys are masked in anything printed.
set -euo pipefail

: "${NOVA_EDGE_URL:?set NOVA_EDGE_URL (source .nova/stack.env)}"
TOKEN="${NOVA_TOKEN:-${NOVA_DEV_JWT:-}}"
[ -n "$TOKEN" ] || { echo "curl-tests: set NOVA_TOKEN or NOVA_DEV_JWT (source .nova/stack.env)" >&2; exit 2; }
EDGE="${NOVA_EDGE_URL%/}"
API="$EDGE/api/v1"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# The token goes to curl through a private file, never on a command line.
AUTH="$WORK/auth"
(umask 077 && printf 'Authorization: Bearer %s\n' "$TOKEN" > "$AUTH")
PASSED=0
STREAM_ID=

mask() { sed -E 's/sk_live_[A-Za-z0-9_-]+/sk_live_…/g'; }

fail() {
  echo "curl-tests: FAIL: $*" >&2
  if [ -n "$STREAM_ID" ]; then # leave nothing behind: end the test stream
    curl -sS -o /dev/null --max-time 10 -X DELETE -H @"$AUTH" "$API/streams/$STREAM_ID" || true
  fi
  exit 1
}

# call EXPECTED METHOD PATH [auth|anon] [JSON body] [extra curl args...]
# Sets STATUS, BODY (the answer) and HEADERS (a file).
call() {
  local expected="$1" method="$2" path="$3" auth="${4:-anon}" body="${5:-}"
  shift 5 2>/dev/null || shift $#
  local args=(-sS -X "$method" -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' --max-time 10)
  [ "$auth" = auth ] && args+=(-H @"$AUTH")
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
  STATUS="$(curl "${args[@]}" "$@" "$EDGE$path")" || fail "$method $path: curl failed (is $EDGE reachable?)"
  BODY="$(cat "$WORK/body")"
  HEADERS="$WORK/headers"
  [ "$STATUS" = "$expected" ] ||
    fail "$method $path ($auth): HTTP $STATUS, expected $expected: $(printf '%s' "$BODY" | mask | head -c 600)"
  PASSED=$((PASSED + 1))
}

# expect_body WHAT REGEX: the last answer's body matches REGEX.
expect_body() {
  printf '%s' "$BODY" | grep -Eq -- "$2" ||
    fail "$1: body does not match /$2/: $(printf '%s' "$BODY" | mask | head -c 600)"
  PASSED=$((PASSED + 1))
}

# expect_header WHAT REGEX: the last answer's headers match REGEX (case-insensitive).
expect_header() {
  tr -d '\r' < "$HEADERS" | grep -Eiq -- "$2" || fail "$1: no header matching /$2/"
  PASSED=$((PASSED + 1))
}

# field NAME: the first string value of "NAME" in the last body.
field() { printf '%s' "$BODY" | grep -Eo "\"$1\":\"[^\"]*\"" | head -1 | cut -d'"' -f4; }

echo "curl-tests: $EDGE"

# Health.
call 200 GET /healthz
call 200 GET /readyz

# Create: 401 without a token, 400 for a blank title, 201 with the key once.
call 401 POST /api/v1/streams anon '{"title":"curl-tests"}'
expect_body "401 body" '"code":"UNAUTHENTICATED"'
call 400 POST /api/v1/streams auth '{"title":"   "}'
expect_body "400 body" '"code":"INVALID_ARGUMENT"'
call 201 POST /api/v1/streams auth '{"title":"curl-tests smoke"}'
expect_body "created stream" '"status":"pending"'
expect_body "created key" '"stream_key":"sk_live_[A-Za-z0-9_-]{43}"'
expect_body "created ingest URL" '"ingest_url":"rtmp'
expect_header "created, not cached" '^cache-control: *no-store'
STREAM_ID="$(printf '%s' "$BODY" | grep -Eo '"id":"[0-9a-f-]{36}"' | head -1 | cut -d'"' -f4)"
OWNER="$(field owner)"
[ -n "$STREAM_ID" ] || fail "POST /api/v1/streams: no stream id in the answer"
expect_header "created, located" "^location: */api/v1/streams/$STREAM_ID"

# Read one: public view (no owner), owner view, bad id, unknown id.
call 200 GET "/api/v1/streams/$STREAM_ID"
expect_body "public read" "\"id\":\"$STREAM_ID\""
printf '%s' "$BODY" | grep -q '"owner"' && fail "GET /api/v1/streams/$STREAM_ID: anonymous answer carries the owner"
call 200 GET "/api/v1/streams/$STREAM_ID" auth
expect_body "owner read" "\"owner\":\"$OWNER\""
call 400 GET /api/v1/streams/not-a-uuid
call 404 GET /api/v1/streams/00000000-0000-7000-8000-000000000000
expect_body "404 body" '"code":"NOT_FOUND"'

# List: live (public), all with paging, the owner's pending ones (401 without a token).
call 200 GET "/api/v1/streams"
expect_body "live list" '"streams":\['
call 200 GET "/api/v1/streams?status=all&page_size=10"
expect_body "paged list" '"next_page_token":'
call 401 GET "/api/v1/streams?owner=$OWNER&status=pending"
call 200 GET "/api/v1/streams?owner=$OWNER&status=pending&page_size=1000" auth
expect_body "owner's pending list" "\"id\":\"$STREAM_ID\""

# Metrics.
call 200 GET "/api/v1/streams/$STREAM_ID/metrics?step=10"
expect_body "metrics" '"summary":\{'

# Rotate the key: 401 without a token, a new key (never cached) with it.
call 401 POST "/api/v1/streams/$STREAM_ID/rotate-key"
call 200 POST "/api/v1/streams/$STREAM_ID/rotate-key" auth
expect_body "rotated key" '"stream_key":"sk_live_'
expect_header "rotated, not cached" '^cache-control: *no-store'

# WebSocket: a plain GET is 426; the upgrade is 101 and the first frame a snapshot.
call 426 GET "/api/v1/streams/$STREAM_ID/ws"
expect_header "426 names the upgrade" '^upgrade: *websocket'
ws_status="$(curl -sS --http1.1 -N -o "$WORK/ws" -w '%{http_code}' --max-time 2 \
  -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
  -H "Sec-WebSocket-Key: $(head -c 16 /dev/urandom | base64)" \
  "$API/streams/$STREAM_ID/ws" 2>/dev/null)" || true # the socket stays open: curl times out
[ "$ws_status" = 101 ] || fail "GET /api/v1/streams/$STREAM_ID/ws (upgrade): HTTP ${ws_status:-none}, expected 101"
PASSED=$((PASSED + 1))
grep -aq "\"type\":\"snapshot\"" "$WORK/ws" || fail "WebSocket: no snapshot frame within 2 s of the upgrade"
PASSED=$((PASSED + 1))

# End: 401 without a token, completed with it, and again (unchanged).
call 401 DELETE "/api/v1/streams/$STREAM_ID"
call 200 DELETE "/api/v1/streams/$STREAM_ID" auth
expect_body "ended" '"status":"completed"'
call 200 DELETE "/api/v1/streams/$STREAM_ID" auth
expect_body "ended again" '"status":"completed"'
ENDED_ID="$STREAM_ID"
STREAM_ID= # ended: nothing left to clean up
call 200 GET "/api/v1/streams/$ENDED_ID"
expect_body "read after end" '"status":"completed"'

# Audit trail: the owner's records (401 without a token), and never a stream key.
call 401 GET "/api/v1/streams/$ENDED_ID/audit"
call 200 GET "/api/v1/streams/$ENDED_ID/audit?page_size=10" auth
expect_body "audit: created" '"action":"stream_created"'
expect_body "audit: rotated" '"action":"stream_key_rotated"'
expect_body "audit: ended" '"action":"stream_ended"'
expect_header "audit, not cached" '^cache-control: *no-store'
if printf '%s' "$BODY" | grep -q 'sk_live_'; then fail "audit: a stream key in the trail"; fi
PASSED=$((PASSED + 1))

# Webhooks: the owner's endpoints (401 without a token), never cached; a URL that is
# not http(s) is refused in every environment (which addresses are allowed depends on
# the operator); another id is 404.
call 401 GET "/api/v1/webhooks"
call 200 GET "/api/v1/webhooks?page_size=5" auth
expect_body "webhooks listed" '"webhooks":\['
expect_header "webhooks, not cached" '^cache-control: *no-store'
call 400 POST "/api/v1/webhooks" auth '{"url":"ftp://example.com/nova"}'
expect_body "webhook URL refused" '"webhook\.url: '
call 404 GET "/api/v1/webhooks/00000000-0000-7000-8000-000000000000" auth

# Recorded assets: the owner's list (401 without a token); this stream recorded nothing.
call 401 GET "/api/v1/streams/$ENDED_ID/assets"
call 200 GET "/api/v1/streams/$ENDED_ID/assets" auth
expect_body "assets: none recorded" '"assets":\[\]'
expect_header "assets, not cached" '^cache-control: *no-store'
call 404 GET "/api/v1/assets/00000000-0000-7000-8000-000000000000" auth

echo "curl-tests: $PASSED checks passed"
