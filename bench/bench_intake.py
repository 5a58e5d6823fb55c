"""Intake cost against catalog size: one photo stored and classified, in catalogs of 0 to 50,000 photos.

Each catalog is a SQLite database filled with synthetic rows (a photo, its label, a prediction with
a full 1,280-number embedding), as a shelter's would be after that many photos. The same real photos
then go through ``PhotoIntake.submit`` (decode, store, newest-prediction lookup, classify, record) into
every catalog in turn, interleaved, so the machine's load hits all sizes alike; beside it the
newest-prediction lookup alone, as intake now does it and as it was done before (``max(id) GROUP BY
photo_id`` over the whole table, then filtered).

    .venv/bin/python bench/bench_intake.py [--sizes 0 1000 10000 50000] [--photos 30] [--write]

With --write it replaces the "## Intake" section of bench/README.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from readme import write_section  # bench/readme.py: scripts run from bench/ put it on the path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "dogs"
BACKBONE_DIR = Path(os.environ.get("DOGBOT_BACKBONE_DIR", ROOT / ".cache" / "backbones"))


def fill(engine, n_photos: int) -> None:
    import numpy as np
    from sqlalchemy import insert

    from storage import repository
    from storage.db import session
    from storage.tables import Label, Photo, Prediction
    from storage.vocabulary import LabelSource

    embedding = repository.embedding_to_bytes(np.random.default_rng(0).random(1280))
    with session(engine) as s:
        for start in range(0, n_photos, 5000):
            ids = range(start, min(n_photos, start + 5000))
            s.execute(insert(Photo), [{"sha256": f"{i:064x}", "source": "import"} for i in ids])
            s.execute(
                insert(Prediction),
                [
                    {
                        "photo_id": i + 1,
                        "model_version": "lite0-v0",
                        "is_dog": True,
                        "dog_probability": 0.9,
                        "breed": "pug",
                        "confidence": 0.5,
                        "top": [],
                        "embedding": embedding,
                    }
                    for i in ids
                ],
            )
            s.execute(
                insert(Label),
                [{"photo_id": i + 1, "breed": "pug", "source": LabelSource.IMPORT} for i in ids],
            )
        s.commit()


def old_latest_predictions(photo_ids, *, session):
    """The lookup as it was: the newest prediction of every photo, then filtered to these ids."""
    from sqlalchemy import func
    from sqlmodel import select

    from storage.tables import Prediction

    newest = (
        select(Prediction.photo_id, func.max(Prediction.id).label("prediction_id"))
        .group_by(Prediction.photo_id)
        .subquery()
    )
    statement = select(Prediction).join(newest, Prediction.id == newest.c.prediction_id)
    statement = statement.where(Prediction.photo_id.in_(list(photo_ids)))
    return {prediction.photo_id: prediction for prediction in session.exec(statement)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("DOGBOT_EVAL_DATA", DEFAULT_DATA)))
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 1000, 10000, 50000])
    parser.add_argument("--photos", type=int, default=30)
    parser.add_argument("--write", action="store_true", help="update bench/README.md")
    args = parser.parse_args()

    from dogbot.app import ask_rules, dog_rules, intake_rules
    from dogbot.core.breeds import Breeds
    from dogbot.core.catalog import Catalog
    from dogbot.settings import Settings
    from ml.predictor import Predictor
    from storage import repository
    from storage.blobs import LocalPhotoStore
    from storage.db import make_engine, session

    with (args.data / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    photos = [(args.data / r["path"]).read_bytes() for r in rows[:: max(1, len(rows) // args.photos)]]
    photos = photos[: args.photos]
    scratch = Path(tempfile.mkdtemp(prefix="dogbot-bench-intake-"))
    settings = Settings(_env_file=None)
    catalogs, engines, fill_seconds, predictor = {}, {}, {}, None
    for size in args.sizes:
        engine = make_engine(f"sqlite:///{scratch / f'{size}.db'}")
        started = time.perf_counter()
        fill(engine, size)
        fill_seconds[size] = time.perf_counter() - started
        breeds = Breeds(engine)
        if predictor is None:
            imagenet = [(b.imagenet_index, b.key) for b in breeds.taxonomy.imagenet_breeds()]
            predictor = Predictor.pretrained("lite0", imagenet, backbone_dir=BACKBONE_DIR)
        engines[size] = engine
        catalogs[size] = Catalog.open(
            engine,
            LocalPhotoStore(scratch / f"photos-{size}"),
            predictor,
            rules=intake_rules(settings),
            dog_rules=dog_rules(settings),
            ask_rules=ask_rules(settings),
            lookalike_min_corrections=settings.lookalike_min_corrections,
            lookalike_days=settings.lookalike_days,
            breeds=breeds,
        )
    load = os.getloadavg()[0]
    predictor.predict([catalogs[args.sizes[0]].intake.decode(photos[0])])  # warm-up
    intake = {size: [] for size in args.sizes}
    lookup_new = {size: [] for size in args.sizes}
    lookup_old = {size: [] for size in args.sizes}
    for data in photos:
        for size, catalog in catalogs.items():
            started = time.perf_counter()
            result = catalog.intake.submit(data, source="ingest")
            intake[size].append(time.perf_counter() - started)
            with session(engines[size]) as s:
                started = time.perf_counter()
                repository.latest_predictions([result.photo.id], session=s)
                lookup_new[size].append(time.perf_counter() - started)
                started = time.perf_counter()
                old_latest_predictions([result.photo.id], session=s)
                lookup_old[size].append(time.perf_counter() - started)
    base = statistics.median(intake[args.sizes[0]])
    lines = [
        "| catalog photos | intake ms/photo (median) | × empty catalog | newest-prediction lookup ms "
        "| the lookup before (whole-table GROUP BY) ms |",
        "|---|---|---|---|---|",
    ]
    for size in args.sizes:
        ms = statistics.median(intake[size]) * 1000
        new, old = (statistics.median(times[size]) * 1000 for times in (lookup_new, lookup_old))
        lines.append(f"| {size:,} | {ms:.1f} | {ms / (base * 1000):.2f} | {new:.2f} | {old:.2f} |")
    markdown = "\n".join(lines)
    print(markdown)
    if args.write:
        body = (
            f"\nMade by `.venv/bin/python bench/bench_intake.py --write` on {os.cpu_count()} CPU cores, "
            f"load average {load:.1f} at the start: {len(photos)} dev photos through `PhotoIntake.submit` "
            f"(decode, store, classify on ONNX Runtime, record) into SQLite catalogs of synthetic rows "
            f"(a photo, a label and a prediction with a 5 KB embedding each), all sizes interleaved photo "
            f"by photo.\n\n"
            f"{markdown}\n"
        )
        write_section("## Intake", body)


if __name__ == "__main__":
    main()
