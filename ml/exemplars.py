"""Learn from the first label, before any retrain: labelled photos as exemplars to compare with.

A retrain needs two photos of a breed before the head gets a row for it, and a judge needs more
before it can trust that row; a shelter labels a few photos a day, so a breed staff named yesterday
would wait days. Meanwhile its labelled photos are already here, embedded. This index keeps them:
at answer time, the breeds of the labelled photos nearest to the new one, among breeds the serving
head has no row for, join the breed buttons (so a breed named once is offered on its next
look-alike), and a confident answer is not auto-accepted when such an exemplar is close (the model
would otherwise file it as the known breed it resembles). This is the look-alike rule
(``dogbot.lookalikes``) applied per photo instead of per predicted breed.

Why centred cosine: the backbone's pooled features are all positive, so raw cosines between any two
photos crowd near 1 and "nearest" means little; subtracting the mean embedding of the stored photos
first spreads them out. Measured offline on the dev photos (``bench/bench_exemplars.py``): the two
nearest new-breed exemplars' breeds as buttons put the true breed before staff for ~0.59 of
new-breed photos (0 without), and a veto at similarity 0.5 moved catalog accuracy 0.945 -> 0.953
for 0.417 -> 0.433 of photos asked. Only exemplars among the ``neighbours`` nearest of all count, so
a photo that looks most like labelled photos of known breeds is left alone.

Pure numpy. Immutable: build a new index (``with_exemplars``) and swap it in, so readers on other
threads never see half an update.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ExemplarAdvice:
    """What the labelled exemplars say about one photo."""

    extra_buttons: tuple[str, ...]  # breeds the serving head has no row for, nearest first
    veto: bool  # ask instead of auto-accepting: a labelled photo of such a breed is this close
    nearest_new_breed: str | None  # the closest such exemplar's breed among the neighbours
    similarity: float | None  # its centred cosine similarity

    @classmethod
    def nothing(cls) -> ExemplarAdvice:
        return cls((), False, None, None)


@dataclass(frozen=True)
class ExemplarRules:
    """``max_buttons`` and ``veto_similarity`` come from Settings (``exemplar_*``); the rest are fixed
    here. Read off ``bench/bench_exemplars.py`` (dev photos; check on unseen photos before trusting)."""

    max_buttons: int
    veto_similarity: float  # centred cosine a new-breed exemplar needs to stop an auto-accept
    neighbours: int = 5  # exemplars looked at, nearest of all breeds
    button_similarity: float = 0.0  # centred cosine an exemplar needs to offer its breed


class ExemplarIndex:
    """Unit vectors of centred labelled embeddings, with their breeds."""

    def __init__(self, centre: np.ndarray, units: np.ndarray, breeds: Sequence[str]) -> None:
        if len(units) != len(breeds):
            raise ValueError("one breed per exemplar")
        self.centre = np.asarray(centre, np.float32)
        self.units = np.asarray(units, np.float32).reshape(len(breeds), len(self.centre))
        self.breeds = tuple(breeds)

    @classmethod
    def build(
        cls, embeddings: np.ndarray, breeds: Sequence[str], *, centre: np.ndarray | None = None
    ) -> ExemplarIndex:
        """``centre``: the mean embedding of the stored photos (default: of these exemplars)."""
        embeddings = np.asarray(embeddings, np.float32)
        if centre is None:
            if not len(embeddings):
                raise ValueError("an empty index needs its centre")
            centre = embeddings.mean(axis=0)
        centre = np.asarray(centre, np.float32)
        return cls(centre, _units(embeddings.reshape(-1, len(centre)), centre), breeds)

    def __len__(self) -> int:
        return len(self.breeds)

    def with_exemplars(self, embeddings: np.ndarray, breeds: Sequence[str]) -> ExemplarIndex:
        """A new index with these exemplars added (same centre)."""
        added = _units(np.asarray(embeddings, np.float32).reshape(-1, len(self.centre)), self.centre)
        return ExemplarIndex(self.centre, np.concatenate([self.units, added]), self.breeds + tuple(breeds))

    def nearest(self, embedding: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` most similar exemplars' breeds and centred cosine similarities, nearest first."""
        if not len(self) or k <= 0:
            return []
        query = _units(np.asarray(embedding, np.float32).reshape(1, -1), self.centre)[0]
        similarity = self.units @ query
        k = min(k, len(similarity))
        top = np.argpartition(-similarity, k - 1)[:k]
        top = top[np.argsort(-similarity[top], kind="stable")]
        return [(self.breeds[i], float(similarity[i])) for i in top]

    def advise(
        self,
        embedding: np.ndarray,
        *,
        known: Collection[str],
        shown: Sequence[str] = (),
        predicted: str | None = None,
        rules: ExemplarRules,
    ) -> ExemplarAdvice:
        """Extra buttons and the veto for a photo, from exemplars of breeds not in ``known``.

        ``known``: breeds whose exemplars are left out (the ones the model names well: the base
        model's); ``shown``: buttons already offered; ``predicted``: the model's answer, which an
        exemplar of the same breed does not veto.
        """
        neighbours = [(b, s) for b, s in self.nearest(embedding, rules.neighbours) if b not in known]
        if not neighbours:
            return ExemplarAdvice.nothing()
        extra: list[str] = []
        for breed, similarity in neighbours:
            if similarity >= rules.button_similarity and breed not in shown and breed not in extra:
                extra.append(breed)
        breed, similarity = neighbours[0]
        return ExemplarAdvice(
            extra_buttons=tuple(extra[: rules.max_buttons]),
            veto=similarity >= rules.veto_similarity and breed != predicted,
            nearest_new_breed=breed,
            similarity=similarity,
        )


def _units(embeddings: np.ndarray, centre: np.ndarray) -> np.ndarray:
    centred = embeddings - centre
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    return (centred / np.maximum(norms, 1e-12)).astype(np.float32)
