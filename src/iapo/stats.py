"""Honest statistics: confidence intervals and paired tests, small and dependency-light.

- `wilson`: 95% CI of an accuracy measured on n questions (one model, one run);
- `mean_ci`: mean and 95% t-interval over seeds (several runs);
- `paired_test`: paired t-test and exact sign-flip permutation test on per-seed differences.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class CI:
    mean: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{100 * self.mean:.1f} [{100 * self.low:.1f}, {100 * self.high:.1f}]"

    def to_json(self) -> dict:
        return {"mean": self.mean, "ci_low": self.low, "ci_high": self.high, "n": self.n}


def wilson(successes: float, n: int, z: float = 1.96) -> CI:
    """Wilson score interval of a proportion.

    >>> str(wilson(8, 10))
    '80.0 [49.0, 94.3]'
    """
    if n == 0:
        return CI(float("nan"), float("nan"), float("nan"), 0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return CI(p, max(0.0, centre - half), min(1.0, centre + half), n)


def mean_ci(values: list[float], level: float = 0.95, bounds: tuple[float, float] | None = None) -> CI:
    """Mean and t-interval over runs (seeds); a single run has an undefined (nan) interval.
    `bounds`: the metric's range (e.g. (0, 1) for an accuracy); the interval is clipped to it,
    so a 3-seed interval never reads 108%.

    >>> c = mean_ci([0.5, 0.6, 0.7]); round(c.mean, 3), round(c.low, 3), round(c.high, 3)
    (0.6, 0.352, 0.848)
    >>> c = mean_ci([0.1, 0.9, 0.95], bounds=(0, 1)); round(c.low, 3), round(c.high, 3)
    (0.0, 1.0)
    """
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return CI(float("nan"), float("nan"), float("nan"), 0)
    m = float(x.mean())
    if n < 2:
        return CI(m, float("nan"), float("nan"), n)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    lo, hi = (m - half, m + half) if bounds is None else (max(bounds[0], m - half), min(bounds[1], m + half))
    return CI(m, lo, hi, n)


@dataclass(frozen=True)
class PairedTest:
    diff: CI  # mean paired difference (a - b) with its t-interval
    p_t: float  # two-sided paired t-test
    p_perm: float  # two-sided exact sign-flip permutation test (all 2^n sign patterns)
    n: int


def paired_test(a: list[float], b: list[float]) -> PairedTest:
    """Paired comparison of two methods on the same seeds (and the same questions).

    >>> t = paired_test([0.7, 0.8, 0.75], [0.6, 0.65, 0.7]); round(t.diff.mean, 3), round(t.p_perm, 3)
    (0.1, 0.25)
    """
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(d)
    ci = mean_ci(list(d))
    if n < 2 or np.allclose(d, d[0]):
        p_t = float("nan") if n < 2 else (1.0 if d[0] == 0 else 0.0)
    else:
        p_t = float(stats.ttest_1samp(d, 0.0).pvalue)
    obs = abs(d.mean()) if n else 0.0
    if n == 0:
        p_perm = float("nan")
    elif n <= 16:
        signs = np.array(list(itertools.product([1, -1], repeat=n)))
        p_perm = float(np.mean(np.abs((signs * d).mean(axis=1)) >= obs - 1e-12))
    else:
        rng = np.random.default_rng(0)
        signs = rng.choice([1, -1], size=(20000, n))
        p_perm = float(np.mean(np.abs((signs * d).mean(axis=1)) >= obs - 1e-12))
    return PairedTest(ci, p_t, p_perm, n)
