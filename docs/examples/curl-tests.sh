#!/usr/bin/env bash
# Smoke test of a Nova Streaming edge with curl: every operation of docs/openapi.yaml
# and the WebSocket upgrade, against any environment. Each call is tagged
# `# op: <operationId>`; tests/tests/it/examples.rs fails when an operation has no tag.
#
#   make up && source .nova/stack.env
#   bash docs/examples/curl-tests.sh
#
# Environment:
#   NOVA_EDGE_URL   the edge's base URL (http://127.0.0.1:8080 on the local stack)
#   NOVA_TOKEN      a bearer token (JWT) the edge accepts; NOVA_DEV_JWT (the stack's
#                   token of the user `demo`) when unset. Its `sub` owns what is created.
#   NOVA_ORIGIN     optional: sent as `Origin` on the WebSocket upgrade, as a browser
#                   does; needed where the edge sets NOVA_WS_ALLOWED_ORIGINS (403 without).
#   NOVA_WEBHOOK_RECEIVER_URL
#                   optional: an http(s) URL whose server answers POST with 2xx and that
#                   the control plane may deliver to (a public address; on `make up`,
#                   loopback too, see docs/webhooks.md). With it the script registers an
#                   endpoint there, reads and changes it, waits (at most 30 s) for the
#                   first delivery attempt, redelivers that event, rotates the secret and
#                   deletes the endpoint. Without it only the webhook calls that need no
#                   receiver run (list, a refused URL, 404) and the script says so.
#
# It creates a stream, reads, lists and changes it, reads its metrics, issues a
# playback token, rotates its key, opens its WebSocket (101, then the snapshot frame),
# ends it, reads its audit trail and lists its assets; it creates, lists and deletes a
# signing key; and it checks the error answers the API promises (401, 400, 404, 426).
# A stream that recorded nothing has no asset, so reading and deleting an asset are
# checked on an unknown id (404): recording needs `record: true`, an asset store and a
# broadcast (docs/recording.md). It stops at the first failure with a message naming
# the call, the status and the body, removes what it created, and exits 1; it ends
# with "curl-tests: N checks passed" and exits 0. The token never appears in a URL, on
# a command line (curl reads the header from a private file) or in the output, and
# secrets (stream keys, playback tokens, private keys, webhook secrets) are masked in
# anything printed.
set -euo pipefail

: "${NOVA_EDGE_URL:?set NOVA_EDGE_URL (source .nova/stack.env)}"
TOKEN="${NOVA_TOKEN:-${NOVA_DEV_JWT:-}}"
[ -n "$TOKEN" ] || { echo "curl-tests: set NOVA_TOKEN or NOVA_DEV_JWT (source .nova/stack.env)" >&2; exit 2; }
EDGE="${NOVA_EDGE_URL%/}"
API="$EDGE/api/v1"
RECEIVER="${NOVA_WEBHOOK_RECEIVER_URL:-}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# The token goes to curl through a private file, never on a command line.
AUTH="$WORK/auth"
(umask 077 && printf 'Authorization: Bearer %s\n' "$TOKEN" > "$AUTH")
PASSED=0
STREAM_ID=
KEY_ID=
WEBHOOK_ID=
NONE=00000000-0000-7000-8000-000000000000

# Masks every secret an answer may carry.
mask() {
  sed -E -e 's/sk_live_[A-Za-z0-9_-]+/sk_live_…/g' -e 's/whsec_[A-Za-z0-9_-]+/whsec_…/g' \
    -e 's/"(token|private_key_pem)":"[^"]*"/"\1":"…"/g' -e 's#/t/[^/"]+/#/t/…/#g'
}

# Leaves nothing behind: ends the test stream, deletes the signing key and the endpoint.
cleanup() {
  local path
  for path in ${STREAM_ID:+streams/$STREAM_ID} ${KEY_ID:+signing-keys/$KEY_ID} \
    ${WEBHOOK_ID:+webhooks/$WEBHOOK_ID}; do
    curl -sS -o /dev/null --max-time 10 -X DELETE -H @"$AUTH" "$API/$path" || true
  done
}

