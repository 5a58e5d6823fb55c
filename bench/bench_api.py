"""Web API benchmark: request latency next to the model's own time, and 20 clients registering at once.

Starts `dogbot api` as a deployment does (its own process, a loopback port, a fresh data directory;
SQLite, or PostgreSQL with --database-url), makes one token per client with `dogbot api-token create`,
and measures with httpx:

1. the model alone in this process (decode + forward, batch 1, ONNX Runtime, one thread), on the
   same photos;
2. one client, one request at a time: POST /v1/predict and POST /v1/dogs with one photo; the API's
   own overhead is the request's p50 minus the model's p50 (target: at most 1.5 x the model's time
   + 50 ms);
3. 20 clients at once, each registering 10 dogs of 2 photos: p50 / p95 per registration, and then
   the database is checked: every dog once, with exactly its photos, none lost or duplicated.

Photos are distinct real JPEGs of the shared dev set (a photo sent twice would join the first dog).

    .venv/bin/python bench/bench_api.py [--clients 20] [--dogs 10] [--photos-per-dog 2] [--write]

Prints a Markdown table; with --write it also replaces the "## Web API" section of bench/README.md
("## Web API on PostgreSQL" with --database-url).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench_bot import DEFAULT_DATA, model_time, peak_rss_mb, percentile, photos
from readme import write_section  # bench/readme.py: scripts run from bench/ put it on the path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT))

from liveapi import live_api  # noqa: E402


def one_by_one(api, token: str, samples: list[bytes], path: str) -> list[float]:
    """Seconds per request, one request at a time."""
    times = []
    with api.client(token) as client:
        for data in samples:
            t0 = time.perf_counter()
            response = client.post(path, files=[("photo", ("p.jpg", data, "image/jpeg"))])
            times.append(time.perf_counter() - t0)
            assert response.status_code in (200, 201), response.text
    return times


def at_once(api, tokens: list[str], dogs: list[list[list[bytes]]]) -> tuple[list[float], list[dict], float]:
    """Every client registers its dogs one after another, all clients at the same time."""
    latencies: list[float] = []
    made: list[dict] = []
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(tokens))

    def client_run(token: str, its_dogs: list[list[bytes]]) -> None:
        with api.client(token) as client:
            start.wait()
            for index, dog_photos in enumerate(its_dogs):
                t0 = time.perf_counter()
                response = client.post(
                    "/v1/dogs",
                    files=[("photo", (f"{i}.jpg", data, "image/jpeg")) for i, data in enumerate(dog_photos)],
                    data={"name": f"{token[-6:]}-{index}"},
                )
                elapsed = time.perf_counter() - t0
                with lock:
                    if response.status_code != 201:
                        failures.append(f"{response.status_code} {response.text[:200]}")
                        continue
                    latencies.append(elapsed)
                    made.append(
                        {
                            "code": response.json()["code"],
                            "sent": sorted(hashlib.sha256(d).hexdigest() for d in dog_photos),
                        }
                    )

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client_run, args=pair) for pair in zip(tokens, dogs, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - t0
    assert not failures, failures[:5]
    return latencies, made, wall


def check_catalog(url: str, made: list[dict]) -> dict[str, int]:
    """What the database holds: each registered dog once, with exactly the photos sent for it."""
    from sqlmodel import select

    from storage.db import make_engine
    from storage.db import session as open_session
    from storage.tables import Dog, Photo

    engine = make_engine(url, prepare_schema=False)
    try:
        with open_session(engine) as session:
            dogs = {dog.id: dog.code for dog in session.exec(select(Dog))}
            photos_of: dict[str, list[str]] = {}
            for photo in session.exec(select(Photo)):
                photos_of.setdefault(dogs.get(photo.dog_id, "?"), []).append(photo.sha256)
    finally:
        engine.dispose()
    codes = [dog["code"] for dog in made]
    exact = sum(sorted(photos_of.get(dog["code"], [])) == dog["sent"] for dog in made)
    return {
        "answers": len(made),
        "distinct codes answered": len(set(codes)),
        "dogs in the database": len(set(dogs.values()) & set(codes)),
        "dogs holding exactly their photos": exact,
        "photos in the database": sum(len(v) for k, v in photos_of.items() if k in set(codes)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--dogs", type=int, default=10, help="dogs each client registers")
    parser.add_argument("--photos-per-dog", type=int, default=2)
    parser.add_argument("--sequential", type=int, default=30, help="requests one at a time, per route")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (default: SQLite in a temp dir)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    needed = args.clients * args.dogs * args.photos_per_dog + 2 * args.sequential + 1
    samples = photos(args.data, needed)
    assert len(samples) >= needed and len(set(samples)) == len(samples), "not enough distinct photos"
    sequential_predict = samples[: args.sequential]
    sequential_register = samples[args.sequential : 2 * args.sequential]
    rest = samples[2 * args.sequential + 1 :]
    per_client = args.dogs * args.photos_per_dog
    dogs = [
        [
            rest[c * per_client + d * args.photos_per_dog : c * per_client + (d + 1) * args.photos_per_dog]
            for d in range(args.dogs)
        ]
        for c in range(args.clients)
    ]

    load_before = os.getloadavg()[0]
    model = model_time(sequential_predict, threads=1)
    with tempfile.TemporaryDirectory(prefix="dogbot-bench-api-") as scratch:
        data_dir = Path(scratch) / "data"
        url = args.database_url or f"sqlite:///{data_dir / 'dogbot.db'}"
        with live_api(data_dir, args.database_url or None) as api:
            tokens = [api.new_token(f"client-{i:02d}") for i in range(args.clients)]
            one_by_one(api, tokens[0], [samples[2 * args.sequential]], "/v1/predict")  # warm-up
            predict = one_by_one(api, tokens[0], sequential_predict, "/v1/predict")
            register = one_by_one(api, tokens[0], sequential_register, "/v1/dogs")
            rss_rest = peak_rss_mb(api.pid, "VmRSS")
            latencies, made, wall = at_once(api, tokens, dogs)
            rss_peak = peak_rss_mb(api.pid)
        counts = check_catalog(url, made)

    expected = args.clients * args.dogs
    ok = (
        counts["answers"] == counts["distinct codes answered"] == counts["dogs in the database"] == expected
        and counts["dogs holding exactly their photos"] == expected
        and counts["photos in the database"] == expected * args.photos_per_dog
    )
    model_ms = model["total"] * 1000
    target_ms = 1.5 * model_ms + 50
    predict_p50, register_p50 = (statistics.median(times) * 1000 for times in (predict, register))
    overhead = {"predict": predict_p50 - model_ms, "register": register_p50 - model_ms}
    verdict = ", ".join(
        f"{'met' if value <= target_ms else 'NOT met'} for {route}" for route, value in overhead.items()
    )

    def ms(times: list[float]) -> str:
        return f"{statistics.median(times) * 1000:.0f} ms / {percentile(times, 0.95) * 1000:.0f} ms"

    photos_sent = expected * args.photos_per_dog
    rows = [
        ("model alone, decode + forward (batch 1), p50", f"{model_ms:.0f} ms"),
        (f"POST /v1/predict, one at a time ({len(predict)}), p50 / p95", ms(predict)),
        (f"POST /v1/dogs with 1 photo, one at a time ({len(register)}), p50 / p95", ms(register)),
        (
            "API's own overhead at p50 (request − model): predict / register",
            f"{overhead['predict']:.0f} ms / {overhead['register']:.0f} ms",
        ),
        ("target: overhead ≤ 1.5 × model + 50 ms", f"{target_ms:.0f} ms ({verdict})"),
        (
            f"{args.clients} clients × {args.dogs} dogs of {args.photos_per_dog} photos at once: "
            "POST /v1/dogs p50 / p95",
            ms(latencies),
        ),
        (
            "that run's wall time / throughput",
            f"{wall:.1f} s / {len(latencies) / wall:.1f} dogs/s ({photos_sent / wall:.1f} photos/s)",
        ),
        (
            "dogs answered / distinct codes / in the database / holding exactly their photos",
            " / ".join(
                str(counts[key])
                for key in (
                    "answers",
                    "distinct codes answered",
                    "dogs in the database",
                    "dogs holding exactly their photos",
                )
            )
            + f" (of {expected})",
        ),
        ("photos stored for them", f"{counts['photos in the database']} (of {photos_sent})"),
        ("nothing lost or duplicated", "yes" if ok else "NO"),
        ("API process RSS at rest / peak", f"{rss_rest:.0f} MB / {rss_peak:.0f} MB"),
        ("database", "PostgreSQL" if args.database_url else "SQLite"),
        ("model threads (ONNX Runtime, in the model-alone row and the API)", "1"),
        ("CPU cores / load average when the run started", f"{os.cpu_count()} / {load_before:.1f}"),
    ]
    table = "| measure | value |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)
    print(table)
    if args.write:
        database = " --database-url URL" if args.database_url else ""
        write_section(
            "## Web API on PostgreSQL" if args.database_url else "## Web API",
            "\n`dogbot api` in its own process on loopback, driven over HTTP with httpx; one token per\n"
            "client. The model-alone row is this process on the same photos (ONNX Runtime, one\n"
            "thread); the API's overhead is a request's p50 minus it (reading the upload, checking every\n"
            "photo before anything is stored, storing, the database rows, the JSON). Reproduce with:\n\n"
            f"    .venv/bin/python bench/bench_api.py --write{database}\n\n" + table,
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
