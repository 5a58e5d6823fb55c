"""Breeds the model cannot be trusted on yet: look-alikes of breeds it has never learned.

A model that has never seen a Shiba Inu calls one a Basenji, sometimes with 90 % confidence: its
confidence is calibrated over the breeds it knows, so it cannot say "none of these". The first
Shiba Inus are asked about (low confidence) and staff correct them; from then on this module
remembers that "Basenji" answers hide a breed the model cannot name, and the catalog asks about
every Basenji, however confident, instead of filing the next Shiba Inu as a Basenji.

A predicted breed is *shadowed* when staff recently relabelled at least ``min_corrections`` photos
the model had called that breed with a breed the serving model has no row for. Shadowing ends by
itself when a retrained model that knows the new breed is promoted (its corrections no longer
count), or when the corrections grow older than ``days``. In the 30-day simulation
(``bench/README.md``) this was the largest source of catalog errors: new-breed photos auto-accepted
as a similar ImageNet breed.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Collection
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from storage import repository
from storage.db import session as open_session
from storage.vocabulary import PEOPLE, SPECIAL_LABELS


def shadowed_breeds(
    engine: Engine, *, known: Collection[str], since: datetime, min_corrections: int
) -> dict[str, Counter]:
    """Predicted breed -> Counter of the unknown breeds staff named instead (only the shadowed ones).

    One vote per photo, its latest people label: two staff answering the same photo, or one person
    changing their answer, is still one photo.
    """
    with open_session(engine) as session:
        latest = repository.latest_corrections(PEOPLE, since=since, session=session)
    hidden: dict[str, Counter] = {}
    for shown, named in latest.values():
        if named == shown or named in known or named in SPECIAL_LABELS:
            continue
        hidden.setdefault(shown, Counter())[named] += 1
    return {shown: names for shown, names in hidden.items() if sum(names.values()) >= min_corrections}


class Lookalikes:
    """A cached view of :func:`shadowed_breeds` for the intake path: one query a minute, not a photo.

    Labels that name a breed the model does not know clear the cache (they are what the rule is
    about, and rare), so the next photo already sees them; others wait for the next refresh.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        known: Callable[[], Collection[str]],
        clock: Callable[[], datetime],
        min_corrections: int,
        days: int,
        refresh: timedelta = timedelta(minutes=1),
    ) -> None:
        self.engine = engine
        self.known = known
        self.clock = clock
        self.min_corrections = min_corrections
        self.days = days
        self.refresh = refresh
        # Held while querying: one thread refreshes, the others wait for its answer, and a label
        # recorded meanwhile clears the cache after the query, never before (no stale answer kept).
        self._lock = threading.Lock()
        self._cached: tuple[datetime, frozenset[str], dict[str, Counter]] | None = None

    def label_recorded(self, breed: str) -> None:
        """A person labelled a photo ``breed``: forget the cache if the model does not know it."""
        if self.min_corrections > 0 and breed not in SPECIAL_LABELS and breed not in set(self.known()):
            with self._lock:
                self._cached = None

    def shadowed(self) -> dict[str, Counter]:
        if self.min_corrections <= 0:
            return {}
        known = frozenset(self.known())
        with self._lock:
            now = self.clock()
            cached = self._cached
            if cached is not None and cached[1] == known and timedelta(0) <= now - cached[0] < self.refresh:
                return cached[2]
            result = shadowed_breeds(
                self.engine,
                known=known,
                since=now - timedelta(days=self.days),
                min_corrections=self.min_corrections,
            )
            self._cached = (now, known, result)
            return result

    def is_shadowed(self, breed: str) -> bool:
        return breed in self.shadowed()
