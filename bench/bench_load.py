"""Load benchmark: 50 staff send 1,000 photos and press 1,000 buttons at once, through the fake Bot API.

Starts `dogbot run` (long polling) as users do, pointed at the fake Bot API server of the end-to-end
tests, on a fresh data directory (SQLite, or PostgreSQL with --database-url), and drives it with the
load generator of tests/e2e/loadgen.py: each staff member sends a photo, waits for the answer,
presses a breed button, waits for the toast, and goes on to their next photo; all 50 at once. The
photos are small generated JPEGs, each different. Every answer is a question (dog threshold 0), so
every press records a label. Afterwards it checks the database: every photo stored once, every press
recorded once.

    .venv/bin/python bench/bench_load.py [--staff 50] [--photos 1000] [--threads 1] [--write]

Prints a Markdown table; with --write it also replaces the "## Load" section of bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from readme import write_section  # bench/readme.py: scripts run from bench/ put it on the path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT))

from livebot import distinct_jpeg  # noqa: E402
from loadgen import LoadServer, run_load  # noqa: E402

WARM_UP = 10**9  # seed of the warm-up photo, apart from the measured ones


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def check_counts(database_url: str, photos: list[bytes], presses: int) -> dict[str, int]:
    """Rows the bot wrote: photos (each once), people's labels (each press once)."""
    from sqlmodel import select

    from storage.blobs import sha256_of
    from storage.db import make_engine
    from storage.db import session as open_session
    from storage.tables import Label, Photo

    engine = make_engine(database_url, prepare_schema=False)
    try:
        with open_session(engine) as session:
            stored = list(session.exec(select(Photo)))
            labels = [lb for lb in session.exec(select(Label)) if lb.user_id is not None]
    finally:
        engine.dispose()
    counts = {
        "photos sent": len(photos),
        "photo rows": len(stored),
        "distinct photos stored": len({p.sha256 for p in stored} & {sha256_of(d) for d in photos}),
        "presses": presses,
        "labels recorded": len(labels),
        "distinct (photo, person) labels": len({(lb.photo_id, lb.user_id) for lb in labels}),
    }
    lost_or_doubled = (
        counts["photo rows"] != len(photos)
        or counts["distinct photos stored"] != len(photos)
        or counts["labels recorded"] != presses
        or counts["distinct (photo, person) labels"] != presses
    )
    if lost_or_doubled:
        raise SystemExit(f"photos or labels lost or duplicated: {counts}")
    return counts


async def bench(staff: list[int], photos: list[bytes], threads: int, database_url: str) -> dict:
    load = os.getloadavg()[0]
    home = Path(tempfile.mkdtemp(prefix="dogbot-load-"))
    database_url = database_url or f"sqlite:///{home / 'data' / 'dogbot.db'}"
    async with LoadServer() as server:
        env = {
            **os.environ,
            **server.bot_env,
            "DOGBOT_DATA_DIR": str(home / "data"),
            "DOGBOT_DATABASE_URL": database_url,
            "DOGBOT_STAFF_IDS": ",".join(map(str, staff)),
            "DOGBOT_TORCH_THREADS": str(threads),
            # The served backbone, exported once beforehand (as `dogbot db upgrade` does at install).
            "DOGBOT_BACKBONE_DIR": os.environ.get("DOGBOT_BACKBONE_DIR", str(ROOT / ".cache" / "backbones")),
            "DOGBOT_DOG_THRESHOLD": "0",
            "DOGBOT_AUTO_ACCEPT_THRESHOLD": "1.1",
        }
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "dogbot"), "run", env=env, cwd=home,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await server.wait_for_call("getUpdates", timeout=180)
            # Warm-up: the first photo pays for lazy imports and allocator growth (not counted).
            await run_load(server, staff[:1], [distinct_jpeg(WARM_UP)], timeout=120)
            result = await run_load(server, staff, photos, timeout=600)
            rss = peak_rss_mb(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 60)
    counts = check_counts(database_url, [distinct_jpeg(WARM_UP), *photos], len(photos) + 1)
    return {**result.summary(), "rss_mb": rss, "load": load, "counts": counts, "database": database_url}


