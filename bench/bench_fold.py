"""Fold cost against catalog size: time and rows written per fold, 1,000 to 50,000 labelled photos.

Each catalog is filled with synthetic rows (a photo, an import label and a prediction with a full
1,280-number embedding, as ``bench_intake.py`` fills them). Then, per catalog: the first fold (it
lists every photo); five folds after one new staff label each (a photo relabelled); one fold after a
second person agreed with one of those (nothing changed); ``prune`` (no model refers to any version); and
putting the newest version together (``dataset_items``, what retrain and drift read). Before dataset
versions stored changes, every fold wrote one row per labelled photo. ``--postgres URL`` adds a
PostgreSQL catalog past its 65,535-parameter limit (70,001 photos), in a schema dropped afterwards.

    .venv/bin/python bench/bench_fold.py [--sizes 1000 10000 50000] [--postgres URL] [--write]

With --write it replaces the "## Fold" section of bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench_intake import fill  # bench/: scripts run from bench/ put it on the path
from readme import write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
NOW = datetime(2026, 1, 1, tzinfo=UTC)
ONE_LABEL_FOLDS = 5


def measure(url: str, size: int) -> dict:
    from jobs.fold import fold, prune
    from storage import lifecycle_repository as repo
    from storage.db import make_engine, session
    from storage.tables import Label
    from storage.vocabulary import LabelSource

    engine = make_engine(url)
    fill(engine, size)
    clock = iter(NOW + timedelta(hours=h) for h in range(100))

    def timed_fold():
        started = time.perf_counter()
        result = fold(engine, now=next(clock), val_share=0.2, golden_size=0)
        return time.perf_counter() - started, result

    def label(photo_id: int, breed: str, user_id: int) -> None:
        with session(engine) as s:
            s.add(Label(photo_id=photo_id, breed=breed, source=LabelSource.STAFF, user_id=user_id))
            s.commit()

    first_s, first = timed_fold()
    one_label = []
    for i in range(ONE_LABEL_FOLDS):
        label(1 + (i * 7919) % size, "boxer", 100 + i)
        seconds, result = timed_fold()
        assert result.created
        one_label.append((seconds, result.n_changed))
    label(1, "boxer", 99)  # a second person agrees with the first one-label fold's answer
    unchanged_s, unchanged = timed_fold()
    assert not unchanged.created
    started = time.perf_counter()
    pruned = prune(engine)
    prune_s = time.perf_counter() - started
    with session(engine) as s:
        started = time.perf_counter()
        items = repo.dataset_items(result.version, session=s)  # the newest is never pruned
        read_s = time.perf_counter() - started
    assert len(items) == size
    engine.dispose()
    return {
        "first_s": first_s,
        "first_rows": first.n_changed,
        "one_label_s": statistics.median(s for s, _ in one_label),
        "one_label_rows": max(n for _, n in one_label),
        "unchanged_s": unchanged_s,
        "prune_s": prune_s,
        "pruned": len(pruned.removed),
        "read_s": read_s,
    }


def postgres_schema(url: str):
    import sqlalchemy

    schema = f"dogbot_bench_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')

    def drop() -> None:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()

    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}", drop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--postgres", help="a PostgreSQL URL: adds a 70,001-photo catalog there")
    parser.add_argument("--write", action="store_true", help="update bench/README.md")
    args = parser.parse_args()

    load = os.getloadavg()[0]
    scratch = Path(tempfile.mkdtemp(prefix="dogbot-bench-fold-"))
    runs = [(f"SQLite, {size:,}", size, f"sqlite:///{scratch / f'{size}.db'}", None) for size in args.sizes]
    if args.postgres:
        url, drop = postgres_schema(args.postgres)
        runs.append(("PostgreSQL, 70,001", 70_001, url, drop))
    lines = [
        "| database, labelled photos | first fold s (rows) | fold after one new label s (rows) "
        "| rows a fold wrote before | fold, nothing changed s (rows) | prune s (versions pruned) "
        "| put the newest version together s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, size, url, drop in runs:
        try:
            r = measure(url, size)
        finally:
            if drop is not None:
                drop()
        lines.append(
            f"| {name} | {r['first_s']:.2f} ({r['first_rows']:,}) | {r['one_label_s']:.3f} "
            f"({r['one_label_rows']}) | {size:,} | {r['unchanged_s']:.3f} (0) | {r['prune_s']:.2f} "
            f"({r['pruned']}) | {r['read_s']:.2f} |"
        )
        print(lines[-1], flush=True)
    markdown = "\n".join(lines)
    print(markdown)
    if args.write:
        command = "bench/bench_fold.py" + (" --postgres URL" if args.postgres else "")
        body = (
            f"\nMade by `.venv/bin/python {command} --write` on {os.cpu_count()} CPU cores, load "
            f"average {load:.1f} at the start. Catalogs of synthetic rows (a photo, an import label, a "
            f"prediction with a 5 KB embedding); fold after one new label: the median of "
            f"{ONE_LABEL_FOLDS} folds, each after one photo was relabelled by staff. A dataset version "
            f"stores what changed against its parent (`storage/lifecycle_tables.py`); `prune` retired the "
            f"versions no model was trained on, deleting only the items no kept version reads.\n\n"
            f"{markdown}\n"
        )
        write_section("## Fold", body)


if __name__ == "__main__":
    main()
