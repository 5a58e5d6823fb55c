"""Embeddings of the shared dev photos, computed once and cached: the lifecycle benchmarks reuse them.

For every row of ``manifest.csv`` and ``other_breeds.csv``: the Lite0 embedding and dog probability of
the photo as it is and darkened (PIL ``ImageEnhance.Brightness`` x0.4, a night-time kennel shot), plus
the cheap image statistics the drift job compares. Lite0 takes ~25 ms a photo on 2 CPU cores, so the
cache (``data/bench/dev_embeddings_<model>.npz``, ignored by git) saves a minute or two on every bench
run. The model is the deployment's default (``Settings.model``) unless ``--model`` names another.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import numpy as np
from PIL import ImageEnhance

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DARKEN = 0.4
CSVS = ("manifest.csv", "other_breeds.csv")


def backbone_dir() -> Path:
    """Where the benchmarks keep the exported ONNX backbones (the tests' folder: exported once per clone)."""
    return Path(os.environ.get("DOGBOT_BACKBONE_DIR", ROOT / ".cache" / "backbones"))


def base_predictor(taxonomy):
    """Version 0 of the deployment's model (Settings' default) on ONNX Runtime, as the bot serves it."""
    from dogbot.settings import Settings
    from ml.predictor import Predictor

    return Predictor.pretrained(
        Settings(_env_file=None).model,
        [(b.imagenet_index, b.key) for b in taxonomy.imagenet_breeds()],
        backbone_dir=backbone_dir(),
    )


def known_and_new_rows(
    data: dict[str, np.ndarray], taxonomy, known: set[str], new_breed_min_photos: int
) -> tuple[list[int], list[str], list[bool]]:
    """Rows of the cache for a stream: dogs of ``manifest.csv`` of breeds in ``known``, and photos of
    ``other_breeds.csv`` breeds not in ``known`` that have at least ``new_breed_min_photos`` photos
    (as `dogbot simulate --new-breed-min-photos`). Returns row indices, breed keys, is-new flags."""
    from collections import Counter

    counts = Counter(data["breed"][data["csv"] == "other_breeds.csv"])
    rows, truth, is_new = [], [], []
    for i, (name, csv_name) in enumerate(zip(data["breed"], data["csv"], strict=True)):
        breed = taxonomy.resolve(str(name))
        key = breed.key if breed is not None else str(name)
        if csv_name == "manifest.csv" and key in known:
            rows.append(i), truth.append(key), is_new.append(False)
        elif csv_name == "other_breeds.csv" and key not in known and counts[name] >= new_breed_min_photos:
            rows.append(i), truth.append(key), is_new.append(True)
    return rows, truth, is_new


def eval_data_dir() -> Path:
    return Path(os.environ.get("DOGBOT_EVAL_DATA", ROOT.parent / "shared" / "datasets" / "dogs")).resolve()


def cache_path(model: str) -> Path:
    return ROOT / "data" / "bench" / f"dev_embeddings_{model}.npz"


def load_dev_embeddings(model: str, *, refresh: bool = False) -> dict[str, np.ndarray]:
    """The cached arrays (computing them first if needed); rows follow the two CSVs in order."""
    path = cache_path(model)
    if path.is_file() and not refresh:
        with np.load(path, allow_pickle=False) as cached:
            return {key: cached[key] for key in cached.files}
    arrays = _compute(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    return arrays


def _compute(model: str) -> dict[str, np.ndarray]:
    import torch

    from dogbot.app import intake_rules
    from dogbot.settings import Settings
    from ml.backbone import TorchEncoder
    from ml.images import ImageRejected, image_statistics, load_image
    from ml.predictor import Predictor

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    rules = intake_rules(Settings(_env_file=None))
    folder = eval_data_dir()
    rows = []
    for name in CSVS:
        with (folder / name).open(newline="", encoding="utf-8") as handle:
            rows.extend(dict(row, csv=name) for row in csv.DictReader(handle))
    # ImageNet dog classes 151-268: enough for the dog probability; breed keys are mapped later.
    predictor = Predictor(TorchEncoder(model), [(i, f"in{i}") for i in range(151, 269)])
    out: dict[str, list] = {
        k: [] for k in ("emb", "dog", "stats", "emb_dark", "dog_dark", "stats_dark", "ok")
    }
    batch: list = []

    def flush() -> None:
        for suffix, images in (("", [b[0] for b in batch]), ("_dark", [b[1] for b in batch])):
            emb, dog = predictor.embed(images)
            out["emb" + suffix].extend(emb)
            out["dog" + suffix].extend(dog)
        batch.clear()

    for i, row in enumerate(rows):
        try:
            image = load_image(
                (folder / row["path"]).read_bytes(), max_bytes=rules.max_bytes, max_pixels=rules.max_pixels
            )
        except (ImageRejected, OSError):
            out["ok"].append(False)
            image = None
        if image is None:
            continue
        out["ok"].append(True)
        dark = ImageEnhance.Brightness(image).enhance(DARKEN)
        for suffix, picture in (("", image), ("_dark", dark)):
            s = image_statistics(picture)
            out["stats" + suffix].append([s.width, s.height, s.brightness, s.contrast, s.saturation])
        batch.append((image, dark))
        if len(batch) >= 16:
            flush()
        if i % 100 == 0:
            print(f"embedded {i}/{len(rows)}", file=sys.stderr)
    if batch:
        flush()
    ok = np.array(out["ok"], dtype=bool)
    kept = [row for row, good in zip(rows, ok, strict=True) if good]
    return {
        "path": np.array([r["path"] for r in kept]),
        "breed": np.array([r["breed"] for r in kept]),
        "csv": np.array([r["csv"] for r in kept]),
        "imagenet_index": np.array([int(r["imagenet_index"] or -1) for r in kept]),
        "overlap": np.array([r["imagenet_overlap"] for r in kept]),
        "sha256": np.array([r["sha256"] for r in kept]),
        "emb": np.stack(out["emb"]).astype(np.float32),
        "dog": np.array(out["dog"], dtype=np.float32),
        "stats": np.array(out["stats"], dtype=np.float32),
        "emb_dark": np.stack(out["emb_dark"]).astype(np.float32),
        "dog_dark": np.array(out["dog_dark"], dtype=np.float32),
        "stats_dark": np.array(out["stats_dark"], dtype=np.float32),
    }


if __name__ == "__main__":
    import argparse

    from dogbot.settings import Settings

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=Settings(_env_file=None).model)
    parser.add_argument("--refresh", action="store_true")
    args = parser.parse_args()
    arrays = load_dev_embeddings(args.model, refresh=args.refresh)
    print({k: v.shape for k, v in arrays.items()})
