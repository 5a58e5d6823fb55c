"""Promotion gates: a small golden set does not reject a candidate for one photo's noise."""

from dataclasses import replace

from conftest import default_settings

from dogbot.app import promotion_gates
from jobs.retrain import judge
from jobs.scores import ModelScores, SplitScores

GATES = promotion_gates(default_settings())


def scores(
    val_top1: float, golden_top1: float, val_n: int = 40, golden_n: int = 20, top3: float | None = None
) -> ModelScores:
    return ModelScores(SplitScores(val_n, val_top1, top3=top3), SplitScores(golden_n, golden_top1))


def test_better_on_new_data_and_one_golden_photo_down_is_promoted():
    promoted, reason = judge(scores(0.60, 0.45), scores(0.50, 0.50), GATES)
    assert promoted, reason


def test_two_golden_photos_down_is_rejected():
    promoted, reason = judge(scores(0.60, 0.40), scores(0.50, 0.50), GATES)
    assert not promoted and "golden" in reason


def test_a_large_golden_set_uses_the_configured_tolerance():
    gates = replace(GATES, golden_tolerance=0.01)
    assert not judge(scores(0.6, 0.48, golden_n=1000), scores(0.5, 0.50, golden_n=1000), gates)[0]
    assert judge(scores(0.6, 0.495, golden_n=1000), scores(0.5, 0.50, golden_n=1000), gates)[0]


def test_not_better_on_new_data_is_rejected():
    promoted, reason = judge(scores(0.50, 0.50), scores(0.50, 0.50), GATES)
    assert not promoted and "not better" in reason


def test_a_tie_on_top1_is_broken_by_top3():
    def with_top3(val_top1: float, top3: float | None) -> ModelScores:
        return scores(val_top1, 0.5, top3=top3)

    promoted, reason = judge(with_top3(0.5, 0.77), with_top3(0.5, 0.67), GATES)
    assert promoted and "top-3" in reason
    assert not judge(with_top3(0.5, 0.67), with_top3(0.5, 0.67), GATES)[0]
    assert not judge(with_top3(0.475, 0.9), with_top3(0.5, 0.67), GATES)[0]  # top-1 lower
    assert not judge(with_top3(0.5, None), with_top3(0.5, 0.67), GATES)[0]
    # An admin who asked for a real improvement (min_improvement > 0) gets no tie-break.
    assert not judge(with_top3(0.5, 0.9), with_top3(0.5, 0.67), replace(GATES, min_improvement=0.01))[0]
