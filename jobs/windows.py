"""Windows of photos as the drift job compares them: arrays per photo, read once from the database.

Kept apart from ``jobs.drift`` so that ``jobs.incidents`` (which tells what changed between two
windows) and the drift job can both use them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np


@dataclass(frozen=True)
class Window:
    photo_ids: list[int]
    embeddings: np.ndarray
    dog_probability: np.ndarray
    brightness: np.ndarray
    pixels: np.ndarray
    shown_breed: list[str | None]  # what the model said when staff saw it
    people_label: list[str | None]
    received: list[datetime]
    # Per photo: could the model that answered have given the staff's label (one of its breeds, or
    # not a dog)? None: unknown (no database), judged against the serving head's breeds instead.
    answerable: list[bool | None] | None = None

    def __len__(self) -> int:
        return len(self.photo_ids)


def window_from_arrays(
    embeddings: np.ndarray,
    dog_probability: np.ndarray,
    brightness: np.ndarray,
    pixels: np.ndarray,
) -> Window:
    """A window without a database (benchmarks, tests): no labels, no dates."""
    n = len(embeddings)
    return Window(
        list(range(n)),
        np.asarray(embeddings, np.float32),
        np.asarray(dog_probability, float),
        np.asarray(brightness, float),
        np.asarray(pixels, float),
        [None] * n,
        [None] * n,
        [],
    )
