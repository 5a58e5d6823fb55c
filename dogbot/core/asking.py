"""When to ask: the catalog's accuracy is a target the shelter sets, kept by asking as little as it allows.

The model's confidence alone does not say how often its answer is right: a 90 % Dalmatian is almost
always a Dalmatian, a 90 % Staffordshire Bull Terrier often an American Staffordshire. What people
answered about the model says it. :class:`Reliability` is a logistic regression of "the model's answer
was right" on the logit of its confidence, with an offset per breed it named and per pair of breeds
it hesitated between (its first and second answer), each shrunk toward zero by a Gaussian prior: a
breed with two answers moves little from the global curve, one with forty moves as far as they say.

The rule (selective classification with a risk target): of the serving model's recent answers, accept
without asking the most probably right ones, as many as keep their mean probability of being right at
``target``; ask about the rest. The cut never goes below 0.5 (an answer more likely wrong than right
is asked whatever the others are), nor above ``target``, where every accepted answer alone meets the
target.

Evidence, all about the serving model (a newly promoted one does not inherit the old one's): its
judged answers (the cross-validation candidates' answers on labelled photos they never saw, stored
when it was trained, ``jobs.retrain``), and people's answers to its questions and spot checks. A
person correcting an answer they were not asked about is left out: they chose it because it looked
wrong, which would make the model look worse than it is. Being asked depends on the confidence and
the breeds only, which the regression holds fixed, so asked photos do not bias it.

Before ``min_answers`` answers exist, today's rule holds: accept from a fixed confidence
(``auto_accept_threshold``).
When the spot checks say the accepted answers fall short of the target (the top of their 95 % range is
below it), the cut rises to ``target`` until they recover: the bot asks more (``strict``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy.engine import Engine

from dogbot.core.intervals import wilson_interval

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AskRules:
    """The shelter's choices (``Settings``): see its comments."""

    target_accuracy: float  # 0: off, the fallback threshold decides alone
    spot_check_share: float  # share of answers accepted without asking that staff are asked to check
    min_answers: int = 40
    refresh: timedelta = timedelta(minutes=10)
    recent_answers: int = 300  # the serving model's recent answers the cut is chosen on
    spot_check_days: int = 28  # the spot checks that can make the rule strict


@dataclass(frozen=True)
class Answer:
    """One answer of the model and whether it was right (``right`` is None while nobody said)."""

    breed: str
    confidence: float
    second: str | None = None
    right: bool | None = None


def _logit(confidence: np.ndarray) -> np.ndarray:
    clipped = np.clip(confidence, 1e-4, 1 - 1e-4)
    return np.log(clipped / (1 - clipped))


def pair_of(breed: str, second: str | None) -> str | None:
    """The confusable pair an answer hesitated between, in one order whichever came first."""
    return "|".join(sorted((breed, second))) if second else None


@dataclass
class Reliability:
    """P(the model's answer is right | its confidence, the breed named, the pair hesitated between)."""

    intercept: float
    slope: float
    breed_offset: dict[str, float] = field(default_factory=dict)
    pair_offset: dict[str, float] = field(default_factory=dict)

    # Prior standard deviations of the offsets, in log-odds: a breed can move the curve a lot, but
    # only as far as its own answers carry it (a ridge penalty of 1 / sd^2 per offset).
    BREED_SD = 0.7
    PAIR_SD = 0.7

    @classmethod
    def fit(cls, answers: Sequence[Answer]) -> Reliability:
        from scipy.optimize import minimize

        judged = [a for a in answers if a.right is not None]
        breeds = sorted({a.breed for a in judged})
        pairs = sorted({p for a in judged if (p := pair_of(a.breed, a.second))})
        breed_index = {b: i for i, b in enumerate(breeds)}
        pair_index = {p: i for i, p in enumerate(pairs)}
        n, nb, npairs = len(judged), len(breeds), len(pairs)
        logit = _logit(np.array([a.confidence for a in judged], dtype=np.float64))
        y = np.array([bool(a.right) for a in judged], dtype=np.float64)
        b_rows = np.array([breed_index[a.breed] for a in judged], dtype=np.int64)
        p_rows = np.array([pair_index.get(pair_of(a.breed, a.second) or "", -1) for a in judged])
        has_pair = p_rows >= 0
        penalty = np.concatenate(
            [[1e-4, 1e-4], np.full(nb, 1 / cls.BREED_SD**2), np.full(npairs, 1 / cls.PAIR_SD**2)]
        )

        def score(w: np.ndarray) -> np.ndarray:
            z = w[0] + w[1] * logit + w[2 + b_rows]
            z[has_pair] += w[2 + nb + p_rows[has_pair]]
            return z

        def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
            z = score(w)
            p = 1 / (1 + np.exp(-z))
            nll = float(np.sum(np.logaddexp(0, z) - y * z)) + 0.5 * float(np.sum(penalty * w * w))
            residual = p - y
            grad = penalty * w
            grad[0] += residual.sum()
            grad[1] += residual @ logit
            np.add.at(grad, 2 + b_rows, residual)
            np.add.at(grad, 2 + nb + p_rows[has_pair], residual[has_pair])
            return nll, grad

        start = np.zeros(2 + nb + npairs)
        start[1] = 1.0
        w = minimize(loss, start, jac=True, method="L-BFGS-B").x if n else start
        return cls(
            intercept=float(w[0]),
            slope=float(w[1]),
            breed_offset={b: float(w[2 + i]) for b, i in breed_index.items()},
            pair_offset={p: float(w[2 + nb + i]) for p, i in pair_index.items()},
        )

    def probability(self, breed: str, confidence: float, second: str | None = None) -> float:
        return float(self.probabilities([Answer(breed, confidence, second)])[0])

    def probabilities(self, answers: Sequence[Answer]) -> np.ndarray:
        if not answers:
            return np.zeros(0)
        logit = _logit(np.array([a.confidence for a in answers], dtype=np.float64))
        offsets = np.array(
            [
                self.breed_offset.get(a.breed, 0.0)
                + self.pair_offset.get(pair_of(a.breed, a.second) or "", 0.0)
                for a in answers
            ]
        )
        return 1 / (1 + np.exp(-(self.intercept + self.slope * logit + offsets)))


