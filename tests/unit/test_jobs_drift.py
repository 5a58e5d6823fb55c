"""ml.drift and jobs.drift.compare on synthetic windows: alarms on shifts, none on the same distribution."""

import numpy as np
import torch

from jobs.drift import DriftThresholds, compare, window_from_arrays
from ml import drift
from ml.head import BreedHead

DIM = 64


def _window(rng, n, shift=0.0, brightness=0.5):
    x = np.abs(rng.normal(1.0, 1.0, (n, DIM)))
    x[:, :16] += shift  # some features change, as darkening changes some of a CNN's channels
    x = x.astype(np.float32)
    return window_from_arrays(x, np.full(n, 0.95), rng.normal(brightness, 0.1, n), rng.normal(1e6, 1e5, n))


def _head():
    rng = np.random.default_rng(5)
    return BreedHead(
        [f"b{i}" for i in range(5)],
        torch.tensor(rng.normal(0, 0.3, (5, DIM)), dtype=torch.float32),
        torch.zeros(5),
        "lite0",
    )


def test_domain_classifier_separates_shifted_embeddings_only():
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, (150, DIM))
    same_auc, same_p = drift.domain_classifier_auc(reference, rng.normal(0, 1, (150, DIM)))
    shifted_auc, shifted_p = drift.domain_classifier_auc(reference, rng.normal(0.5, 1, (150, DIM)))
    assert same_auc < 0.6 and same_p > 0.01
    assert shifted_auc > 0.8 and shifted_p < 1e-6


def test_ks_and_rate_tests():
    rng = np.random.default_rng(1)
    dark = drift.ks_test(
        "brightness",
        rng.normal(0.5, 0.1, 200),
        rng.normal(0.2, 0.1, 200),
        p_threshold=0.01,
        what="brightness",
    )
    assert dark.alarm and dark.p_value < 1e-10
    few = drift.rate_test("correction_rate", 1, 5, 4, 5, p_threshold=0.01, min_n=20, what="corrections")
    assert few.statistic is None and not few.alarm
    more = drift.rate_test(
        "correction_rate", 10, 100, 40, 100, p_threshold=0.01, min_n=20, what="corrections"
    )
    assert more.alarm


def test_category_test_pools_rare_classes_and_psi_is_zero_for_equal_shares():
    same = drift.category_test(
        [0] * 50 + [1] * 50 + list(range(2, 40)), [0] * 50 + [1] * 50 + list(range(40, 78)), p_threshold=0.01
    )
    assert not same.alarm
    moved = drift.category_test([0] * 90 + [1] * 10, [0] * 10 + [1] * 90, p_threshold=0.01)
    assert moved.alarm
    assert drift.population_stability_index(np.array([5, 5]), np.array([50, 50])) < 1e-9


def test_compare_alarms_on_a_dark_shifted_window_and_not_on_a_fresh_sample():
    rng = np.random.default_rng(2)
    head, thresholds = _head(), DriftThresholds()
    reference = _window(rng, 200)
    tests, pictures = compare(reference, _window(rng, 200), head=head, thresholds=thresholds)
    assert not any(t.alarm for t in tests), [t.detail for t in tests if t.alarm]
    tests, _ = compare(
        reference, _window(rng, 200, shift=1.5, brightness=0.2), head=head, thresholds=thresholds
    )
    alarmed = {t.name for t in tests if t.alarm}
    assert {"embedding_auc", "brightness"} <= alarmed
    assert set(pictures) == {"brightness", "confidence", "breeds"}
