"""One answer from several photos of one animal: the photos' breed probabilities combined.

Two ways, compared on the dev photos in bench/bench_dogs.py (bench/README.md, "Dogs"):

* ``mean``: the average of the photos' probabilities (a committee that votes with its confidence);
* ``log_mean``: the average of their log-probabilities, renormalised (the product of experts: every
  photo must find the breed plausible, so one blurred photo's runner-up cannot win).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from ml.predictor import ModelOutput

Combine = Literal["mean", "log_mean"]
COMBINES: tuple[Combine, ...] = ("mean", "log_mean")
_FLOOR = 1e-12  # log(0) guard: a probability the head rounds to zero still counts as very unlikely


def combine_probabilities(probabilities: np.ndarray, how: Combine) -> np.ndarray:
    """``probabilities`` (photos, breeds), rows summing to 1 -> one row summing to 1."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or len(probabilities) == 0:
        raise ValueError("combine at least one row of probabilities")
    if how == "mean":
        combined = probabilities.mean(axis=0)
    elif how == "log_mean":
        logs = np.log(np.maximum(probabilities, _FLOOR)).mean(axis=0)
        combined = np.exp(logs - logs.max())
    else:
        raise ValueError(f"unknown way to combine {how!r}; choose from {', '.join(COMBINES)}")
    return (combined / combined.sum()).astype(np.float32)


def combine_outputs(outputs: Sequence[ModelOutput], how: Combine) -> ModelOutput:
    """The model's answer about one animal from its photos' answers (all by one model version).

    The dog probability is the photos' mean (one photo of the kennel wall does not make a dog a
    chair); the embedding the photos' mean, the animal's centre.
    """
    if not outputs:
        raise ValueError("combine at least one photo")
    if len({output.model_version for output in outputs}) != 1 or len({o.breed_keys for o in outputs}) != 1:
        raise ValueError("combine outputs of one model version")
    if len(outputs) == 1:
        return outputs[0]
    embedding = np.mean([output.embedding for output in outputs], axis=0).astype(np.float32)
    return ModelOutput(
        embedding=embedding,
        dog_probability=float(np.mean([output.dog_probability for output in outputs])),
        breed_probabilities=combine_probabilities(
            np.stack([output.breed_probabilities for output in outputs]), how
        ),
        breed_keys=outputs[0].breed_keys,
        model_version=outputs[0].model_version,
    )
