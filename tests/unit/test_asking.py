"""When to ask (dogbot/core/asking.py): reliability per breed and pair, and the selective rule."""

import numpy as np
import pytest

from dogbot.core.asking import Answer, Reliability, acceptance_cut


def _answers(rng, breed, n, *, right_share, confidence=0.85, second="other"):
    return [Answer(breed, confidence, second, bool(rng.random() < right_share)) for _ in range(n)]


def test_a_breed_often_wrong_at_high_confidence_is_less_reliable_than_one_always_right():
    rng = np.random.default_rng(0)
    answers = (
        _answers(rng, "dalmatian", 40, right_share=1.0)
        + _answers(rng, "staffordshire", 40, right_share=0.5, second="american_staffordshire")
        + _answers(rng, "beagle", 60, right_share=0.9)
        + [Answer("beagle", 0.3, "harrier", False) for _ in range(20)]
    )
    fitted = Reliability.fit(answers)
    dalmatian = fitted.probability("dalmatian", 0.85, "other")
    staffordshire = fitted.probability("staffordshire", 0.85, "american_staffordshire")
    assert dalmatian > 0.93 and staffordshire < 0.7, (dalmatian, staffordshire)
    # More confident, more often right: the global curve still rises.
    assert fitted.probability("beagle", 0.95, "other") > fitted.probability("beagle", 0.3, "other")


def test_a_breed_with_two_answers_stays_near_the_global_curve():
    """Shrinkage: two wrong answers do not make a breed hopeless; forty do."""
    rng = np.random.default_rng(1)
    common = [a for i in range(20) for a in _answers(rng, f"breed{i}", 20, right_share=0.9)]
    few = Reliability.fit(common + [Answer("akita", 0.85, "other", False)] * 2)
    many = Reliability.fit(common + [Answer("akita", 0.85, "other", False)] * 40)
    overall = few.probability("never_seen", 0.85, None)
    assert overall - few.probability("akita", 0.85, "other") < 0.3
    assert many.probability("akita", 0.85, "other") < 0.2


def test_the_pair_a_model_hesitates_between_carries_its_own_reliability():
    """Husky named over Malamute is often wrong; Husky named over anything else is right."""
    rng = np.random.default_rng(2)
    answers = _answers(rng, "husky", 40, right_share=1.0, second="whippet") + _answers(
        rng, "husky", 40, right_share=0.4, second="malamute"
    )
    fitted = Reliability.fit(answers + _answers(rng, "beagle", 40, right_share=0.9))
    assert fitted.probability("husky", 0.85, "malamute") < fitted.probability("husky", 0.85, "whippet") - 0.2
    # Same pair whichever breed came first.
    assert fitted.pair_offset == {**fitted.pair_offset}
    assert "husky|malamute" in fitted.pair_offset


@pytest.mark.parametrize(
    ("probabilities", "target", "cut"),
    [
        ([0.99] * 50 + [0.92] * 50, 0.95, 0.92),  # all of them average 0.955: accept every one
        ([0.99] * 50 + [0.92] * 50, 0.97, 0.97),  # some 0.92s would fit, not all: none is taken
        ([0.99] * 10 + [0.4] * 90, 0.9, 0.9),  # the 0.4s cannot all be taken: only the sure ones
        ([0.99] * 100 + [0.45], 0.9, 0.5),  # the 0.45 would fit, but one more likely wrong is asked
        ([0.6] * 10, 0.95, 0.95),  # none meets it: ask about everything below the target
        ([], 0.95, 0.95),
    ],
)
def test_the_cut_accepts_as_many_as_keep_the_mean_at_the_target(probabilities, target, cut):
    assert acceptance_cut(probabilities, target) == pytest.approx(cut)


def test_the_cut_meets_the_target_on_what_it_accepts():
    rng = np.random.default_rng(3)
    probabilities = rng.beta(8, 1, 500)
    for target in (0.9, 0.95):
        cut = acceptance_cut(probabilities, target)
        accepted = probabilities[probabilities >= cut]
        assert accepted.mean() >= target - 1e-9 and len(accepted) > 0
        # ...and asks as little as that allows: one more answer below the cut breaks the target,
        # unless the floor (never accept an answer more likely wrong than right) stopped it first.
        below = np.sort(probabilities[probabilities < cut])[::-1]
        if len(below) and below[0] >= 0.5:
            assert np.append(accepted, below[0]).mean() < target
