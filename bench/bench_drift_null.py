"""The embedding drift test on steady streams of dev photos, checked daily (issue 28, item 4).

    .venv/bin/python bench/bench_drift_null.py [--streams 30]

Each stream is the known-breed dogs and non-dogs of ``manifest.csv`` in a random order, 15 a day for
26 days, checked once a day as the drift job does while the zero-shot model serves: the reference is
the first 200 photos less those in the current window, the current window the last 200 photos (so
a day's window shares 185 photos with the day before's), no verdict under 50 photos a side. The
embedding test (``ml.drift.domain_classifier_auc``) is run as it is now (permutation p-value) and as
it was before issue 28 (logistic regression, Mann-Whitney p-value of the out-of-fold scores, kept
below for the comparison). Nothing changes in these streams, so every alarm is a false one.
Then the power to see new breeds: 10 windows of 200 of which 30 % or 50 % are dogs of
``other_breeds.csv``, against 200 known-breed photos.
Embeddings come from the cache ``bench/dev_embeddings.py`` builds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dev_embeddings import load_dev_embeddings  # noqa: E402

from dogbot.settings import Settings  # noqa: E402
from ml.drift import _l2, domain_classifier_auc  # noqa: E402

AUC, P = 0.6, 0.01 / 5  # the default alarm: AUC above 0.6 and p below 1 % over 5 alarming tests


def mann_whitney_auc(reference, current, *, seed: int, folds: int = 5, c: float = 0.01):
    """The test before issue 28: logistic regression, Mann-Whitney p of the pooled out-of-fold scores."""
    from scipy import stats
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([_l2(reference), _l2(current)])
    y = np.concatenate([np.zeros(len(reference), int), np.ones(len(current), int)])
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(model, x, y, cv=splitter, method="decision_function")
    p_value = stats.mannwhitneyu(scores[y == 1], scores[y == 0], alternative="greater").pvalue
    return float(roc_auc_score(y, scores)), float(p_value)


METHODS = {"before (Mann-Whitney)": mann_whitney_auc, "now (permutation)": domain_classifier_auc}


def steady_streams(data: dict, streams: int) -> dict:
    pool = np.flatnonzero(data["csv"] == "manifest.csv")
    checks = {name: [] for name in METHODS}  # per stream: (auc, p) per daily check
    for s in range(streams):
        emb = data["emb"][np.random.default_rng(100 + s).permutation(pool)[: 26 * 15]]
        for name in METHODS:
            checks[name].append([])
        for day in range(1, 27):
            end = day * 15
            current = np.arange(max(0, end - 200), end)
            reference = np.setdiff1d(np.arange(min(200, end)), current)
            if len(reference) < 50:
                continue
            for name, method in METHODS.items():
                checks[name][-1].append(method(emb[reference], emb[current], seed=day))
    return checks


def new_breed_power(data: dict, trials: int = 10) -> dict:
    known = np.flatnonzero(data["csv"] == "manifest.csv")
    other = np.flatnonzero((data["csv"] == "other_breeds.csv") & (data["breed"] != "not_a_dog"))
    rng = np.random.default_rng(0)
    out = {}
    for share in (0.3, 0.5):
        rows = {name: [] for name in METHODS}
        for trial in range(trials):
            k, o, m = rng.permutation(known), rng.permutation(other), int(200 * share)
            reference = data["emb"][k[:200]]
            current = data["emb"][np.concatenate([k[200 : 400 - m], o[:m]])]
            for name, method in METHODS.items():
                rows[name].append(method(reference, current, seed=trial))
        out[share] = rows
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=30)
    args = parser.parse_args()
    data = load_dev_embeddings(Settings(_env_file=None).model)
    checks = steady_streams(data, args.streams)
    print(f"\n{args.streams} steady streams, daily checks from day 17 to 26")
    print(
        "| embedding test | checks | alarms (streams) | p < 0.01 | p < 0.002 | "
        "p < 0.01 two days in a row (streams) | P(p < 0.01 next day, given today) | highest AUC |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, streams in checks.items():
        flat = np.array([c for stream in streams for c in stream])
        alarm = [[auc > AUC and p < P for auc, p in stream] for stream in streams]
        low = [[p < 0.01 for _, p in stream] for stream in streams]
        twice = sum(any(a and b for a, b in zip(s, s[1:], strict=False)) for s in low)
        following = [b for s in low for a, b in zip(s, s[1:], strict=False) if a]
        print(
            f"| {name} | {len(flat)} | {sum(map(sum, alarm))} ({sum(map(any, alarm))}) "
            f"| {np.mean(flat[:, 1] < 0.01):.1%} | {np.mean(flat[:, 1] < 0.002):.1%} | {twice} "
            f"| {np.mean(following) if following else float('nan'):.2f} ({len(following)}) "
            f"| {flat[:, 0].max():.2f} |"
        )
    power = new_breed_power(data)
    print("\n| new breeds in the current window | test | median AUC | alarms |\n|---|---|---|---|")
    for share, rows in power.items():
        for name, values in rows.items():
            a = np.array(values)
            alarms = int(np.sum((a[:, 0] > AUC) & (a[:, 1] < P)))
            print(f"| {share:.0%} | {name} | {np.median(a[:, 0]):.2f} | {alarms}/{len(a)} |")


if __name__ == "__main__":
    main()
