"""Model benchmark: accuracy, per-photo latency (batch 1 and batched) and peak memory, Lite0 vs Lite2.

Each model runs in its own subprocess so that its peak memory is its own. Latency is measured on
decoded images (the forward pass and preprocessing), which is what the bot waits for per photo.

    .venv/bin/python bench/bench_model.py [--data ../shared/datasets/dogs] [--models lite0 lite2]

Prints a Markdown table; with --write it also replaces the "## Model" section of bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from readme import write_section  # bench/readme.py: scripts run from bench/ put it on the path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "dogs"
# The served backbone (ONNX Runtime), exported here on first use; load_s includes that export then.
BACKBONE_DIR = Path(os.environ.get("DOGBOT_BACKBONE_DIR", ROOT / ".cache" / "backbones"))


def measure(model: str, data: Path, latency_photos: int, batch_size: int, threads: int) -> dict:
    import numpy as np

    from dogbot.app import intake_rules
    from dogbot.core.evaluation import evaluate
    from dogbot.core.manifest import read_manifest
    from dogbot.core.taxonomy import Taxonomy
    from dogbot.settings import Settings
    from ml.images import load_image
    from ml.predictor import Predictor

    taxonomy = Taxonomy()
    started = time.perf_counter()
    predictor = Predictor.pretrained(
        model,
        [(b.imagenet_index, b.key) for b in taxonomy.imagenet_breeds()],
        backbone_dir=BACKBONE_DIR,
        threads=threads,
    )
    load_seconds = time.perf_counter() - started

    rows = read_manifest(data / "manifest.csv")
    rules = intake_rules(Settings(_env_file=None))
    report = evaluate(predictor, taxonomy, rows, rules=rules, combine=Settings(_env_file=None).dog_combine)

    limits = {"max_bytes": rules.max_bytes, "max_pixels": rules.max_pixels}
    images = [load_image(row.path.read_bytes(), **limits) for row in rows[:latency_photos]]
    predictor.predict(images[:2])  # warm-up
    single = []
    for image in images:
        t = time.perf_counter()
        predictor.predict([image])
        single.append(time.perf_counter() - t)
    batched = []
    for start in range(0, len(images) - batch_size + 1, batch_size):
        t = time.perf_counter()
        predictor.predict(images[start : start + batch_size])
        batched.append((time.perf_counter() - t) / batch_size)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "model": model,
        "threads": threads,
        "load_s": round(load_seconds, 2),
        "top1": report.top1,
        "top3": report.top3,
        "top1_unseen": report.top1_unseen,
        "top3_unseen": report.top3_unseen,
        "not_a_dog_recall": report.not_a_dog_recall,
        "not_a_dog_precision": report.not_a_dog_precision,
        "auto_accept_95": report.auto_accept["0.95"],
        "p50_ms": round(float(np.percentile(single, 50)) * 1000, 1),
        "p95_ms": round(float(np.percentile(single, 95)) * 1000, 1),
        "batched_ms_per_photo": round(float(np.median(batched)) * 1000, 1),
        "peak_rss_mb": round(peak_mb),
    }


def table(results: list[dict], batch_size: int) -> str:
    lines = [
        f"| model | top-1 | top-3 | top-1 not ImageNet | top-3 not ImageNet | not-a-dog recall / precision "
        f"| auto-accept at 95 % | p50 ms (batch 1) | p95 ms (batch 1) | ms/photo (batch {batch_size}) "
        f"| peak RSS MB | load s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        auto = r["auto_accept_95"]
        lines.append(
            f"| {r['model']} | {r['top1']:.3f} | {r['top3']:.3f} "
            f"| {r['top1_unseen']:.3f} | {r['top3_unseen']:.3f} "
            f"| {r['not_a_dog_recall']:.3f} / {r['not_a_dog_precision']:.3f} "
            f"| {auto['coverage']:.1%} (conf >= {auto['threshold']:.2f}) | {r['p50_ms']} | {r['p95_ms']} "
            f"| {r['batched_ms_per_photo']} | {r['peak_rss_mb']} | {r['load_s']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("DOGBOT_EVAL_DATA", DEFAULT_DATA)))
    parser.add_argument("--models", nargs="+", default=["lite0", "lite2"])
    parser.add_argument("--latency-photos", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="model threads (the bot's default is 1)")
    parser.add_argument("--write", action="store_true", help="update bench/README.md")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one model in this process
    args = parser.parse_args()

    if args.one:
        print(json.dumps(measure(args.one, args.data, args.latency_photos, args.batch_size, args.threads)))
        return
    results = []
    for model in args.models:
        command = [
            sys.executable,
            __file__,
            "--one",
            model,
            "--data",
            str(args.data),
            "--latency-photos",
            str(args.latency_photos),
            "--batch-size",
            str(args.batch_size),
        ]
        output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
    markdown = table(results, args.batch_size)
    print(markdown)
    if args.write:
        command = "`.venv/bin/python bench/bench_model.py --write`"
        body = (
            f"\nMade by {command} on {os.cpu_count()} CPU cores, {results[0]['threads']} thread(s) of ONNX "
            f"Runtime (the served path), "
            f"load average {os.getloadavg()[0]:.1f} at the end (other work shares these cores: compare the\n"
            f"two rows with each other), on `manifest.csv` of the shared dev photos.\n\n{markdown}\n"
        )
        write_section("## Model", body)


if __name__ == "__main__":
    main()
