#!/usr/bin/env python3
"""Goes live on Nova Streaming from a script, and prints what viewers are told.

What it does, in order:

1. creates a stream over REST (``POST /api/v1/streams`` with a bearer token);
2. opens the stream's WebSocket (``/api/v1/streams/{id}/ws``) and prints every
   frame the edge sends, one line each (the messages are specified in
   ``docs/asyncapi.yaml``);
3. publishes a test pattern with a tone with ffmpeg to the returned ingest URL and
   stream key, so the stream goes live (``stream_started``);
4. on Ctrl-C (or after ``--seconds N``) ends the stream
   (``DELETE /api/v1/streams/{id}``), stops ffmpeg and waits for ``stream_ended``
   before it exits.

Run it against the local stack::

    make up && source .nova/stack.env
    .nova/tools/venv/bin/python docs/examples/broadcaster.py --title "Launch party"

Configuration comes from the environment: ``NOVA_EDGE_URL`` (the edge, e.g.
``http://127.0.0.1:8080``) and ``NOVA_DEV_JWT`` (a bearer token whose ``sub``
owns the stream); without them it reads the ``export`` lines of
``.nova/stack.env``. The stream key is a secret: this program never prints it
(nor does it let ffmpeg print it), it prints only the stream id and the playback
URLs. The watch URL is printed without any secret.

Needs Python 3.9+, the ``websockets`` package (``make deps`` installs it into
``.nova/tools/venv``) and ffmpeg. Exit status: 0 when the stream went live and was
ended; 1 on any failure, with the reason on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import random
import re
import signal
import sys
import urllib.error
import urllib.request

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

# Close codes after which reconnecting is pointless (docs/asyncapi.yaml).
FINAL_CLOSE_CODES = {4404: "stream not found", 4410: "stream has completed"}
KEY_PATTERN = re.compile(r"sk_live_[A-Za-z0-9_-]+")


class Failure(Exception):
    """A step failed; the message says which and why."""


def settings() -> tuple[str, str]:
    """Returns (edge URL, token) from the environment, else from .nova/stack.env."""
    values = {k: os.environ[k] for k in ("NOVA_EDGE_URL", "NOVA_DEV_JWT") if os.environ.get(k)}
    env_file = pathlib.Path(__file__).resolve().parents[2] / ".nova" / "stack.env"
    if len(values) < 2 and env_file.exists():
        for line in env_file.read_text().splitlines():
            match = re.match(r"^(?:export\s+)?(NOVA_EDGE_URL|NOVA_DEV_JWT)=(.*)$", line.strip())
            if match:
                values.setdefault(match[1], match[2].strip("'\""))
    missing = [k for k in ("NOVA_EDGE_URL", "NOVA_DEV_JWT") if not values.get(k)]
    if missing:
        raise Failure(f"{', '.join(missing)} not set: run `make up` and `source .nova/stack.env`")
    return values["NOVA_EDGE_URL"].rstrip("/"), values["NOVA_DEV_JWT"]


def rest(method: str, url: str, token: str, body: dict | None = None) -> dict:
    """Calls the REST API and returns the JSON answer; raises Failure on an error."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")
        raise Failure(f"{method} {url}: HTTP {error.code} {detail}") from None
    except urllib.error.URLError as error:
        raise Failure(f"{method} {url}: {error.reason}") from None


