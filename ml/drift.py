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
    reference: np.ndarray,
    current: np.ndarray,
    *,
    folds: int = 5,
    c: float = 0.01,
    seed: int = 0,
    permutations: int = 1999,
) -> tuple[float, float]:
    """Cross-validated ROC AUC of a classifier telling current rows from reference rows, and its p-value.

    AUC 0.5 means the windows cannot be told apart. Embeddings are L2-normalised and standardised;
    the strong L2 penalty (``c``, as logistic regression's C) keeps 200 rows of 1,280 dimensions from
    being memorised (PCA to 32 components lost most of the darkening signal: AUC 0.64 instead of
    0.85). The classifier is ridge regression on the window labels with the penalty logistic
    regression has near zero weights (``4 / c``), which under so strong a penalty ranks photos as
    logistic regression does.

    The p-value is a permutation test: the same cross-validation with the window labels shuffled
    (``permutations`` times; the folds are drawn without looking at the labels). A Mann-Whitney
    p-value of the out-of-fold scores, used before, treats them as independent, but the photos of a
    fold share one fitted classifier: on unchanged photos the AUC's spread was 1.3-1.5 times what
    Mann-Whitney assumes, and p 0.0065 by Mann-Whitney was 0.05 by permutation (bench/README.md,
    "No alarm without a cause"). A ridge classifier's out-of-fold scores are a fixed linear map of
    the labels, so a thousand permutations cost one matrix product.
    """
    from scipy import stats

    n_ref, n_cur = len(reference), len(current)
    n_folds = min(folds, int(min(n_ref, n_cur)))
    if n_folds < 2:
        raise ValueError("need at least 2 rows in each window")
    x = np.concatenate([_l2(reference), _l2(current)])
    # Standardised on both windows together: it does not look at which window a row is from, so
    # every permutation sees the same features.
    x = (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-12)
    y = np.concatenate([np.zeros(n_ref), np.ones(n_cur)])
    hat = _cross_validated_ridge(x, penalty=4.0 / c, folds=n_folds, seed=seed)
    rng = np.random.default_rng(seed)
    shuffled = rng.permuted(np.tile(y, (permutations, 1)), axis=1)
    labels = np.concatenate([y[None, :], shuffled])
    scores = hat @ labels.T  # one column of out-of-fold scores per labelling, the observed first
    ranks = stats.rankdata(scores, axis=0)
    aucs = ((ranks * labels.T).sum(axis=0) - n_cur * (n_cur + 1) / 2) / (n_cur * n_ref)
    auc = float(aucs[0])
    p_value = float((1 + np.sum(aucs[1:] >= auc)) / (1 + permutations))
    return auc, p_value


def _cross_validated_ridge(x: np.ndarray, *, penalty: float, folds: int, seed: int) -> np.ndarray:
    """The matrix H with H @ y = each row's score by a ridge fit on the other folds (intercept fitted).

    Fitted in the dual (an n-by-n kernel): a few hundred rows of 1,280 dimensions.
    """
    n = len(x)
    kernel = x @ x.T
    fold = np.random.default_rng(seed).permutation(n) % folds
    hat = np.zeros((n, n))
    for k in range(folds):
        test, train = np.flatnonzero(fold == k), np.flatnonzero(fold != k)
        m = len(train)
        centre = np.eye(m) - 1.0 / m  # the intercept: labels centred on the training rows' mean
        # Features centred on the training rows as well (the kernel of centred rows).
        ones = np.full((m, m), 1.0 / m)
        k_train = kernel[np.ix_(train, train)]
        k_train = k_train - ones @ k_train - k_train @ ones + ones @ k_train @ ones
        k_test = kernel[np.ix_(test, train)]
        k_test = k_test - k_test.mean(axis=1, keepdims=True) - kernel[np.ix_(train, train)].mean(axis=0)
        k_test = k_test + kernel[np.ix_(train, train)].mean()
        weights = np.linalg.solve(k_train + penalty * np.eye(m), centre)
        hat[np.ix_(test, train)] = k_test @ weights + 1.0 / m
    return hat


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
