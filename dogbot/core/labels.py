"""The one rule that turns many labels of a photo into its catalog label.

Labels are append-only, so a photo can carry an auto-accepted guess, two staff answers that
disagree and a later admin correction. The catalog, the export and the dataset fold all apply
:func:`resolve_label`, so they never disagree about what a photo "is".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from storage.tables import Label
from storage.vocabulary import PEOPLE, SKIP, LabelSource


@dataclass(frozen=True)
class ResolvedLabel:
    breed: str
    label: Label  # the label row that decided it (for source, who, when)
    conflict: bool  # people disagreed about this photo


def resolve_label(labels: Sequence[Label]) -> ResolvedLabel | None:
    """The photo's label: an admin's latest word wins; else the majority of people; else auto/import.

    Each person counts once, with their latest answer (a staff member who corrects themselves
    does not outvote a colleague). Ties go to the most recent answer. ``skip`` never counts.
    """
    answers = sorted((label for label in labels if label.breed != SKIP), key=_order)
    if not answers:
        return None
    people = [label for label in answers if label.source in PEOPLE]
    latest_by_person: dict[int | None, Label] = {}
    for label in people:
        latest_by_person[label.user_id] = label
    distinct = {label.breed for label in latest_by_person.values()}
    conflict = len(distinct) > 1

    admins = [label for label in people if label.source == LabelSource.ADMIN]
    if admins:
        return ResolvedLabel(admins[-1].breed, admins[-1], conflict)
    if latest_by_person:
        votes = Counter(label.breed for label in latest_by_person.values())
        best = max(votes.values())
        winner = max((label for label in latest_by_person.values() if votes[label.breed] == best), key=_order)
        return ResolvedLabel(winner.breed, winner, conflict)
    imports = [label for label in answers if label.source == LabelSource.IMPORT]
    decided = imports[-1] if imports else answers[-1]
    return ResolvedLabel(decided.breed, decided, False)


def _order(label: Label) -> tuple:
    return (label.created_at, label.id or 0)
