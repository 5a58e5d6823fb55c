"""How fast the loop learns, from a simulation's records: the pace keys of ``simulate --json``'s total.

Issue 11 asks whether the loop keeps up with a shelter's pace: how soon a promoted model knows a
breed that started arriving during the run, how often staff find a new breed among the buttons
before that, how many drift messages reached admins, and whether darker photos cost answers. Pure
functions over plain records; ``dogbot.simulation`` fills the records as it replays the stream.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class NewBreedPhoto:
    """What staff saw for one photo of a breed the base model does not know, in stream order."""

    day: int
    breed: str
    auto_accepted_right: bool  # filed without a question, as the right breed
    offered: bool  # asked about, with the true breed among the buttons


@dataclass(frozen=True)
class DarkPhoto:
    """A darkened photo: was the serving model right on it as served, and on the original?"""

    day: int
    right_as_served: bool
    right_undarkened: bool


def new_breed_in_buttons(photos: Sequence[NewBreedPhoto], *, from_nth: int = 3) -> float | None:
    """Share of new-breed photos, from each breed's ``from_nth`` photo on, that staff could file with
    one tap (auto-accepted right, or the true breed among the buttons). The first photos of a breed
    cannot be: nobody has named it yet."""
    seen: Counter = Counter()
    counted = good = 0
    for photo in photos:
        seen[photo.breed] += 1
        if seen[photo.breed] >= from_nth:
            counted += 1
            good += photo.auto_accepted_right or photo.offered
    return round(good / counted, 4) if counted else None


def new_breed_learned_day(
    serving_keys_by_day: Sequence[tuple[int, Collection[str]]], first_seen: Mapping[str, int]
) -> int | None:
    """The first day the model serving at its end has a row for a breed that arrived during the run.

    ``serving_keys_by_day``: (day, breed keys of the model serving after that day's jobs);
    ``first_seen``: breed -> the day its first photo arrived. The base model has no row for these
    breeds, so a row means a promoted retrain learned one.
    """
    for day, keys in sorted(serving_keys_by_day, key=lambda pair: pair[0]):
        keys = set(keys)
        if any(breed in keys and arrived <= day for breed, arrived in first_seen.items()):
            return day
    return None


def dark_gap(photos: Sequence[DarkPhoto], *, last_day: int, days: int = 5) -> float | None:
    """Top-1 on the originals minus top-1 as served, over darkened photos of the last ``days`` days
    up to ``last_day``; None without darkened photos there (no dark shift)."""
    window = [p for p in photos if last_day - days < p.day <= last_day]
    if not window:
        return None
    undarkened = sum(p.right_undarkened for p in window) / len(window)
    served = sum(p.right_as_served for p in window) / len(window)
    return round(undarkened - served, 4)
