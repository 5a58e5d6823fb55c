"""Not a dog, or a dog the model cannot place? The base model's dog probability on the dev photos.

"Is it a dog?" is the ImageNet classifier's probability mass on its dog classes (``ml.predictor``).
A dog of a breed ImageNet lacks (an Australian Cattle Dog, a Greyhound, an Akita) can put its mass
on a dingo, a wolf or a sled, so a photo below ``Settings.dog_threshold`` is not always a cat. For
each threshold: the share of non-dog photos filed as not a dog without a question (the rest are
asked about), and the share of dogs that would be filed as not a dog (each one a wrong entry that
no retrain fixes). Base model ``lite0-v0`` on ONNX Runtime, as served.

    .venv/bin/python bench/bench_not_a_dog.py [--thresholds 0.01 0.02 0.05 0.1 0.2 0.5]
"""

from __future__ import annotations

import argparse
import csv

import numpy as np
from dev_embeddings import base_predictor, eval_data_dir  # bench/ is on the path of a script run from it

from dogbot.core.taxonomy import Taxonomy
from ml.images import ImageRejected, load_image

KINDS = {
    "nondog": "not dogs (`manifest.csv`)",
    "known": "dogs of breeds the base model knows (`manifest.csv`)",
    "new": "dogs of other breeds (`other_breeds.csv`)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.01, 0.02, 0.05, 0.1, 0.2, 0.5])
    args = parser.parse_args()
    predictor = base_predictor(Taxonomy())
    folder = eval_data_dir()
    dog_probability: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for name in ("manifest.csv", "other_breeds.csv"):
        with (folder / name).open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                try:
                    image = load_image(
                        (folder / row["path"]).read_bytes(), max_bytes=20 << 20, max_pixels=40_000_000
                    )
                except (ImageRejected, OSError):
                    continue
                kind = (
                    "nondog" if row["breed"] == "not_a_dog" else "known" if name == "manifest.csv" else "new"
                )
                dog_probability[kind].append(predictor.predict([image])[0].dog_probability)
    print("| photos | n | " + " | ".join(f"below {t:g}" for t in args.thresholds) + " |")
    print("|---|---|" + "---|" * len(args.thresholds))
    for kind, words in KINDS.items():
        values = np.asarray(dog_probability[kind])
        shares = " | ".join(f"{(values < t).mean():.1%}" for t in args.thresholds)
        print(f"| {words} | {len(values)} | {shares} |")


if __name__ == "__main__":
    main()
