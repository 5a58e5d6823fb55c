"""What intake accepts and decides alone, apart from intake itself: `dogbot predict` applies the
same rules without importing the catalog and its database (dogbot/core/intake.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IntakeRules:
    """What intake accepts and decides alone (values from ``Settings``; see its comments)."""

    dog_threshold: float  # "is it a dog?": ml.predictor.is_dog
    not_a_dog_below: float  # below this dog probability, filed as not a dog without asking
    auto_accept_threshold: float  # at or above this breed confidence, labelled without asking
    max_bytes: int
    max_pixels: int