async def publish(ingest_url: str, key: str, stop: asyncio.Event) -> None:
    """Runs ffmpeg (test pattern + 440 Hz tone) until `stop` is set; relays its
    errors with the key masked. Raises Failure if ffmpeg ends by itself."""
    ffmpeg = await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
        "-g", "30", "-b:v", "800k", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "96k",
        "-f", "flv", f"{ingest_url}/{key}",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip

    async def relay() -> None:
        assert ffmpeg.stderr is not None
        async for line in ffmpeg.stderr:
            text = KEY_PATTERN.sub("sk_live_…", line.decode(errors="replace").rstrip())
            print(f"ffmpeg: {text}", file=sys.stderr, flush=True)

    relaying = asyncio.create_task(relay())
    stopped = asyncio.create_task(stop.wait())
    exited = asyncio.create_task(ffmpeg.wait())
    try:
        await asyncio.wait({stopped, exited}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Also when the run is cancelled: no ffmpeg outlives this program.
        if ffmpeg.returncode is None:
            ffmpeg.terminate()
            await ffmpeg.wait()
        stopped.cancel()
    await relaying
    if not stop.is_set():
        raise Failure(f"ffmpeg exited with status {ffmpeg.returncode} before the stream was ended")
    print(f"broadcaster: ffmpeg stopped (status {ffmpeg.returncode})", flush=True)


async def follow(ws_url: str, first_snapshot: asyncio.Event) -> None:
    """Prints every frame of the stream's WebSocket until `stream_ended` with status
    `completed`. Reconnects with jittered exponential backoff when the edge closes
    the socket for a reason worth a retry (1001, 1011, 4408, a lost connection)."""
    backoff = 0.5
    while True:
        try:
            async with connect(ws_url, open_timeout=10) as socket:
                async for text in socket:
                    frame = json.loads(text)
                    print(f"event {frame['type']}: {text}", flush=True)
                    if frame["type"] == "snapshot":
                        backoff = 0.5
                        first_snapshot.set()
                    if frame["type"] == "stream_ended" and frame["status"] == "completed":
                        return
            code, reason = socket.close_code, socket.close_reason
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else 1006
            reason = closed.rcvd.reason if closed.rcvd else "connection lost"
        except OSError as error:
            code, reason = 1006, str(error)
        print(f"websocket: closed {code} {reason!r}", flush=True)
        if code in FINAL_CLOSE_CODES:
            raise Failure(f"the edge closed the WebSocket: {code} {reason}")
        delay = random.uniform(0, backoff)
        print(f"websocket: reconnecting in {delay:.1f} s", flush=True)
        await asyncio.sleep(delay)
        backoff = min(backoff * 2, 30)


async def run(args: argparse.Namespace) -> None:
    edge, token = settings()
    created = rest("POST", f"{edge}/api/v1/streams", token, {"title": args.title})
    stream, key, ingest_url = created["stream"], created["stream_key"], created["ingest_url"]
    stream_id = stream["id"]
    print(f"broadcaster: created stream {stream_id} ({stream['title']!r}), owner {stream.get('owner')}")
    print(f"broadcaster: publishing to {ingest_url}/<stream key> (key not shown)")
    print(f"broadcaster: watch at {edge}/ (or the stream's HLS playlist once live)", flush=True)

    try:
        await go_live(edge, token, stream_id, ingest_url, key, args.seconds)
    except BaseException:
        # Never leave a stream behind: end it, best effort, then report the failure.
        try:
            rest("DELETE", f"{edge}/api/v1/streams/{stream_id}", token)
            print(f"broadcaster: ended stream {stream_id} after the failure", file=sys.stderr)
        except Failure as failure:
            print(f"broadcaster: could not end stream {stream_id}: {failure}", file=sys.stderr)
        raise


async def go_live(
    edge: str, token: str, stream_id: str, ingest_url: str, key: str, seconds: float
) -> None:
    """Follows the socket, publishes until Ctrl-C or `seconds`, then ends the stream."""
    ws_url = re.sub(r"^http", "ws", edge) + f"/api/v1/streams/{stream_id}/ws"
    first_snapshot, stop = asyncio.Event(), asyncio.Event()
    following = asyncio.create_task(follow(ws_url, first_snapshot))
    # Publish only once the socket is open, so stream_started is seen.
    waiting = asyncio.create_task(first_snapshot.wait())
    await asyncio.wait({waiting, following}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if following.done():
        following.result()  # raises the Failure
    if not first_snapshot.is_set():
        raise Failure(f"no snapshot on {ws_url} within 10 s")
    publishing = asyncio.create_task(publish(ingest_url, key, stop))

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stopping = asyncio.create_task(stop.wait())
    timer = asyncio.create_task(asyncio.sleep(seconds)) if seconds else None
    pending = {stopping, publishing, following} | ({timer} if timer else set())
    done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    for task in done & {publishing, following}:
        task.result()  # a Failure ends the run here
    print("broadcaster: stopping", flush=True)
    stop.set()
    # End the stream first, so viewers see one stream_ended (completed, ended_by_owner)
    # rather than an interruption; nginx would cut ffmpeg off by itself too.
    ended_stream = rest("DELETE", f"{edge}/api/v1/streams/{stream_id}", token)["stream"]
    print(f"broadcaster: ended stream {stream_id}: status {ended_stream['status']}", flush=True)
    await publishing
    try:
        await asyncio.wait_for(following, timeout=10)
    except asyncio.TimeoutError:
        raise Failure("no stream_ended on the WebSocket within 10 s of ending the stream") from None
    for task in (stopping, timer):
        if task:
            task.cancel()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--title", default="broadcaster.py test pattern", help="the stream's title")
    parser.add_argument(
        "--seconds", type=float, default=0,
        help="end the stream after this many seconds of publishing (default: on Ctrl-C)",
    )  # fmt: skip
    args = parser.parse_args()
    try:
        asyncio.run(run(args))
    except Failure as failure:
        print(f"broadcaster: {KEY_PATTERN.sub('sk_live_…', str(failure))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
