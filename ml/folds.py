"""Folds for cross-validation that keep a group's photos together and spread each breed's.

Used twice: the judge cross-validates candidates against the champion (``ml.judging``), and
training cross-fits its new rows' offset and temperature when there is no validation split to
choose them on (``ml.training``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np


def _hash(key: str) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)


def assign_folds(groups: Sequence[str], labels: Sequence[str], folds: int) -> np.ndarray:
    """Each photo's fold: a group's photos together, each breed's groups spread over the folds.

    A breed new to the champion has two or three labelled photos at first, and a fold's candidate
    learns it only from two photos outside the fold; dealt round-robin (in hash order, from a
    hash-chosen fold) a breed's photos land in different folds whenever they can, which random
    folds manage about half the time. The same photos give the same folds on every run and machine.
    """
    breed_of: dict[str, str] = {}
    for group, label in zip(groups, labels, strict=True):
        breed_of.setdefault(group, label)
    by_breed: dict[str, list[str]] = {}
    for group, label in breed_of.items():
        by_breed.setdefault(label, []).append(group)
    fold_of_group: dict[str, int] = {}
    for label, members in by_breed.items():
        start = _hash(label) % folds
        for rank, group in enumerate(sorted(members, key=lambda g: (_hash(g), g))):
            fold_of_group[group] = (start + rank) % folds
    return np.array([fold_of_group[g] for g in groups], dtype=int)