fail() {
  echo "curl-tests: FAIL: $*" >&2
  cleanup
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

# id_of: the first UUID "id" in the last body.
id_of() { printf '%s' "$BODY" | grep -Eo '"id":"[0-9a-f-]{36}"' | head -1 | cut -d'"' -f4; }

# await_body WHAT PATH REGEX: GETs PATH (as the owner) once a second until its body
# matches REGEX, for at most 30 s; one check.
await_body() {
  local tries=0 before="$PASSED"
  until call 200 GET "$2" auth && printf '%s' "$BODY" | grep -Eq -- "$3"; do
    tries=$((tries + 1))
    [ "$tries" -lt 30 ] || fail "$1: GET $2 did not match /$3/ within 30 s: $(printf '%s' "$BODY" | mask | head -c 600)"
    sleep 1
  done
  PASSED=$((before + 1))
}

echo "curl-tests: $EDGE"

# Health.
call 200 GET /healthz # op: healthz
call 200 GET /readyz # op: readyz

# Webhooks: the owner's endpoints (401 without a token), never cached; a URL that is
# not http(s) is refused in every environment (which addresses are allowed depends on
# the operator); another id is 404. With a receiver, an endpoint is registered first so
# that the stream's events below are delivered to it.
call 401 GET "/api/v1/webhooks"
call 200 GET "/api/v1/webhooks?page_size=5" auth # op: listWebhooks
expect_body "webhooks listed" '"webhooks":\['
expect_header "webhooks, not cached" '^cache-control: *no-store'
call 400 POST "/api/v1/webhooks" auth '{"url":"ftp://example.com/nova"}'
expect_body "webhook URL refused" '"webhook\.url: '
call 404 GET "/api/v1/webhooks/$NONE" auth
if [ -n "$RECEIVER" ]; then
  call 201 POST "/api/v1/webhooks" auth "{\"url\":\"$RECEIVER\",\"events\":[\"stream.created\"]}" # op: createWebhook
  expect_body "webhook secret" '"secret":"whsec_[A-Za-z0-9_-]{43}"'
  expect_header "webhook created, not cached" '^cache-control: *no-store'
  WEBHOOK_ID="$(id_of)"
  [ -n "$WEBHOOK_ID" ] || fail "POST /api/v1/webhooks: no endpoint id in the answer"
  expect_header "webhook created, located" "^location: */api/v1/webhooks/$WEBHOOK_ID"
  call 200 GET "/api/v1/webhooks/$WEBHOOK_ID" auth # op: getWebhook
  expect_body "webhook read" '"enabled":true'
  if printf '%s' "$BODY" | grep -q 'whsec_'; then fail "GET /api/v1/webhooks/$WEBHOOK_ID: a secret in the answer"; fi
  call 200 PATCH "/api/v1/webhooks/$WEBHOOK_ID" auth '{"events":["stream.created","stream.completed"]}' # op: updateWebhook
  expect_body "webhook changed" '"events":\["stream\.created","stream\.completed"\]'
fi

# Create: 401 without a token, 400 for a blank title, 201 with the key once.
call 401 POST /api/v1/streams anon '{"title":"curl-tests"}'
expect_body "401 body" '"code":"UNAUTHENTICATED"'
call 400 POST /api/v1/streams auth '{"title":"   "}'
expect_body "400 body" '"code":"INVALID_ARGUMENT"'
call 201 POST /api/v1/streams auth '{"title":"curl-tests smoke"}' # op: createStream
expect_body "created stream" '"status":"pending"'
expect_body "created key" '"stream_key":"sk_live_[A-Za-z0-9_-]{43}"'
expect_body "created ingest URL" '"ingest_url":"rtmp'
expect_header "created, not cached" '^cache-control: *no-store'
STREAM_ID="$(id_of)"
OWNER="$(field owner)"
[ -n "$STREAM_ID" ] || fail "POST /api/v1/streams: no stream id in the answer"
expect_header "created, located" "^location: */api/v1/streams/$STREAM_ID"

# Read one: public view (no owner), owner view, bad id, unknown id.
call 200 GET "/api/v1/streams/$STREAM_ID" # op: getStream
expect_body "public read" "\"id\":\"$STREAM_ID\""
printf '%s' "$BODY" | grep -q '"owner"' && fail "GET /api/v1/streams/$STREAM_ID: anonymous answer carries the owner"
call 200 GET "/api/v1/streams/$STREAM_ID" auth
expect_body "owner read" "\"owner\":\"$OWNER\""
call 400 GET /api/v1/streams/not-a-uuid
call 404 GET "/api/v1/streams/$NONE"
expect_body "404 body" '"code":"NOT_FOUND"'

# List: live (public), all with paging, the owner's pending ones (401 without a token).
call 200 GET "/api/v1/streams" # op: listStreams
expect_body "live list" '"streams":\['
call 200 GET "/api/v1/streams?status=all&page_size=10"
expect_body "paged list" '"next_page_token":'
call 401 GET "/api/v1/streams?owner=$OWNER&status=pending"
call 200 GET "/api/v1/streams?owner=$OWNER&status=pending&page_size=1000" auth
expect_body "owner's pending list" "\"id\":\"$STREAM_ID\""

# Change: 401 without a token; a new title and a viewer cap (owner only).
call 401 PATCH "/api/v1/streams/$STREAM_ID" anon '{"max_viewers":100}'
call 200 PATCH "/api/v1/streams/$STREAM_ID" auth '{"title":"curl-tests renamed","max_viewers":100}' # op: updateStream
expect_body "renamed" '"title":"curl-tests renamed"'
expect_body "capped" '"max_viewers":100'

# Metrics.
call 200 GET "/api/v1/streams/$STREAM_ID/metrics?step=10" # op: getStreamMetrics
expect_body "metrics" '"summary":\{'

# Playback token: 401 without a token; a token (never cached) for the owner. Its URLs
# stay empty until the stream first went live.
call 401 POST "/api/v1/streams/$STREAM_ID/playback-tokens" anon '{}'
call 201 POST "/api/v1/streams/$STREAM_ID/playback-tokens" auth '{"ttl_seconds":60,"session_id":"curl-tests"}' # op: createPlaybackToken
expect_body "playback token" '"token":"eyJ'
expect_body "playback session" '"session_id":"curl-tests"'
expect_header "playback token, not cached" '^cache-control: *no-store'

# Rotate the key: 401 without a token, a new key (never cached) with it.
call 401 POST "/api/v1/streams/$STREAM_ID/rotate-key"
call 200 POST "/api/v1/streams/$STREAM_ID/rotate-key" auth # op: rotateStreamKey
expect_body "rotated key" '"stream_key":"sk_live_'
expect_header "rotated, not cached" '^cache-control: *no-store'

# WebSocket: a plain GET is 426; the upgrade is 101 and the first frame a snapshot.
# Both send NOVA_ORIGIN as `Origin`, if set (an edge with allowed origins checks it first).
origin=()
[ -n "${NOVA_ORIGIN:-}" ] && origin=(-H "Origin: $NOVA_ORIGIN")
call 426 GET "/api/v1/streams/$STREAM_ID/ws" anon "" "${origin[@]}"
expect_header "426 names the upgrade" '^upgrade: *websocket'
ws_status="$(curl -sS --http1.1 -N -o "$WORK/ws" -w '%{http_code}' --max-time 2 "${origin[@]}" \
  -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
  -H "Sec-WebSocket-Key: $(head -c 16 /dev/urandom | base64)" \
  "$API/streams/$STREAM_ID/ws" 2>/dev/null)" || true # op: watchStream (the socket stays open: curl times out)
