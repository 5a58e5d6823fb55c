"""Web API memory against strangers and load (issue 26): peak resident memory of `dogbot api` above its rest.

Each case starts a fresh `dogbot api` (its own process and data folder, SQLite), reads its resident
memory at rest (after start-up, the model loaded), sends the case's requests, and reads the
process's peak (VmHWM) and resident memory afterwards:

1. a stranger's `PUT /v1/dogs/{code}/breed` with a 45 MB JSON body (no token);
2. five strangers at once, each `POST /v1/dogs` with 10 files of 19 MB (190 MB a request);
3. 8, then 20, requests at once with a token: `POST /v1/predict` of a 39.7-megapixel PNG (a flat
   colour: a few hundred KB sent, 119 MB decoded). Past the decode queue (DOGBOT_API_DECODE_QUEUE)
   the API answers 503 with Retry-After; the answers are counted.

Bodies go over raw sockets, all of them even when the server has already answered (a refused
stranger's bytes still arrive at the socket: what matters is that the server does not keep them).

    .venv/bin/python bench/bench_api_memory.py [--write]

Prints a Markdown table; with --write it also replaces the "## Web API memory" section of
bench/README.md. Limits (issue 26): +50 MB, +100 MB and +600 MB above the API at rest.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import socket
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench_bot import peak_rss_mb
from PIL import Image
from readme import write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT))
from liveapi import live_api  # noqa: E402

MB = 1024 * 1024
SIZE = (7280, 5456)  # 39.7 megapixels, under the 40-megapixel limit


def send(url: str, head: str, body: bytes) -> int:
    """Send the whole request (ignoring a server that closed early) and return its status, 0 if none."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=300) as connection:
        request = head.encode("latin-1") + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        with contextlib.suppress(OSError):  # answered and closed before the body was all sent
            connection.sendall(request)
        try:
            answer = connection.recv(4096)
        except OSError:
            return 0
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


def at_once(count: int, request) -> list[int]:
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.append(request())) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def multipart(files: list[tuple[str, bytes, str]]) -> tuple[str, bytes]:
    boundary = "benchboundary"
    parts = []
    for name, data, kind in files:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="{name}"\r\n'
            f"Content-Type: {kind}\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    return f"multipart/form-data; boundary={boundary}", b"".join(parts) + f"--{boundary}--\r\n".encode()


def png_40mp() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", SIZE, (120, 90, 60)).save(out, "PNG")
    return out.getvalue()


def measure(work: Path, name: str, case) -> dict:
    with live_api(work / name, api_requests_per_minute="0") as api:
        token = api.new_token("bench")
        time.sleep(1.0)
        rest = peak_rss_mb(api.pid, "VmRSS")
        started = time.monotonic()
        statuses = case(api, token)
        seconds = time.monotonic() - started
        peak, after = peak_rss_mb(api.pid), peak_rss_mb(api.pid, "VmRSS")
    counted = {str(s): statuses.count(s) for s in sorted(set(statuses))}
    return {"rest": rest, "peak": peak, "after": after, "statuses": counted, "seconds": seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the table into bench/README.md")
    args = parser.parse_args()

    json_body = b'{"primary": "' + b"x" * (45 * MB) + b'"}'
    kind, uploads = multipart([(f"p{i}.jpg", bytes(19 * MB), "image/jpeg") for i in range(10)])
    png = png_40mp()
    png_kind, png_body = multipart([("big.png", png, "image/png")])

    def stranger_json(api, _token):
        head = "PUT /v1/dogs/D-2026-0001/breed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        return [send(api.url, head, json_body)]

    def stranger_uploads(api, _token):
        head = f"POST /v1/dogs HTTP/1.1\r\nHost: x\r\nContent-Type: {kind}\r\n"
        return at_once(5, lambda: send(api.url, head, uploads))

    def predicts(count):
        def case(api, token):
            head = (
                f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: {png_kind}\r\n"
            )
            return at_once(count, lambda: send(api.url, head, png_body))

        return case

    cases = [
        ("stranger, 45 MB JSON", stranger_json, 50),
        ("5 strangers x 190 MB uploads", stranger_uploads, 100),
        ("8 predicts of 40 MP at once", predicts(8), 600),
        ("20 predicts of 40 MP at once", predicts(20), 600),
    ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-api-memory-") as work:
        for index, (name, case, limit) in enumerate(cases):
            result = measure(Path(work), f"case{index}", case)
            rows.append((name, result, limit))
            print(name, json.dumps(result), file=sys.stderr)

    lines = [
        "| case | at rest | peak | after | peak above rest (limit) | answers | time |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r, limit in rows:
        above = r["peak"] - r["rest"]
        answers = ", ".join(f"{count} x {status}" for status, count in r["statuses"].items())
        lines.append(
            f"| {name} | {r['rest']:.0f} MB | {r['peak']:.0f} MB | {r['after']:.0f} MB | "
            f"+{above:.0f} MB (+{limit}) {'ok' if above <= limit else 'OVER'} | {answers} | "
            f"{r['seconds']:.1f} s |"
        )
    table = "\n".join(lines)
    print(table)
    if args.write:
        today = datetime.now(UTC).date().isoformat()
        write_section(
            "## Web API memory",
            f"`.venv/bin/python bench/bench_api_memory.py --write` ({today}; a busy 2-core machine, "
            "SQLite, defaults: DOGBOT_DECODE_SLOTS=1, DOGBOT_API_DECODE_QUEUE=16). Each case in a fresh "
            "`dogbot api`; "
            "peak is the process's VmHWM. Strangers are refused on their headers (401) before a byte of "
            "the body is read; predicts beyond one decoding and 16 waiting get 503 with Retry-After.\n\n"
            + table
            + "\n",
        )
    return 0 if all(r["peak"] - r["rest"] <= limit for _, r, limit in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