def acceptance_cut(probabilities: Sequence[float], target: float) -> float:
    """The lowest probability of being right to accept at, so that the accepted ones' mean meets
    ``target``; within ``[0.5, target]``: an answer more likely wrong than right is always asked."""
    floor = 0.5
    ordered = np.sort(np.asarray(probabilities, dtype=np.float64))[::-1]
    if not len(ordered):
        return target
    means = np.cumsum(ordered) / np.arange(1, len(ordered) + 1)
    # Only where a run of equal values ends: a cut accepts every answer at or above it.
    block_end = np.append(ordered[1:] < ordered[:-1], True)
    meeting = np.flatnonzero((means >= target) & block_end)
    if not len(meeting):
        return target
    return float(min(target, max(floor, ordered[meeting[-1]])))


@dataclass(frozen=True)
class AskDecision:
    """What the rule is now, for people (/status, /errors) and for intake."""

    mode: str  # "fallback" (too few answers), "target" or "strict" (spot checks fell short)
    cut: float | None  # the probability of being right accepted from (None: fallback)
    answers: int
    reliability: Reliability | None = None


class AskPolicy:
    """The rule intake and dog cards apply: ``accepts(breed, confidence, second)``.

    Refitted at most every ``rules.refresh`` (and when the serving model changes), from the
    database; a process holds one.
    """

    def __init__(
        self,
        engine: Engine,
        rules: AskRules,
        *,
        model_version: Callable[[], str],
        clock: Callable[[], datetime],
    ) -> None:
        self.engine = engine
        self.rules = rules
        self.model_version = model_version
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[datetime, str, AskDecision] | None = None

    def decision(self) -> AskDecision:
        if self.rules.target_accuracy <= 0:
            return AskDecision("fallback", None, 0)
        version = self.model_version()
        with self._lock:
            now = self.clock()
            cached = self._cached
            if (
                cached is not None
                and cached[1] == version
                and timedelta(0) <= now - cached[0] < self.rules.refresh
            ):
                return cached[2]
            decided = self._decide(version, now)
            self._cached = (now, version, decided)
            return decided

    def forget(self) -> None:
        """Refit on the next photo (a retrain was promoted, a test changed the evidence)."""
        with self._lock:
            self._cached = None

    def accepts(self, breed: str, confidence: float, second: str | None, *, fallback: float) -> bool:
        """Accept this answer without asking? ``fallback``: the confidence today's rule accepts at
        (``IntakeRules.auto_accept_threshold``); above 1 nothing is accepted, whatever the target."""
        if fallback > 1:
            return False
        decided = self.decision()
        if decided.reliability is None or decided.cut is None:
            return confidence >= fallback
        return decided.reliability.probability(breed, confidence, second) >= decided.cut

    def spot_check(self, sha256: str, model_version: str) -> bool:
        """Is this accepted answer one of the random few staff are asked to check? Decided by the
        photo's hash, so a photo sent twice (or to two replicas) is checked, or not, both times."""
        if self.rules.spot_check_share <= 0:
            return False
        digest = hashlib.sha256(f"spot-check:{model_version}:{sha256}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.rules.spot_check_share

    def _decide(self, version: str, now: datetime) -> AskDecision:
        from storage import asking_repository as repo
        from storage.db import session as open_session

        with open_session(self.engine) as session:
            answers = answers_about(version, session=session)
            recent = [
                Answer(*row)
                for row in repo.recent_answers(version, self.rules.recent_answers, session=session)
            ]
            since = now - timedelta(days=self.rules.spot_check_days)
            checked, right = repo.spot_check_results(session=session, since=since)
        reliability = reliability_of(answers, min_answers=self.rules.min_answers)
        if reliability is None:
            return AskDecision("fallback", None, len(answers))
        population = recent if len(recent) >= 50 else answers
        target = self.rules.target_accuracy
        cut = acceptance_cut(reliability.probabilities(population), target)
        mode = "target"
        if checked and wilson_interval(right, checked)[2] < target:
            cut, mode = target, "strict"
        return AskDecision(mode, cut, len(answers), reliability)


def answers_about(version: str, *, session) -> list[Answer]:
    """What is known of ``version``'s answers: its judged ones and people's (see the module)."""
    from storage import asking_repository as repo

    return [
        Answer(*row)
        for row in repo.judged_answers(version, session=session)
        + repo.people_answers(version, session=session)
    ]


def reliability_of(answers: Sequence[Answer], *, min_answers: int) -> Reliability | None:
    """The fitted reliability, or None with too few answers to learn from, or none wrong yet
    (nothing says where the model errs)."""
    if len(answers) < min_answers or all(a.right for a in answers):
        return None
    return Reliability.fit(answers)
