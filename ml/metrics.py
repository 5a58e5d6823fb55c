"""Evaluation metrics on plain arrays (numpy only): accuracy, calibration, auto-accept coverage."""

from __future__ import annotations

import numpy as np


def top_k_hits(probabilities: np.ndarray, truth: np.ndarray, k: int) -> np.ndarray:
    """Boolean per row: is ``truth`` among the ``k`` most probable classes? ``truth < 0`` never hits."""
    if len(truth) == 0:
        return np.zeros(0, dtype=bool)
    top = np.argsort(-probabilities, axis=1)[:, :k]
    return (top == truth[:, None]).any(axis=1) & (truth >= 0)


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """Gap between stated confidence and accuracy, averaged over equal-width confidence bins."""
    if len(confidence) == 0:
        return float("nan")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            error += mask.mean() * abs(confidence[mask].mean() - correct[mask].mean())
    return float(error)


def coverage_at_precision(confidence: np.ndarray, correct: np.ndarray, target: float) -> tuple[float, float]:
    """The largest share of items that can be accepted automatically with precision >= ``target``.

    Returns ``(coverage, threshold)``: accept items whose confidence is >= threshold. When no
    threshold reaches the target, coverage is 0 and the threshold is above 1 (accept nothing).
    """
    if len(confidence) == 0:
        return 0.0, float("inf")
    order = np.argsort(-confidence, kind="stable")
    hits = np.cumsum(correct[order])
    precision = hits / np.arange(1, len(order) + 1)
    # Only cut between distinct confidence values: ties are accepted or refused together.
    sorted_conf = confidence[order]
    cut_ok = np.append(sorted_conf[1:] < sorted_conf[:-1], True)
    good = np.flatnonzero((precision >= target) & cut_ok)
    if len(good) == 0:
        return 0.0, float("inf")
    last = good[-1]
    return float((last + 1) / len(order)), float(sorted_conf[last])


def precision_recall(predicted: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    true_positive = float(np.sum(predicted & actual))
    precision = true_positive / max(float(np.sum(predicted)), 1.0)
    recall = true_positive / max(float(np.sum(actual)), 1.0)
    return precision, recall
