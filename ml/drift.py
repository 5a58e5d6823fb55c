"""Drift statistics on plain arrays: is the recent window of photos unlike the reference window?

Each test returns a :class:`DriftTest` with its statistic, a p-value where one exists, the threshold
it was held to and whether it alarms. Only numpy, scipy and scikit-learn (Evidently, NannyML and
whylogs send telemetry by default and alibi-detect is not open source; the few statistics needed are
short). No database, no torch: the drift job gathers the arrays and stores the report.

Several tests run on every window, and every day: the drift job holds each to the family-wise
level divided by the number of tests (``jobs.drift.DriftThresholds``), so a check of unchanged
photos alarms at most that often whichever test would fire (measured in ``bench/bench_jobs.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

# scipy and scikit-learn are imported by the tests that use them: `dogbot models` and the bot import
# this module through the jobs' types, and importing those two costs a second or more.


@dataclass(frozen=True)
class DriftTest:
    """One comparison of reference and current window."""

    name: str  # embedding_auc, breed_distribution, confidence, brightness, size, correction_rate
    statistic: float | None  # None: not enough data to test
    p_value: float | None
    threshold: float
    alarm: bool
    detail: str  # one line for the log and `dogbot drift` (statistics included)
    # The same change in numbers an admin reads (bot/texts.py words them): shares of photos, rates.
    facts: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def domain_classifier_auc(
    reference: np.ndarray, current: np.ndarray, *, folds: int = 5, c: float = 0.01, seed: int = 0
) -> tuple[float, float]:
    """Cross-validated ROC AUC of a classifier telling current rows from reference rows, and its p-value.

    AUC 0.5 means the windows cannot be told apart. Embeddings are L2-normalised and standardised;
    the strong L2 penalty (``c``) keeps 200 rows of 1,280 dimensions from being memorised (PCA to 32
    components lost most of the darkening signal: AUC 0.64 instead of 0.85). The p-value is the
    Mann-Whitney test of the out-of-fold scores (AUC is that test's U statistic).
    """
    x = np.concatenate([_l2(reference), _l2(current)])
    y = np.concatenate([np.zeros(len(reference), int), np.ones(len(current), int)])
    n_folds = min(folds, int(min(len(reference), len(current))))
    if n_folds < 2:
        raise ValueError("need at least 2 rows in each window")
    from scipy import stats
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(model, x, y, cv=splitter, method="decision_function")
    auc = float(roc_auc_score(y, scores))
    p_value = float(stats.mannwhitneyu(scores[y == 1], scores[y == 0], alternative="greater").pvalue)
    return auc, p_value


def embedding_test(
    name: str,
    reference: np.ndarray,
    current: np.ndarray,
    *,
    auc_threshold: float,
    p_threshold: float,
    seed: int = 0,
) -> DriftTest:
    """Alarm when the domain classifier's AUC is above ``auc_threshold`` and significant."""
    auc, p_value = domain_classifier_auc(reference, current, seed=seed)
    alarm = auc > auc_threshold and p_value < p_threshold
    return DriftTest(
        name,
        auc,
        p_value,
        auc_threshold,
        alarm,
        f"a classifier tells new photos from the reference with AUC {auc:.2f} "
        f"(alarm above {auc_threshold:.2f})",
        {"tells_apart": auc},
    )


def ks_test(
    name: str, reference: np.ndarray, current: np.ndarray, *, p_threshold: float, what: str
) -> DriftTest:
    """Two-sample Kolmogorov-Smirnov test on one number per photo (confidence, brightness, size)."""
    reference, current = np.asarray(reference, float), np.asarray(current, float)
    from scipy import stats

    result = stats.ks_2samp(reference, current)
    statistic, p_value = float(result.statistic), float(result.pvalue)
    middle = float(np.median(reference))
    shift = float(np.median(current) - middle)
    # How many recent photos lie beyond the reference's middle value, on the side things moved to:
    # about half of them when nothing changed, so "41 of the last 50" says how far it moved.
    beyond = int(np.sum(current < middle)) if shift < 0 else int(np.sum(current > middle))
    return DriftTest(
        name,
        statistic,
        p_value,
        p_threshold,
        p_value < p_threshold,
        f"{what}: median {middle:.3g} -> {np.median(current):.3g} ({shift:+.3g}), KS p={p_value:.2g}",
        {"lower": shift < 0, "beyond": beyond, "n": len(current)},
    )


def population_stability_index(reference: np.ndarray, current: np.ndarray, eps: float = 1e-4) -> float:
    """PSI between two frequency vectors over the same categories (0: same; >= 0.25: a big shift)."""
    p = np.asarray(reference, float) / max(float(np.sum(reference)), 1.0) + eps
    q = np.asarray(current, float) / max(float(np.sum(current)), 1.0) + eps
    return float(np.sum((q - p) * np.log(q / p)))


def category_test(
    name: str,
    reference: Sequence[int],
    current: Sequence[int],
    *,
    p_threshold: float,
    min_expected: float = 5.0,
) -> DriftTest:
    """Chi-squared test of predicted-class frequencies (integer class indices, -1 for "not a dog").

    Classes too rare for the chi-squared approximation (expected count below ``min_expected``) are
    pooled into one "other" bucket; PSI over the same buckets is reported alongside.
    """
    reference, current = np.asarray(reference, int), np.asarray(current, int)
    classes = np.union1d(reference, current)
    ref_counts = np.array([(reference == c).sum() for c in classes], float)
    cur_counts = np.array([(current == c).sum() for c in classes], float)
    total = ref_counts + cur_counts
    expected_min = total * min(len(reference), len(current)) / max(len(reference) + len(current), 1)
    common = expected_min >= min_expected
    table = np.stack([ref_counts[common], cur_counts[common]], axis=1)
    other = np.array([[ref_counts[~common].sum(), cur_counts[~common].sum()]])
    if other.sum() > 0:
        table = np.concatenate([table, other])
    psi = population_stability_index(table[:, 0], table[:, 1])
    if len(table) < 2:
        return DriftTest(name, None, None, p_threshold, False, "too few photos per breed to test")
    from scipy import stats

    chi2, p_value, _, _ = stats.chi2_contingency(table.T)
    return DriftTest(
        name,
        float(chi2),
        float(p_value),
        p_threshold,
        float(p_value) < p_threshold,
        f"predicted breeds over {len(table)} groups: PSI {psi:.2f}, chi-squared p={p_value:.2g}",
    )


def rate_test(
    name: str,
    ref_hits: int,
    ref_n: int,
    cur_hits: int,
    cur_n: int,
    *,
    p_threshold: float,
    min_n: int,
    what: str,
) -> DriftTest:
    """One-sided Fisher exact test: has the rate (e.g. of staff corrections) gone up?"""
    if ref_n < min_n or cur_n < min_n:
        return DriftTest(
            name,
            None,
            None,
            p_threshold,
            False,
            f"{what}: too few labeled photos ({ref_n} vs {cur_n}, need {min_n})",
        )
    table = [[cur_hits, cur_n - cur_hits], [ref_hits, ref_n - ref_hits]]
    from scipy import stats

    p_value = float(stats.fisher_exact(table, alternative="greater").pvalue)
    ref_rate, cur_rate = ref_hits / ref_n, cur_hits / cur_n
    return DriftTest(
        name,
        cur_rate - ref_rate,
        p_value,
        p_threshold,
        p_value < p_threshold,
        f"{what}: {ref_rate:.0%} -> {cur_rate:.0%}, Fisher p={p_value:.2g}",
        {"before": ref_rate, "now": cur_rate, "hits": cur_hits, "n": cur_n},
    )


def _l2(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
