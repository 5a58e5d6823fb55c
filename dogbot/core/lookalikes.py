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

The same memory works per photo (``ml.exemplars``): every photo a person labelled is an exemplar,
and the breeds of the nearest exemplars that the serving model cannot name are offered as buttons
(a breed named once is offered on its next look-alike) and stop a confident answer from being
auto-accepted. It needs no repeated correction of one predicted breed, so it starts with the first
label.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy.engine import Engine

from ml.exemplars import ExemplarAdvice, ExemplarIndex, ExemplarRules
from ml.predictor import backbone_of
from storage import repository
from storage.db import session as open_session
from storage.vocabulary import PEOPLE, SPECIAL_LABELS

CENTRE_PHOTOS = 1000  # the newest stored photos whose mean embedding centres the cosine


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
        exemplars: ExemplarRules | None = None,
        backbone: Callable[[], str] = lambda: "",
        base_breeds: Collection[str] = (),  # their exemplars are left out (empty: none is)
        refresh: timedelta = timedelta(minutes=1),
    ) -> None:
        self.engine = engine
        self.known = known
        self.clock = clock
        self.min_corrections = min_corrections
        self.days = days
        self.refresh = refresh
        self.exemplar_rules = exemplars  # None: labelled photos are not used as exemplars
        self.backbone = backbone
        self.base_breeds = frozenset(base_breeds)  # the breeds the base model names (ImageNet's)
        self._index: tuple[datetime, str, ExemplarIndex | None] | None = None
        # Held while querying: one thread refreshes, the others wait for its answer, and a label
        # recorded meanwhile clears the cache after the query, never before (no stale answer kept).
        self._lock = threading.Lock()
        self._cached: tuple[datetime, frozenset[str], dict[str, Counter]] | None = None

    def label_recorded(self, breed: str) -> None:
        """A person labelled a photo ``breed``: forget the cache if the model does not know it."""
        if breed not in SPECIAL_LABELS and (breed not in self.base_breeds or breed not in set(self.known())):
            with self._lock:
                self._cached = None
                self._index = None

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

    def advise(
        self, embedding: np.ndarray | bytes, *, predicted: str | None = None, shown: Sequence[str] = ()
    ) -> ExemplarAdvice:
        """Extra buttons and the veto for one photo, from the nearest labelled photos.

        Exemplars of the breeds the base model knew are left out; those of breeds added since count
        even once a retrained model has a row for them: a row learned from a handful of photos is
        weak, and the model's own answer is never vetoed by exemplars of the same breed.
        """
        if self.exemplar_rules is None:
            return ExemplarAdvice.nothing()
        index = self._exemplars()
        if index is None:
            return ExemplarAdvice.nothing()
        if isinstance(embedding, bytes):
            embedding = repository.embedding_from_bytes(embedding)
        if len(embedding) != len(index.centre):
            return ExemplarAdvice.nothing()
        return index.advise(
            embedding, known=self.base_breeds, shown=shown, predicted=predicted, rules=self.exemplar_rules
        )

    def _exemplars(self) -> ExemplarIndex | None:
        """The index of people-labelled photos (refreshed like the shadowed breeds)."""
        backbone = self.backbone()
        with self._lock:
            now = self.clock()
            cached = self._index
            if (
                cached is not None
                and cached[1] == backbone
                and timedelta(0) <= now - cached[0] < self.refresh
            ):
                return cached[2]
            with open_session(self.engine) as session:
                labelled = repository.labelled_embeddings(
                    PEOPLE, since=now - timedelta(days=self.days), session=session
                )
                recent = repository.recent_embeddings(CENTRE_PHOTOS, session=session)

            def same_backbone(version: str) -> bool:
                return not backbone or backbone_of(version) == backbone

            exemplars = [
                (repository.embedding_from_bytes(blob), breed)
                for breed, blob, version in labelled.values()
                if breed not in SPECIAL_LABELS and same_backbone(version)
            ]
            stored = [
                repository.embedding_from_bytes(blob) for blob, version in recent if same_backbone(version)
            ]
            index = None
            if exemplars and stored:
                # Centred on the mean of the newest stored photos, labelled or not: all of them
                # are what "looks alike" is judged against (bench/bench_exemplars.py).
                index = ExemplarIndex.build(
                    np.stack([e for e, _ in exemplars]),
                    [b for _, b in exemplars],
                    centre=np.stack(stored).mean(axis=0),
                )
            self._index = (now, backbone, index)
            return index