def table(r: dict, staff: int, threads: int) -> str:
    ms = lambda s: f"{s * 1000:.0f} ms"  # noqa: E731
    counts = r["counts"]
    db = "PostgreSQL" if r["database"].startswith("postgresql") else "SQLite"
    rows = [
        ("staff sending at once", str(staff)),
        ("photos / button presses", f"{r['photos']} / {r['presses']}"),
        ("photo → answer, p50 / p95 / p99 / max",
         " / ".join(ms(r[k]) for k in ("photo_p50", "photo_p95", "photo_p99", "photo_max"))),
        ("press → answer (toast), p50 / p95 / p99 / max",
         " / ".join(ms(r[k]) for k in ("press_p50", "press_p95", "press_p99", "press_max"))),
        ("wall time for the whole run", f"{r['seconds']:.1f} s"),
        ("throughput", f"{r['photos_per_s']:.1f} photos/s and {r['presses_per_s']:.1f} presses/s"),
        ("bot process peak RSS", f"{r['rss_mb']:.0f} MB"),
        ("photo rows / distinct photos stored (incl. 1 warm-up)",
         f"{counts['photo rows']} / {counts['distinct photos stored']} (of {counts['photos sent']} sent)"),
        ("labels recorded / distinct (photo, person)",
         f"{counts['labels recorded']} / {counts['distinct (photo, person) labels']} "
         f"(of {counts['presses']} presses)"),
        ("database", db),
        ("model threads (ONNX Runtime)", str(threads)),
        ("CPU cores / load average when the run started", f"{os.cpu_count()} / {r['load']:.1f}"),
    ]  # fmt: skip
    return "\n".join(["| measure | value |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)])


def write_section_for(markdown: str, command: str) -> None:
    body = (
        "\n"
        "50 staff at once, each sending a photo, waiting for the answer, pressing a breed button and\n"
        "waiting for the toast, then the next photo: `dogbot run` (long polling) through the fake Bot API\n"
        "server of the end-to-end tests, on loopback. Photos are small generated JPEGs, each different;\n"
        "every answer is a question, so every press records a label. The run fails if any photo or\n"
        "label is lost or duplicated. Reproduce with:\n\n"
        f"    {command}\n\n{markdown}\n\n"
        "Latency under this load is queueing: 50 people share one micro-batched model on two busy cores,\n"
        "so photo → answer grows with the queue while a press (one database write, no model) stays\n"
        "short. `make test` runs the same load scaled down (50 staff, 200 photos, 200 presses) on SQLite\n"
        "and PostgreSQL in tests/e2e/test_load.py.\n"
    )
    write_section("## Load", body)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--staff", type=int, default=50)
    parser.add_argument("--photos", type=int, default=1000, help="photos in all; one button press each")
    parser.add_argument("--threads", type=int, default=1, help="model threads in the bot")
    parser.add_argument("--database-url", default="", help="e.g. postgresql://postgres@127.0.0.1/test")
    parser.add_argument(
        "--write", action="store_true", help="update the '## Load' section of bench/README.md"
    )
    args = parser.parse_args()

    staff = list(range(3001, 3001 + args.staff))
    started = time.perf_counter()
    photos = [distinct_jpeg(i) for i in range(args.photos)]
    print(f"generated {len(photos)} photos in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    result = asyncio.run(bench(staff, photos, args.threads, args.database_url))
    markdown = table(result, args.staff, args.threads)
    print(markdown)
    if args.write:
        command = ".venv/bin/python bench/bench_load.py --write"
        if args.database_url:
            command += f" --database-url {args.database_url}"
        write_section_for(markdown, command)


if __name__ == "__main__":
    main()