[ "$ws_status" = 101 ] || fail "GET /api/v1/streams/$STREAM_ID/ws (upgrade): HTTP ${ws_status:-none}, expected 101"
PASSED=$((PASSED + 1))
grep -aq "\"type\":\"snapshot\"" "$WORK/ws" || fail "WebSocket: no snapshot frame within 2 s of the upgrade"
PASSED=$((PASSED + 1))

# End: 401 without a token, completed with it, and again (unchanged).
call 401 DELETE "/api/v1/streams/$STREAM_ID"
call 200 DELETE "/api/v1/streams/$STREAM_ID" auth # op: endStream
expect_body "ended" '"status":"completed"'
call 200 DELETE "/api/v1/streams/$STREAM_ID" auth
expect_body "ended again" '"status":"completed"'
ENDED_ID="$STREAM_ID"
STREAM_ID= # ended: nothing left to clean up
call 200 GET "/api/v1/streams/$ENDED_ID"
expect_body "read after end" '"status":"completed"'

# Audit trail: the owner's records (401 without a token), and never a stream key.
call 401 GET "/api/v1/streams/$ENDED_ID/audit"
call 200 GET "/api/v1/streams/$ENDED_ID/audit?page_size=10" auth # op: listStreamAuditRecords
expect_body "audit: created" '"action":"stream_created"'
expect_body "audit: updated" '"action":"stream_updated"'
expect_body "audit: rotated" '"action":"stream_key_rotated"'
expect_body "audit: ended" '"action":"stream_ended"'
expect_header "audit, not cached" '^cache-control: *no-store'
if printf '%s' "$BODY" | grep -q 'sk_live_'; then fail "audit: a stream key in the trail"; fi
PASSED=$((PASSED + 1))

