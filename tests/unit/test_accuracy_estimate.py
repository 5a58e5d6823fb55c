"""dogbot.core.accuracy: the catalog's accuracy from people's labels and random spot checks."""

import numpy as np
import pytest

from dogbot.core.accuracy import estimate_accuracy
from dogbot.core.intervals import wilson_interval


def test_no_spot_check_no_estimate():
    assert (
        estimate_accuracy(labelled_by_people=40, auto_unchecked=60, spot_checks=0, spot_checks_right=0)
        is None
    )


def test_people_labels_count_as_right_and_spot_checks_weigh_the_rest():
    estimate = estimate_accuracy(
        labelled_by_people=40, auto_unchecked=60, spot_checks=60, spot_checks_right=54
    )
    assert estimate.value == pytest.approx(0.4 + 0.6 * 0.9)
    assert 0.4 + 0.6 * 0.79 < estimate.low < estimate.value < estimate.high < 0.4 + 0.6 * 0.96
    assert estimate.spot_checks == 60


def test_wilson_range_stays_within_0_and_1_when_every_check_was_right():
    share, low, high = wilson_interval(20, 20)
    assert share == 1.0 and high == 1.0 and 0.8 < low < 0.9


def test_range_covers_the_true_accuracy_about_as_often_as_it_says():
    """Random spot checks of a catalog whose auto-accepted answers are 93 % right."""
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(400):
        right = int(rng.binomial(60, 0.93))
        estimate = estimate_accuracy(
            labelled_by_people=100, auto_unchecked=240, spot_checks=60, spot_checks_right=right
        )
        covered += estimate.low <= (100 + 240 * 0.93) / 340 <= estimate.high
    assert 0.92 <= covered / 400 <= 0.99
