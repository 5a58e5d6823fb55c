"""How the catalog stands, for people (/status): its estimated accuracy and the rule keeping it."""

from __future__ import annotations

from dataclasses import dataclass

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
        estimate=estimate_from_catalog(engine),
        decision=asking.decision(),
        target=asking.rules.target_accuracy,
        fallback_threshold=fallback_threshold,
        min_answers=asking.rules.min_answers,
        spot_check_share=asking.rules.spot_check_share,
    )
