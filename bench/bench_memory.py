"""Memory benchmark: peak RSS of `dogbot ingest` for small files with many pixels, next to one small JPEG.

A PNG of one flat colour at 7280x5456 (39.7 megapixels, under the 40-megapixel limit) compresses to
about 100 KB, under every byte limit, yet decodes to 119 MB of RGB. Eight of them in one `dogbot
ingest` call (one batch) is the memory spike the red-team pass found (issue 15): every decoded image
of a batch used to be held until classification. Each case runs `dogbot ingest` in a fresh data
folder under /usr/bin/time -v and reads its "Maximum resident set size"; the PNGs are written to a
temporary folder (never the repository) and removed afterwards.

    .venv/bin/python bench/bench_memory.py [--data ../shared/datasets/dogs] [--count 8] [--write]

Prints a Markdown table; with --write it also replaces the "## Memory" section of bench/README.md.
The limit checked (issue 15): the PNGs' peak at most 600 MB above the single JPEG's.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from readme import write_section  # noqa: E402

DOGBOT = Path(sys.executable).with_name("dogbot")
SIZE = (7280, 5456)
LIMIT_MB = 600
BACKBONE_DIR = Path(os.environ.get("DOGBOT_BACKBONE_DIR", ROOT / ".cache" / "backbones"))


def peak_rss_mb(paths: list[Path], work: Path) -> float:
    """`dogbot ingest PATHS` in a fresh data folder; its maximum resident set size in MB."""
    # The exported backbone is shared and made before measuring: exporting is a one-time install step
    # whose torch child process would otherwise be the peak /usr/bin/time reports (it counts children).
    env = {
        **os.environ,
        "DOGBOT_DATA_DIR": str(work),
        "DOGBOT_TORCH_THREADS": "1",
        "DOGBOT_BACKBONE_DIR": str(BACKBONE_DIR),
    }
    env.pop("DOGBOT_DATABASE_URL", None)
    command = ["/usr/bin/time", "-v", str(DOGBOT), "ingest", *map(str, paths)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"dogbot ingest failed:\n{done.stdout}\n{done.stderr}")
    kilobytes = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return int(kilobytes.group(1)) / 1024


def flat_pngs(folder: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        path = folder / f"flat-{i}.png"
        Image.new("RGB", SIZE, (40 + 20 * i, 90, 160 - 10 * i)).save(path, optimize=True)
        paths.append(path)
    return paths


def small_jpeg(data: Path) -> Path:
    with (data / "manifest.csv").open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["format"] == "JPEG" and not r["quirks"]]
    return data / min(rows, key=lambda r: int(r["width"]) * int(r["height"]))["path"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "dogs")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--write", action="store_true", help="replace the Memory section of bench/README.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dogbot-bench-memory-") as tmp:
        tmp = Path(tmp)
        (tmp / "pngs").mkdir()
        pngs = flat_pngs(tmp / "pngs", args.count)
        jpeg = small_jpeg(args.data)
        png_kb = sum(p.stat().st_size for p in pngs) / args.count / 1024
        peak_rss_mb([jpeg], tmp / "warm-up")  # exports the backbone if this clone has not yet
        baseline = peak_rss_mb([jpeg], tmp / "one-jpeg")
        spike = peak_rss_mb(pngs, tmp / "pngs-data")

    megapixels = SIZE[0] * SIZE[1] / 1e6
    verdict = "within" if spike - baseline <= LIMIT_MB else "OVER"
    table = "\n".join(
        [
            "| `dogbot ingest` of | peak RSS MB |",
            "|---|---|",
            f"| one small JPEG ({jpeg.stat().st_size // 1024} KB) | {baseline:.0f} |",
            f"| {args.count} flat PNGs, {megapixels:.1f} megapixels, {png_kb:.0f} KB each | {spike:.0f} |",
            f"| difference (limit {LIMIT_MB} MB: {verdict}) | {spike - baseline:+.0f} |",
        ]
    )
    print(table)
    if args.write:
        body = (
            f"\n`.venv/bin/python bench/bench_memory.py --count {args.count} --write` "
            f"({datetime.now(UTC):%Y-%m-%d}):\n`/usr/bin/time -v .venv/bin/dogbot ingest PATHS` "
            "(maximum resident set size), each case in a fresh data folder,\none thread, serving on "
            "ONNX Runtime with the backbone exported beforehand (a one-time step). "
            "Each photo is decoded, its statistics taken and it is shrunk to the model's input\n"
            "(`Predictor.prepare`, the model's own transform) before the next is decoded, so the PNGs "
            "cost one\nfull-size decode at a time. Before (commit 1e42e3b), when every decoded photo of "
            "a batch was\nheld until classification: 1361 MB and 2571 MB, +1210. The decode path "
            "itself is unchanged\n(no `Image.draft`/`reduce`), so the model's answers are the same "
            "to the bit (a test checks this).\n\n" + table
        )
        write_section("## Memory", body)


if __name__ == "__main__":
    main()
