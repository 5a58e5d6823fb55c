"""What /status and /report say about how right the catalog is, and when the bot asks (issue 28)."""

from datetime import date

from bot import texts
from dogbot.core.accuracy import AccuracyEstimate
from dogbot.core.asking import AskDecision
from dogbot.core.standing import AccuracyNow
from dogbot.intake_report import accuracy_weeks

ESTIMATE = AccuracyEstimate(value=0.951, low=0.918, high=0.972, spot_checks=60)


def now(mode="target", *, estimate=ESTIMATE, answers=120, target=0.95, share=0.05) -> AccuracyNow:
    decision = AskDecision(mode, 0.9 if mode != "fallback" else None, answers)
    return AccuracyNow(estimate, decision, target, 0.7, 40, share)


def test_the_estimate_and_the_target_in_words():
    first, rule = texts.accuracy_status(now())
    assert first == "Catalog: about 95 % right (92–97 %), from 60 spot checks; the target is 95 %."
    assert (
        rule
        == "When I ask: as little as keeps the catalog 95 % right, learnt from 120 answers about my guesses."
    )


def test_before_any_spot_check_it_says_there_is_no_estimate_and_why():
    first, rule = texts.accuracy_status(now("fallback", estimate=None, answers=12))
    assert first.startswith("Catalog: no estimate of how right it is yet.") and "spot checks" in first
    assert rule == "When I ask: below 70 % sure, until people have answered 40 of my questions (12 so far)."
    first, _ = texts.accuracy_status(now("fallback", estimate=None, share=0.0))
    assert first == "Catalog: no estimate of how right it is, because spot checks are off."


def test_strict_says_it_asks_more_because_the_catalog_is_below_the_target():
    _, rule = texts.accuracy_status(now("strict"))
    assert "more often than usual" in rule and "below the target" in rule


def test_enough_answers_none_wrong_keeps_the_fallback_and_says_why():
    _, rule = texts.accuracy_status(now("fallback", answers=55))
    assert rule.startswith("When I ask: below 70 % sure, until people's answers show where I go wrong")


def test_no_target_set():
    first, rule = texts.accuracy_status(now("fallback", target=0.0))
    assert first == "Catalog: about 95 % right (92–97 %), from 60 spot checks."
    assert rule == "When I ask: below 70 % sure (no target accuracy is set)."


def test_report_weeks_one_line_each():
    weeks = [(date(2026, 11, 9), None), (date(2026, 11, 16), ESTIMATE)]
    lines = accuracy_weeks(weeks).splitlines()
    assert lines[1:] == [
        "Week of 9/11: no spot check answered.",
        "Week of 16/11: about 95 % right (92–97 %), from 60 spot checks.",
    ]
    assert accuracy_weeks([(date(2026, 11, 9), None)]) == (
        "How right the catalog is: no spot check was answered in the last 1 week."
    )
