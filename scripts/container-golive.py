"""Goes live through a containerised Nova Streaming and checks what a viewer gets.

Run by scripts/containers-test.sh once against the compose deployment and once against
the `podman kube play` one (docs/containers.md). Every wait is bounded and a failure
says what it waited for. Steps:

1. waits for the edge's /readyz (it asks the control plane);
2. mints an HS256 JWT with the edge's secret (like nova-stack's NOVA_DEV_JWT) and
   creates a stream over REST (POST /api/v1/streams);
3. publishes a test pattern with ffmpeg to the returned ingest URL and key (nginx-rtmp);
4. waits for the stream to turn ACTIVE and for its HLS playlist and first segment at the
   playback URL the edge returns;
5. opens a WebSocket to the stream: the snapshot counts the socket; a second socket
   makes the first see viewer_count_changed to 2;
6. scrapes every /metrics URL given (200, Prometheus text with nova_streaming_ series);
7. ends the stream (DELETE) and stops ffmpeg.

Standard library and `websockets` (the repository's venv) only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import websockets


class Failure(Exception):
    """A check failed; the message says what was waited for or expected."""


def log(label: str, message: str) -> None:
    print(f"containers-test [{label}]: {message}", flush=True)


def mint_jwt(secret: str, sub: str, ttl_s: int, issuer: str | None, audience: str | None) -> str:
    """Returns an HS256 JWT for `sub`, as nova-stack's jwt::mint_hs256 makes them."""

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    now = int(time.time())
    claims: dict[str, object] = {"sub": sub, "iat": now, "exp": now + ttl_s}
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def http(method: str, url: str, token: str | None = None, body: object | None = None) -> tuple[int, bytes]:
    """Returns (status, body) of one request; connection errors become status 0."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (urllib.error.URLError, OSError) as err:
        return 0, str(err).encode()


def wait_for(what: str, deadline_s: float, check, interval_s: float = 0.5):
    """Calls check() until it returns something truthy; fails naming `what` after deadline_s."""
    end = time.monotonic() + deadline_s
    last = None
    while True:
        try:
            result = check()
        except Failure as err:
            result, last = None, str(err)
        if result:
            return result
        if time.monotonic() > end:
            raise Failure(f"waited {deadline_s:.0f} s for {what}" + (f"; last: {last}" if last else ""))
        time.sleep(interval_s)


def publish(ingest_url: str, key: str, seconds: int) -> subprocess.Popen:
    """Starts ffmpeg pushing a 720p test pattern with a tone, for at most `seconds`."""
    # fmt: off
    command = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
        "-re", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
        "-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds),
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "30",
        "-b:v", "1500k", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k",
        "-f", "flv", f"{ingest_url}/{key}",
    ]
    # fmt: on
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def watch(ws_url: str) -> tuple[int, int]:
    """Returns (snapshot count, count after a second socket joined) seen on the first socket."""
    async with websockets.connect(ws_url, open_timeout=10) as first:
        snapshot = json.loads(await asyncio.wait_for(first.recv(), 10))
        if snapshot.get("type") != "snapshot":
            raise Failure(f"first WebSocket frame is not a snapshot: {snapshot}")
        if snapshot["viewer_count"] < 1:
            raise Failure(f"the snapshot does not count its own socket: {snapshot}")
        async with websockets.connect(ws_url, open_timeout=10) as second:
            await asyncio.wait_for(second.recv(), 10)
            end = time.monotonic() + 10
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    raise Failure("waited 10 s for viewer_count_changed to 2 on the first socket")
                frame = json.loads(await asyncio.wait_for(first.recv(), left))
                if frame.get("type") == "viewer_count_changed" and frame["viewer_count"] >= 2:
                    return snapshot["viewer_count"], frame["viewer_count"]


def scrape(url: str) -> int:
    """Returns the number of nova_streaming_ samples at a /metrics URL."""
    status, body = wait_for(f"200 from {url}", 30, lambda: (lambda a: a if a[0] == 200 else None)(http("GET", url)))
    text = body.decode()
    samples = [line for line in text.splitlines() if line.startswith("nova_streaming_")]
    if not samples:
        raise Failure(f"{url} answered {status} without any nova_streaming_ series")
    return len(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="compose or kube, for the log lines")
    parser.add_argument("--edge", required=True, help="edge base URL, e.g. http://127.0.0.24:28080")
    parser.add_argument("--metrics", required=True, help="comma-separated /metrics URLs")
    parser.add_argument("--jwt-issuer", help="iss the edge requires (NOVA_JWT_ISSUER)")
    parser.add_argument("--jwt-audience", help="aud the edge requires (NOVA_JWT_AUDIENCE)")
    parser.add_argument("--ready-timeout", type=float, default=120, help="seconds to wait for /readyz")
    args = parser.parse_args()
    secret = os.environ.get("NOVA_JWT_HS256_SECRET")
    if not secret:
        raise Failure("NOVA_JWT_HS256_SECRET (the edge's JWT secret) is not set")
    label, edge = args.label, args.edge.rstrip("/")

    started = time.monotonic()
    wait_for(f"{edge}/readyz to answer 200 (edge up, control plane reachable)", args.ready_timeout,
             lambda: http("GET", f"{edge}/readyz")[0] == 200)
    log(label, f"edge ready at {edge} ({time.monotonic() - started:.1f} s)")

    token = mint_jwt(secret, "containers-test", 600, args.jwt_issuer, args.jwt_audience)
    status, body = http("POST", f"{edge}/api/v1/streams", token, {"title": f"containers-test {label}"})
    if status != 201:
        raise Failure(f"POST {edge}/api/v1/streams answered {status}, want 201: {body[:300]!r}")
    created = json.loads(body)
    stream_id, key, ingest_url = created["stream"]["id"], created["stream_key"], created["ingest_url"]
    log(label, f"created stream {stream_id}; publishing to {ingest_url}/<key>")

    ffmpeg = publish(ingest_url, key, 120)
    try:
        def active():
            if ffmpeg.poll() is not None:
                raise Failure(f"ffmpeg exited {ffmpeg.returncode}: {ffmpeg.stderr.read().decode()[-500:]}")
            status, body = http("GET", f"{edge}/api/v1/streams/{stream_id}")
            stream = json.loads(body) if status == 200 else {}
            stream = stream.get("stream", stream)
            if stream.get("status") == "active" and stream.get("playback"):
                return stream
            raise Failure(f"GET /api/v1/streams/{stream_id}: {status} {body[:200]!r}")

        stream = wait_for(f"stream {stream_id} to turn active with playback URLs", 30, active)
        hls_url = stream["playback"]["hls_url"]
        log(label, f"stream active; HLS at {hls_url}")

        def playlist():
            status, body = http("GET", hls_url)
            if status != 200 or b"#EXTM3U" not in body:
                raise Failure(f"GET {hls_url}: {status}")
            segments = [line for line in body.decode().splitlines() if line and not line.startswith("#")]
            if not segments:
                raise Failure(f"{hls_url} lists no segment yet")
            segment = hls_url.rsplit("/", 1)[0] + "/" + segments[-1]
            seg_status, seg_body = http("GET", segment)
            if seg_status != 200 or not seg_body:
                raise Failure(f"GET {segment}: {seg_status}")
            return segment, len(seg_body)

        segment, size = wait_for(f"the HLS playlist {hls_url} and a segment", 30, playlist)
        log(label, f"HLS playlist served, segment {segment.rsplit('/', 1)[-1]} ({size} bytes)")

        ws_url = edge.replace("http", "ws", 1) + f"/api/v1/streams/{stream_id}/ws"
        one, two = asyncio.run(watch(ws_url))
        log(label, f"WebSocket {ws_url}: snapshot viewer_count {one}, then {two} with a second socket")

        for url in args.metrics.split(","):
            log(label, f"{url}: {scrape(url)} nova_streaming_ samples")

        status, body = http("DELETE", f"{edge}/api/v1/streams/{stream_id}", token)
        if status != 200:
            raise Failure(f"DELETE /api/v1/streams/{stream_id} answered {status}: {body[:300]!r}")
        log(label, f"stream ended; went live and back in {time.monotonic() - started:.1f} s")
    finally:
        if ffmpeg.poll() is None:
            ffmpeg.terminate()
            try:
                ffmpeg.wait(5)
            except subprocess.TimeoutExpired:
                ffmpeg.kill()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as err:
        print(f"containers-test: FAILED: {err}", file=sys.stderr, flush=True)
        sys.exit(1)
