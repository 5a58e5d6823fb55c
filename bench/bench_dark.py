"""Do dark photos need correcting? Top-1 of the base model on dev photos as they are, darkened, and
darkened then corrected two ways, on the same photos in one run.

Darkening is the simulation's night-time kennel shot (PIL ``ImageEnhance.Brightness`` x0.4 by
default). The corrections are applied to the decoded image only, the way intake would apply them
before the model (the stored bytes never change):

- ``autocontrast``: ``ImageOps.autocontrast(cutoff=1)``, stretching the histogram per channel;
- ``gamma``: one gamma per photo that brings its mean brightness to 0.45 (what undarkened dev
  photos average), so dark photos are lifted and others barely move.

Each correction is also applied to the undarkened photos: a correction that helps dark photos but
costs ordinary ones is no help. Photos are the dogs of breeds the base model knows, from
``manifest.csv`` (dev) or any manifest given with ``--manifest``; the spread is a bootstrap over photos.

    .venv/bin/python bench/bench_dark.py [--manifest CSV] [--factor 0.4] [--threshold 0.7]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from dev_embeddings import base_predictor  # bench/ is on the path of a script run from it
from PIL import Image, ImageEnhance, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.images import exposure_corrected  # noqa: E402

TARGET_BRIGHTNESS = 0.45


def gamma_to_brightness(image: Image.Image, target: float = TARGET_BRIGHTNESS) -> Image.Image:
    """Raise every channel to the power that maps the photo's mean luminance to ``target``."""
    mean = np.asarray(image.convert("L"), dtype=np.float32).mean() / 255.0
    mean = min(max(mean, 1e-3), 0.999)
    gamma = np.log(target) / np.log(mean)
    table = [round(255 * (i / 255) ** gamma) for i in range(256)]
    return image.point(table * 3)


def darken(image: Image.Image, factor: float) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(factor)


VARIANTS = {
    "as taken": lambda img, f: img,
    "as taken + autocontrast": lambda img, f: ImageOps.autocontrast(img, cutoff=1),
    "as taken + gamma": lambda img, f: gamma_to_brightness(img),
    "darkened": darken,
    "darkened + autocontrast": lambda img, f: ImageOps.autocontrast(
        ImageEnhance.Brightness(img).enhance(f), cutoff=1
    ),
    "darkened + gamma": lambda img, f: gamma_to_brightness(darken(img, f)),
    # What the bot serves: autocontrast only when the photo is underexposed (ml.images).
    "as taken, stretched when underexposed (served)": lambda img, f: exposure_corrected(img),
    "darkened, stretched when underexposed (served)": lambda img, f: exposure_corrected(darken(img, f)),
}


def underexposed(img: Image.Image) -> bool:
    return exposure_corrected(img) is not img


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_manifest = (
        Path(os.environ.get("DOGBOT_EVAL_DATA", ROOT.parent / "shared" / "datasets" / "dogs"))
        / "manifest.csv"
    )
    parser.add_argument("--manifest", type=Path, default=default_manifest)
    parser.add_argument("--factor", type=float, default=0.4, help="brightness factor of a darkened photo")
    parser.add_argument("--threshold", type=float, default=0.7, help="auto-accept confidence")
    parser.add_argument("--limit", type=int, default=0, help="at most this many photos (0: all)")
    args = parser.parse_args()

    from dogbot.app import intake_rules
    from dogbot.core.manifest import read_manifest
    from dogbot.core.taxonomy import Taxonomy
    from dogbot.settings import Settings
    from ml.images import ImageRejected, load_image

    rules = intake_rules(Settings(_env_file=None))
    taxonomy = Taxonomy()
    predictor = base_predictor(taxonomy)
    predictor.correct_exposure = False  # each variant applies its own correction
    known = set(predictor.head.breed_keys)
    photos: list[tuple[Image.Image, str]] = []
    for row in read_manifest(args.manifest):
        breed = taxonomy.resolve(row.breed)
        key = breed.key if breed is not None else None
        if key not in known:
            continue
        try:
            image = load_image(row.path.read_bytes(), max_bytes=rules.max_bytes, max_pixels=rules.max_pixels)
            photos.append((image, key))
        except (ImageRejected, OSError):
            continue
    if args.limit:
        photos = photos[: args.limit]
    truth = [key for _, key in photos]
    started = time.perf_counter()
    results = {}
    for name, transform in VARIANTS.items():
        correct, accepted, accepted_right, dog = [], 0, 0, 0
        for start in range(0, len(photos), 4):
            images = [transform(img, args.factor) for img, _ in photos[start : start + 4]]
            for output, key in zip(predictor.predict(images), truth[start : start + 4], strict=True):
                best, p = output.top(1)[0]
                correct.append(best == key)
                dog += output.dog_probability >= 0.5
                if p >= args.threshold:
                    accepted += 1
                    accepted_right += best == key
        correct_array = np.array(correct, dtype=float)
        rng = np.random.default_rng(0)
        boots = [correct_array[rng.integers(0, len(correct), len(correct))].mean() for _ in range(1000)]
        results[name] = {
            "top1": correct_array.mean(),
            "ci": (np.percentile(boots, 2.5), np.percentile(boots, 97.5)),
            "auto": accepted / len(correct),
            "auto_precision": accepted_right / accepted if accepted else float("nan"),
            "dog": dog / len(correct),
            "correct": correct_array,
        }
    base = results["as taken"]["correct"]
    print(
        f"{len(photos)} dog photos of known breeds from {args.manifest.name}, brightness x{args.factor}, "
        f"model {predictor.model_version}, {time.perf_counter() - started:.0f} s"
    )
    print(
        f"underexposed (stretched before the model): {sum(underexposed(img) for img, _ in photos)} as taken, "
        f"{sum(underexposed(darken(img, args.factor)) for img, _ in photos)} darkened, of {len(photos)}"
    )
    print(
        "| photos | top-1 (95 % CI) | change vs as taken (paired) | auto-accepted | precision "
        "| seen as a dog |"
    )
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        diff = r["correct"] - base
        print(
            f"| {name} | {r['top1']:.3f} ({r['ci'][0]:.3f}-{r['ci'][1]:.3f}) | {diff.mean():+.3f} "
            f"({int((diff > 0).sum())} gained, {int((diff < 0).sum())} lost) | {r['auto']:.1%} | "
            f"{r['auto_precision']:.3f} | {r['dog']:.1%} |"
        )


if __name__ == "__main__":
    main()
