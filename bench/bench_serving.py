"""Serving benchmark: the ONNX Runtime path against eager torch and the FLOP floor, on the same photos.

Measures, on one machine in one run (ratios are what to compare; the cores are shared):

* per-photo latency, batch 1 (decode excluded, preprocessing and head included: ``Predictor.predict``),
  ONNX Runtime and eager torch interleaved photo by photo, one thread each;
* ms/photo at batch 1/2/4/8/16 for both runtimes, interleaved: the sweep the bot's micro-batch cap
  (``DOGBOT_BATCH_MAX_SIZE``) is chosen from;
* the FLOP floor two ways, from Lite0's convolutions each timed alone (one thread, batch 1, best of
  20): sustained (the issue's way: the dense and the depthwise layers' FLOPs at the rate those layers
  reach together, i.e. the sum of their times) and strict (every FLOP at the rate of the single
  fastest dense or depthwise layer);
* peak RSS of a process that serves with each runtime (its own subprocess each);
* ``dogbot predict --json`` of one photo (wall time, peak RSS by ``/usr/bin/time -v``) against
  ``python -c "import torch"``, interleaved, median of ``--repeats``.

    .venv/bin/python bench/bench_serving.py [--photos 64] [--repeats 5] [--write]

With --write it replaces the "## Serving" section of bench/README.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from readme import write_section  # bench/readme.py: scripts run from bench/ put it on the path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "dogs"
BACKBONE_DIR = Path(os.environ.get("DOGBOT_BACKBONE_DIR", ROOT / ".cache" / "backbones"))
BATCHES = (1, 2, 4, 8, 16)
DOGS = [(i, f"in{i}") for i in range(151, 269)]


def photo_paths(data: Path, count: int) -> list[Path]:
    with (data / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    step = max(1, len(rows) // count)
    return [data / row["path"] for row in rows[::step][:count]]


def predictors() -> dict:
    import torch

    from ml.backbone import TorchEncoder
    from ml.predictor import Predictor
    from ml.runtime import OnnxEncoder

    torch.set_num_threads(1)
    return {
        "onnx": Predictor(OnnxEncoder.open("lite0", BACKBONE_DIR, threads=1), DOGS),
        "torch": Predictor(TorchEncoder("lite0"), DOGS),
    }


def decode(path: Path):
    """A photo decoded as the bot's intake does it (Settings' size limits)."""
    from dogbot.app import intake_rules
    from dogbot.settings import Settings
    from ml.images import load_image

    rules = intake_rules(Settings(_env_file=None))
    return load_image(path.read_bytes(), max_bytes=rules.max_bytes, max_pixels=rules.max_pixels)


def latency(paths: list[Path], data: Path) -> dict:
    """Both runtimes in this process, interleaved, so load on the machine hits both alike."""
    import numpy as np

    runtimes = predictors()
    images = [decode(path) for path in paths]
    for predictor in runtimes.values():
        predictor.predict(images[:2])  # warm-up
    single: dict[str, list[float]] = {name: [] for name in runtimes}
    for image in images:
        for name, predictor in runtimes.items():
            started = time.perf_counter()
            predictor.predict([image])
            single[name].append(time.perf_counter() - started)
    # Every (batch size, slice) pair twice, in a shuffled order: load that comes and goes during the
    # run then lands on all sizes alike instead of on whichever size ran at that moment.
    sweep: dict[str, dict[int, list[float]]] = {name: {b: [] for b in BATCHES} for name in runtimes}
    tasks = [(b, start) for b in BATCHES for start in range(0, len(images) - b + 1, b)] * 2
    random.Random(0).shuffle(tasks)
    for size, start in tasks:
        for name, predictor in runtimes.items():
            started = time.perf_counter()
            predictor.predict(images[start : start + size])
            sweep[name][size].append((time.perf_counter() - started) / size)
    served, reference = (runtimes[n].embed(images[:16]) for n in ("onnx", "torch"))
    # Top-1 agreement on every dev photo (not only the timed ones), eight at a time.
    every = [decode(path) for path in photo_paths(data, 10**6)]
    agree = 0
    for start in range(0, len(every), 8):
        onnx, torch_ = (runtimes[n].predict(every[start : start + 8]) for n in ("onnx", "torch"))
        agree += sum(a.top(1)[0][0] == b.top(1)[0][0] for a, b in zip(onnx, torch_, strict=True))
    options = runtimes["onnx"].backbone._session.get_session_options()
    return {
        "p50_ms": {n: 1000 * float(np.median(v)) for n, v in single.items()},
        "p95_ms": {n: 1000 * float(np.percentile(v, 95)) for n, v in single.items()},
        "min_ms": {n: 1000 * float(np.min(v)) for n, v in single.items()},
        "sweep_ms": {n: {b: 1000 * float(np.median(v)) for b, v in s.items()} for n, s in sweep.items()},
        "sweep_min_ms": {n: {b: 1000 * float(np.min(v)) for b, v in s.items()} for n, s in sweep.items()},
        "max_embedding_difference": float(np.abs(served[0] - reference[0]).max()),
        "floor_ms": flop_floor(runtimes["torch"].backbone.module),
        "photos": len(images),
        "top1_agreement": [agree, len(every)],
        "onnx_options": {
            "intra_op_threads": options.intra_op_num_threads,
            "graph_optimization": str(options.graph_optimization_level).rsplit(".", 1)[-1],
            "cpu_memory_arena": options.enable_cpu_mem_arena,
            "memory_pattern": options.enable_mem_pattern,
        },
        "load_average_after": os.getloadavg()[0],
    }


def flop_floor(module) -> dict:
    """Lite0's FLOPs at the one-thread rates this CPU reaches on Lite0's own convolutions.

    Every convolution is timed alone at batch 1 (best of 20). Sustained: each kind's FLOPs over the
    summed times of its layers (the issue's ~72-78 dense and ~21 depthwise GFLOP/s), so the floor is
    the layers' times added up. Strict: the fastest dense and the fastest depthwise layer set the
    rates, so no network of these layers can run faster.
    """
    import torch

    layers: list[tuple[torch.nn.Module, torch.Tensor, float, str]] = []

    def record(layer, inputs, output) -> None:
        if isinstance(layer, torch.nn.Conv2d):
            per_output = 2 * (layer.in_channels // layer.groups) * layer.kernel_size[0] * layer.kernel_size[1]
            kind = "depthwise" if layer.groups == layer.in_channels > 1 else "dense"
            layers.append((layer, inputs[0].clone(), float(per_output * output.numel()), kind))
        elif isinstance(layer, torch.nn.Linear):
            flops = 2.0 * layer.in_features * layer.out_features * output.shape[0]
            layers.append((layer, inputs[0].clone(), flops, "dense"))

    hooks = [m.register_forward_hook(record) for m in module.modules() if not list(m.children())]
    with torch.inference_mode():
        module(torch.zeros(1, 3, 224, 224))
    for hook in hooks:
        hook.remove()
    flops = {"dense": 0.0, "depthwise": 0.0}
    rates = {"dense": 0.0, "depthwise": 0.0}
    seconds = {"dense": 0.0, "depthwise": 0.0}
    with torch.inference_mode():
        for layer, x, layer_flops, kind in layers:
            flops[kind] += layer_flops
            best = float("inf")
            for _ in range(20):
                started = time.perf_counter()
                layer(x)
                best = min(best, time.perf_counter() - started)
            rates[kind] = max(rates[kind], layer_flops / best)
            seconds[kind] += best
    floor = sum(flops[k] / rates[k] for k in flops)
    return {
        "gflop": sum(flops.values()) / 1e9,
        "gflop_depthwise": flops["depthwise"] / 1e9,
        "dense_gflops": rates["dense"] / 1e9,
        "depthwise_gflops": rates["depthwise"] / 1e9,
        "ms": 1000 * floor,
        "sustained_dense_gflops": flops["dense"] / seconds["dense"] / 1e9,
        "sustained_depthwise_gflops": flops["depthwise"] / seconds["depthwise"] / 1e9,
        "sustained_ms": 1000 * sum(seconds.values()),
    }


def resident(runtime: str, paths: list[Path]) -> dict:
    """Peak RSS of a process that loads one runtime and serves photos with it (batch 1, then 8)."""
    from ml.predictor import Predictor

    if runtime == "onnx":
        from ml.runtime import OnnxEncoder

        predictor = Predictor(OnnxEncoder.open("lite0", BACKBONE_DIR, threads=1), DOGS)
    else:
        import torch

        from ml.backbone import TorchEncoder

        torch.set_num_threads(1)
        predictor = Predictor(TorchEncoder("lite0"), DOGS)
    images = [decode(path) for path in paths[:16]]
    for image in images:
        predictor.predict([image])
    predictor.predict(images[:8])
    return {
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_loaded": "torch" in sys.modules,
    }


def cli_run(command: list[str], env: dict) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MB) of one command (``/usr/bin/time -v``)."""
    result = subprocess.run(
        ["/usr/bin/time", "-v", *command], capture_output=True, text=True, env=env, check=True
    )
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", result.stderr)
    hours, minutes, seconds = (float(g) if g else 0.0 for g in wall.groups())
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    cpu = sum(
        float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", result.stderr).group(1))
        for kind in ("User", "System")
    )
    return hours * 3600 + minutes * 60 + seconds, cpu, rss / 1024


def cli(photo: Path, repeats: int) -> dict:
    home = Path(tempfile.mkdtemp(prefix="dogbot-bench-serving-"))
    env = {
        **os.environ,
        "DOGBOT_DATA_DIR": str(home),
        "DOGBOT_BACKBONE_DIR": str(BACKBONE_DIR),
        "DOGBOT_TORCH_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("DOGBOT_DATABASE_URL", None)
    dogbot = [str(Path(sys.executable).parent / "dogbot"), "predict", "--json", str(photo)]
    import_torch = [sys.executable, "-c", "import torch"]
    cli_run(dogbot, env)  # first run creates the database
    runs: dict[str, list[tuple[float, float, float]]] = {"predict": [], "import_torch": []}
    for _ in range(repeats):
        runs["predict"].append(cli_run(dogbot, env))
        runs["import_torch"].append(cli_run(import_torch, env))
    return {
        name: {
            "wall_s": statistics.median(w for w, _, _ in values),
            "cpu_s": statistics.median(c for _, c, _ in values),
            "peak_rss_mb": statistics.median(r for _, _, r in values),
        }
        for name, values in runs.items()
    }


def subprocess_json(*args: str) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def tables(result: dict) -> str:
    lat, floor = result["latency"], result["latency"]["floor_ms"]
    cli_ = result["cli"]
    sustained, strict = floor["sustained_ms"], floor["ms"]
    lines = [
        "| per photo, batch 1 (decoded photo -> answer) | p50 ms | p95 ms | fastest ms | p50 × floor "
        "| fastest × floor | p50 × strict floor | fastest × strict floor | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| FLOP floor (the issue's): {floor['gflop']:.2f} GFLOP ({floor['gflop_depthwise']:.2f} depthwise) "
        f"at {floor['sustained_dense_gflops']:.0f} / {floor['sustained_depthwise_gflops']:.0f} GFLOP/s "
        f"(Lite0's dense / depthwise layers together, each alone at batch 1) | {sustained:.1f} | | | 1.00 "
        f"| 1.00 | | | |",
        f"| strict FLOP floor: the same at {floor['dense_gflops']:.0f} / {floor['depthwise_gflops']:.0f} "
        f"GFLOP/s (the single fastest dense / depthwise layer) | {strict:.1f} | | | | | 1.00 | 1.00 | |",
    ]
    for name, label in (("onnx", "ONNX Runtime (served)"), ("torch", "eager torch (timm)")):
        p50, fastest = lat["p50_ms"][name], lat["min_ms"][name]
        lines.append(
            f"| {label} | {p50:.1f} | {lat['p95_ms'][name]:.1f} | {fastest:.1f} | {p50 / sustained:.2f} "
            f"| {fastest / sustained:.2f} | {p50 / strict:.2f} | {fastest / strict:.2f} "
            f"| {result['rss'][name]['peak_rss_mb']:.0f} |"
        )
    lines += [
        "",
        "| ms/photo at batch | " + " | ".join(str(b) for b in BATCHES) + " |",
        "|---" * (len(BATCHES) + 1) + "|",
    ]
    for name, label in (("onnx", "ONNX Runtime"), ("torch", "eager torch")):
        for key, kind in (("sweep_ms", "median"), ("sweep_min_ms", "fastest")):
            sweep = lat[key][name]
            lines.append(f"| {label}, {kind} | " + " | ".join(f"{sweep[str(b)]:.1f}" for b in BATCHES) + " |")
    lines += [
        "",
        "| one process (medians) | wall s | CPU s (user + system) | peak RSS MB |",
        "|---|---|---|---|",
    ]
    for name, label in (
        ("predict", "`dogbot predict --json` one photo"),
        ("import_torch", '`python -c "import torch"`'),
    ):
        run = cli_[name]
        lines.append(f"| {label} | {run['wall_s']:.2f} | {run['cpu_s']:.2f} | {run['peak_rss_mb']:.0f} |")
    predict, torch_ = cli_["predict"], cli_["import_torch"]
    lines += [
        f"| ratio | {predict['wall_s'] / torch_['wall_s']:.2f} | {predict['cpu_s'] / torch_['cpu_s']:.2f} "
        f"| {predict['peak_rss_mb'] / torch_['peak_rss_mb']:.2f} |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("DOGBOT_EVAL_DATA", DEFAULT_DATA)))
    parser.add_argument("--photos", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="update bench/README.md")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one measurement in this process
    args = parser.parse_args()
    paths = photo_paths(args.data, args.photos)
    if args.one:
        print(json.dumps(latency(paths, args.data) if args.one == "latency" else resident(args.one, paths)))
        return

    from ml.runtime import ensure_exported

    ensure_exported("lite0", BACKBONE_DIR)
    load = os.getloadavg()[0]
    common = ["--data", str(args.data), "--photos", str(args.photos)]
    result = {
        "latency": subprocess_json("--one", "latency", *common),
        "rss": {name: subprocess_json("--one", name, *common) for name in ("onnx", "torch")},
        "cli": cli(paths[0], args.repeats),
    }
    assert not result["rss"]["onnx"]["torch_loaded"], "the ONNX Runtime process imported torch"
    markdown = tables(result)
    print(markdown)
    agree, every = result["latency"]["top1_agreement"]
    options = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in result["latency"]["onnx_options"].items())
    print(f"top-1 agreement {agree}/{every}; ONNX Runtime session: {options}")
    if args.write:
        body = (
            f"\nMade by `.venv/bin/python bench/bench_serving.py --write` on {os.cpu_count()} CPU cores, one "
            f"thread per runtime, load average {load:.1f} at the start; {result['latency']['photos']} dev "
            f"photos, the two runtimes interleaved photo by photo (largest embedding difference "
            f"{result['latency']['max_embedding_difference']:.1e}; load average "
            f"{result['latency']['load_average_after']:.1f} after the timing). Top-1 breed the same on "
            f"{agree} of {every} dev photos. ONNX Runtime session: {options}. Peak RSS: a process that "
            f"loads one runtime and serves 16 photos at batch 1 and 8 at batch 8.\n\n{markdown}\n"
        )
        write_section("## Serving", body)


if __name__ == "__main__":
    main()
