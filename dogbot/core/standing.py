"""How the catalog stands, for people (/status): its estimated accuracy and the rule keeping it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from dogbot.core.accuracy import AccuracyEstimate, estimate_from_catalog
from dogbot.core.asking import AskDecision, AskPolicy


@dataclass(frozen=True)
class AccuracyNow:
    """How right the catalog is and the rule that keeps it, for people (/status): the estimate (None
    before the first spot check) and the rule's decision, with the settings that explain both."""

    estimate: AccuracyEstimate | None
    decision: AskDecision
    target: float  # 0: no target, the fallback threshold decides
    fallback_threshold: float  # the confidence accepted from before enough answers exist
    min_answers: int
    spot_check_share: float


def accuracy_now(engine: Engine, asking: AskPolicy, *, fallback_threshold: float) -> AccuracyNow:
    """The whole catalog's estimate and the rule in force now."""
    return AccuracyNow(
        estimate=estimate_from_catalog(engine, min_answers=asking.rules.min_answers),
        decision=asking.decision(),
        target=asking.rules.target_accuracy,
        fallback_threshold=fallback_threshold,
        min_answers=asking.rules.min_answers,
        spot_check_share=asking.rules.spot_check_share,
    )


def newly_strict(
    engine: Engine, asking: AskPolicy, *, fallback_threshold: float, now: datetime
) -> AccuracyNow | None:
    """What to tell admins when the rule has just turned strict (the spot checks say the catalog is
    below the target): the estimate from the spot checks that made it so; None otherwise, and for
    every process but the first to see it. Told again only after the rule was back to the target."""
    from storage import asking_repository
    from storage.db import session as open_session

    decision = asking.decision()
    if decision.mode not in ("strict", "target"):
        return None  # too few answers to say: the notice stands as it is
    with open_session(engine) as session:
        told = asking_repository.mark_strict(decision.mode == "strict", session=session, now=now)
    if not told:
        return None
    since = now - timedelta(days=asking.rules.spot_check_days)
    return AccuracyNow(
        estimate=estimate_from_catalog(engine, since=since, min_answers=asking.rules.min_answers),
        decision=decision,
        target=asking.rules.target_accuracy,
        fallback_threshold=fallback_threshold,
        min_answers=asking.rules.min_answers,
        spot_check_share=asking.rules.spot_check_share,
    )
