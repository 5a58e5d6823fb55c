"""How long the `dogbot` command takes to answer, against importing torch (issues 14 and 17).

Measured in one run, interleaved, median of ``--repeats`` (each a fresh process, under
``/usr/bin/time -v``): ``dogbot --help``, ``dogbot models``, ``dogbot predict --json`` of one dev
photo, ``python -c "import torch"`` and ``python -c "import torch, timm"``. The goals: predict under
half of importing torch; ``--help`` and ``models`` under a quarter of importing torch and timm. Wall
time follows the machine's load (the CPU time beside it less so); both ratios are shown.

    .venv/bin/python bench/bench_cli.py [--repeats 5] [--write]

With --write it replaces the "## Command line" section of bench/README.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench_serving import BACKBONE_DIR, DEFAULT_DATA, ROOT, cli_run  # bench/ is on the path
from readme import write_section

# (key, words in the table, the command after the interpreter or the dogbot script, the row it is held to)
COMMANDS = (
    ("help", "`dogbot --help`", ["--help"], ("torch_timm", 0.25)),
    ("models", "`dogbot models`", ["models"], ("torch_timm", 0.25)),
    ("predict", "`dogbot predict --json` one photo", ["predict", "--json"], ("torch", 0.5)),
    ("torch", '`python -c "import torch"`', ["-c", "import torch"], None),
    ("torch_timm", '`python -c "import torch, timm"`', ["-c", "import torch, timm"], None),
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("DOGBOT_EVAL_DATA", DEFAULT_DATA)))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="update bench/README.md")
    args = parser.parse_args()

    from ml.runtime import ensure_exported

    ensure_exported("lite0", BACKBONE_DIR)
    with (args.data / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        photo = args.data / next(csv.DictReader(handle))["path"]
    home = Path(tempfile.mkdtemp(prefix="dogbot-bench-cli-"))
    env = {
        **os.environ,
        "DOGBOT_DATA_DIR": str(home),
        "DOGBOT_BACKBONE_DIR": str(BACKBONE_DIR),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("DOGBOT_DATABASE_URL", None)
    dogbot = str(Path(sys.executable).parent / "dogbot")

    def command(key: str, tail: list[str]) -> list[str]:
        if key.startswith("torch"):
            return [sys.executable, *tail]
        return [dogbot, *tail, *([str(photo)] if key == "predict" else [])]

    cli_run(command("predict", ["predict", "--json"]), env)  # the first run creates the database
    load = os.getloadavg()[0]
    runs: dict[str, list[tuple[float, float, float]]] = {key: [] for key, *_ in COMMANDS}
    for _ in range(args.repeats):
        for key, _words, tail, _goal in COMMANDS:
            runs[key].append(cli_run(command(key, tail), env))
    median = {
        key: [statistics.median(run[i] for run in values) for i in range(3)] for key, values in runs.items()
    }
    lines = [
        "| one process (medians) | wall s | CPU s (user + system) | peak RSS MB | wall × goal's row "
        "| CPU × goal's row | goal |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, words, _tail, goal in COMMANDS:
        wall, cpu, rss = median[key]
        if goal is None:
            lines.append(f"| {words} | {wall:.2f} | {cpu:.2f} | {rss:.0f} | | | |")
            continue
        against, share = goal
        base_wall, base_cpu, _ = median[against]
        lines.append(
            f"| {words} | {wall:.2f} | {cpu:.2f} | {rss:.0f} | {wall / base_wall:.2f} | {cpu / base_cpu:.2f} "
            f"| under {share} × {dict((k, w) for k, w, *_ in COMMANDS)[against]} |"
        )
    markdown = "\n".join(lines)
    print(markdown)
    if args.write:
        body = (
            f"\nMade by `.venv/bin/python bench/bench_cli.py --write` on {os.cpu_count()} CPU cores, load "
            f"average {load:.1f} at the start; each command a fresh process, the five interleaved, median "
            f"of {args.repeats}. `dogbot models` and `predict` on a SQLite catalog with the base model "
            f"(made by a first `predict`), the serving backbone already exported.\n\n"
            f"{markdown}\n"
        )
        write_section("## Command line", body)


if __name__ == "__main__":
    main()