# Recorded assets: the owner's list (401 without a token); this stream recorded
# nothing, so reading and deleting an asset are checked on an unknown id.
call 401 GET "/api/v1/streams/$ENDED_ID/assets"
call 200 GET "/api/v1/streams/$ENDED_ID/assets" auth # op: listStreamAssets
expect_body "assets: none recorded" '"assets":\[\]'
expect_header "assets, not cached" '^cache-control: *no-store'
call 404 GET "/api/v1/assets/$NONE" auth # op: getAsset (none recorded: 404)
call 401 DELETE "/api/v1/assets/$NONE"
call 404 DELETE "/api/v1/assets/$NONE" auth # op: deleteAsset (none recorded: 404)

# Signing keys: 401 without a token; a key whose private key is shown once (never
# cached), listed by id, deleted (204), then unknown (404).
call 401 GET "/api/v1/signing-keys"
call 201 POST "/api/v1/signing-keys" auth # op: createSigningKey
expect_body "private key" '"private_key_pem":"-----BEGIN PRIVATE KEY-----'
expect_header "signing key, not cached" '^cache-control: *no-store'
KEY_ID="$(id_of)"
[ -n "$KEY_ID" ] || fail "POST /api/v1/signing-keys: no key id in the answer"
call 200 GET "/api/v1/signing-keys" auth # op: listSigningKeys
expect_body "signing key listed" "\"id\":\"$KEY_ID\""
if printf '%s' "$BODY" | grep -q 'PRIVATE KEY'; then fail "GET /api/v1/signing-keys: a private key in the list"; fi
PASSED=$((PASSED + 1))
call 204 DELETE "/api/v1/signing-keys/$KEY_ID" auth # op: deleteSigningKey
call 404 DELETE "/api/v1/signing-keys/$KEY_ID" auth
KEY_ID=

# Webhook deliveries: the stream's creation reached the receiver (an attempt is
# listed), is redelivered on request (a manual attempt), the secret is rotated and the
# endpoint deleted.
if [ -n "$RECEIVER" ]; then
  await_body "first delivery" "/api/v1/webhooks/$WEBHOOK_ID/attempts?page_size=10" '"event_type":"stream\.created"' # op: listWebhookAttempts
  EVENT_ID="$(field event_id)"
  [ -n "$EVENT_ID" ] || fail "GET /api/v1/webhooks/$WEBHOOK_ID/attempts: no event id"
  call 202 POST "/api/v1/webhooks/$WEBHOOK_ID/redeliver" auth "{\"event_id\":\"$EVENT_ID\"}" # op: redeliverWebhookEvent
  expect_body "redelivery queued" '"queued":true'
  await_body "redelivery" "/api/v1/webhooks/$WEBHOOK_ID/attempts?event_id=$EVENT_ID" '"manual":true'
  call 200 POST "/api/v1/webhooks/$WEBHOOK_ID/rotate-secret" auth # op: rotateWebhookSecret
  expect_body "new webhook secret" '"secret":"whsec_[A-Za-z0-9_-]{43}"'
  expect_header "secret rotated, not cached" '^cache-control: *no-store'
  call 204 DELETE "/api/v1/webhooks/$WEBHOOK_ID" auth # op: deleteWebhook
  call 404 GET "/api/v1/webhooks/$WEBHOOK_ID" auth
  WEBHOOK_ID=
else
  echo "curl-tests: webhooks: set NOVA_WEBHOOK_RECEIVER_URL to register, change, deliver to, redeliver, rotate and delete an endpoint (skipped)"
fi

echo "curl-tests: $PASSED checks passed"
