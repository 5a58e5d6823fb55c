"""Error analysis for admins (/errors): where the model is wrong, from people's answers, and what the
bot does about it now (issue 28).

People's answers to the model's breed answers say which breeds it gets wrong and which it takes for
which ("said Siberian Husky, people said Alaskan Malamute: 7 times"). For each such pair, the rule in
force (dogbot/core/asking.py) says from what confidence the bot now accepts that answer without
asking: the lowest confidence at which the answer's chance of being right reaches the rule's cut,
for the model's breed hesitating with the one people said; none on the grid means it always asks.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy.engine import Engine

from dogbot.core.asking import Answer, AskDecision, AskPolicy

GRID = np.round(np.arange(0.01, 0.9995, 0.001), 3)  # the confidences searched, 1 % to 99.9 %


@dataclass(frozen=True)
class Confusion:
    """The model said ``predicted``, people said ``said``, ``times`` photos."""

    predicted: str
    said: str
    times: int
    # The bot accepts this answer without asking from this confidence up; None: it always asks.
    accepts_from: float | None


@dataclass(frozen=True)
class BreedErrors:
    breed: str  # the model's answer
    wrong: int
    checked: int  # people's answers about it


@dataclass(frozen=True)
class ErrorAnalysis:
    days: int
    checked: int  # photos people answered about, whose model answer was a breed
    wrong: int
    mode: str  # the rule in force: AskDecision.mode
    fallback_threshold: float
    confusions: list[Confusion] = field(default_factory=list)
    breeds: list[BreedErrors] = field(default_factory=list)


def accepts_from(decision: AskDecision, breed: str, second: str | None, *, fallback: float) -> float | None:
    """The lowest confidence (on :data:`GRID`) at which the rule accepts ``breed`` hesitating with
    ``second`` without asking; None where it always asks."""
    if fallback > 1:
        return None  # staff are asked about every photo
    if decision.reliability is None or decision.cut is None:
        return fallback
    chances = decision.reliability.probabilities([Answer(breed, float(c), second) for c in GRID])
    meeting = np.flatnonzero(chances >= decision.cut)
    return float(GRID[meeting[0]]) if len(meeting) else None


def analyse_errors(
    engine: Engine,
    asking: AskPolicy,
    *,
    fallback_threshold: float,
    now: datetime,
    days: int = 90,
    top: int = 5,
) -> ErrorAnalysis:
    """The ``top`` pairs and breeds the model got wrong most in the last ``days`` days."""
    from storage import asking_repository
    from storage.db import session as open_session

    with open_session(engine) as session:
        rows = asking_repository.people_verdicts(session=session, since=now - timedelta(days=days))
    decision = asking.decision()
    pairs = Counter((breed, said) for breed, _c, _s, said in rows if said != breed)
    checked = Counter(breed for breed, *_ in rows)
    wrong = Counter(breed for breed, _c, _s, said in rows if said != breed)
    confusions = [
        Confusion(breed, said, times, accepts_from(decision, breed, said, fallback=fallback_threshold))
        for (breed, said), times in sorted(pairs.items(), key=lambda item: (-item[1], item[0]))[:top]
    ]
    breeds = [
        BreedErrors(breed, n, checked[breed])
        for breed, n in sorted(wrong.items(), key=lambda item: (-item[1], item[0]))[:top]
    ]
    return ErrorAnalysis(
        days=days,
        checked=len(rows),
        wrong=sum(pairs.values()),
        mode=decision.mode,
        fallback_threshold=fallback_threshold,
        confusions=confusions,
        breeds=breeds,
    )
