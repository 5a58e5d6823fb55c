"""Confidence intervals for shares counted from people's checks (the catalog's accuracy, the rule for
asking): sound at 10 or 60 checks and near 100 %, where the normal approximation leaves [0, 1]."""

from __future__ import annotations

import math


def wilson_interval(right: int, n: int, *, level: float = 0.95) -> tuple[float, float, float]:
    """The share ``right / n`` and its Wilson score interval."""
    if n <= 0:
        raise ValueError("no checks to estimate from")
    from scipy import stats

    z = float(stats.norm.ppf(0.5 + level / 2))
    share = right / n
    middle = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return share, max(0.0, middle - half), min(1.0, middle + half)
