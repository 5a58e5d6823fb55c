"""Admins are told once when the rule of when to ask turns strict (the spot checks say the catalog is
below its target), not again until it was back to the target: state in the database (SQLite and
PostgreSQL), so a restart or a second replica does not tell them twice."""

from __future__ import annotations

from datetime import UTC, datetime

from bot import texts
from dogbot.core.asking import AskDecision, AskRules
from dogbot.core.standing import newly_strict
from storage.db import make_engine


class FakePolicy:
    """The rule's decision as a test sets it (dogbot.core.asking.AskPolicy's two members used)."""

    def __init__(self) -> None:
        self.rules = AskRules(target_accuracy=0.95, spot_check_share=0.05)
        self.mode = "fallback"

    def decision(self) -> AskDecision:
        return AskDecision(self.mode, None if self.mode == "fallback" else 0.9, 80)


def test_told_once_per_fall_across_restarts_and_replicas(database_url) -> None:
    engines = [make_engine(database_url), make_engine(database_url)]  # two replicas (or a restart)
    policy = FakePolicy()

    def told(mode: str, replica: int = 0) -> bool:
        policy.mode = mode
        notice = newly_strict(engines[replica], policy, fallback_threshold=0.7, now=datetime.now(UTC))
        return notice is not None

    try:
        assert [told("fallback"), told("target"), told("strict")] == [False, False, True]
        assert [told("strict"), told("strict", replica=1), told("fallback"), told("strict", 1)] == [False] * 4
        assert [told("target", 1), told("strict"), told("strict", 1)] == [False, True, False]
    finally:
        for engine in engines:
            engine.dispose()


def test_the_notice_in_words() -> None:
    from dogbot.core.accuracy import AccuracyEstimate
    from dogbot.core.standing import AccuracyNow

    estimate = AccuracyEstimate(value=0.91, low=0.86, high=0.94, spot_checks=45)
    words = texts.catalog_below_target(
        AccuracyNow(estimate, AskDecision("strict", 0.95, 80), 0.95, 0.7, 40, 0.05)
    )
    assert words.startswith(
        "⚠️ The spot checks say the catalog is below its target of 95 % right: about 91 % right"
    )
    assert "from 45 spot checks" in words and "I now ask staff about more photos" in words
