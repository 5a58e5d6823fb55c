import numpy as np
import pytest

from ml.metrics import coverage_at_precision, expected_calibration_error, precision_recall, top_k_hits


def test_top_k_hits_counts_unknown_truth_as_a_miss():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1]])
    truth = np.array([0, 1, -1])
    assert top_k_hits(probabilities, truth, 1).tolist() == [True, False, False]
    assert top_k_hits(probabilities, truth, 2).tolist() == [True, True, False]


def test_coverage_at_precision_takes_the_largest_confident_set():
    confidence = np.array([0.99, 0.95, 0.9, 0.8, 0.6])
    correct = np.array([True, True, True, False, True])
    coverage, threshold = coverage_at_precision(confidence, correct, 0.95)
    assert coverage == pytest.approx(0.6)
    assert threshold == pytest.approx(0.9)
    assert coverage_at_precision(confidence, correct, 0.8) == (pytest.approx(1.0), pytest.approx(0.6))


def test_coverage_never_splits_tied_confidences():
    confidence = np.array([0.9, 0.9])
    correct = np.array([True, False])
    assert coverage_at_precision(confidence, correct, 0.99) == (0.0, float("inf"))


def test_calibration_error_is_zero_when_confidence_matches_accuracy():
    confidence = np.full(10, 0.7)
    correct = np.array([1] * 7 + [0] * 3, dtype=float)
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.0)
    assert expected_calibration_error(np.full(4, 1.0), np.zeros(4)) == pytest.approx(1.0)


def test_precision_recall():
    predicted = np.array([True, True, False, False])
    actual = np.array([True, False, True, False])
    assert precision_recall(predicted, actual) == (0.5, 0.5)
