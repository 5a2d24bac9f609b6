"""Honest statistics: confidence intervals and paired tests, small and dependency-light.

- `wilson`: 95% CI of an accuracy measured on n questions (one model, one run);
- `mean_ci`: mean and 95% t-interval over seeds (several runs), optionally clipped;
- `bootstrap_ci`: mean of runs x questions with a percentile interval from resampling clusters
  (zoos), runs within them and questions (the report's accuracies): it stays inside the metric's
  range without clipping, and counts both sources of noise, the RL seed and the test questions;
- `percentile_ci`: a percentile bootstrap over runs of any per-run number (steps to reach a level);
- `paired_test`: paired t-test and exact sign-flip permutation test on per-seed differences;
- `bootstrap_p`: a two-sided test of a paired difference by the same resampling as
  `bootstrap_ci` (zoos, runs, questions): zoo-aware where runs come from several zoos.
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
    lo, hi = float(lo), float(hi)
    return CI(m, lo, hi, n)


def _counts(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """(size, n) resampling counts: how often each of n items is drawn in each replicate."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=size)


def bootstrap_ci(
    strata: list[np.ndarray],
    clusters: list | None = None,
    n_boot: int = 4000,
    level: float = 0.95,
    seed: int = 0,
) -> CI:
    """Mean over runs of each run's mean over strata (test splits, weighted equally) of its mean
    over questions, with a percentile interval. strata[s] is (runs, questions of split s); runs
    are resampled within resampled `clusters` (e.g. the zoo of each run; None: runs are
    independent), questions within each split. A percentile interval of means of values in
    [a, b] lies in [a, b].

    >>> m = np.array([[1, 0, 1, 1], [0, 0, 1, 1], [1, 1, 1, 0]], dtype=float)
    >>> c = bootstrap_ci([m]); round(c.mean, 3), 0 <= c.low <= c.mean <= c.high <= 1
    (0.667, True)
    """
    R = strata[0].shape[0]
    if R == 0:
        return CI(float("nan"), float("nan"), float("nan"), 0)
    est = _replicates(strata, clusters, n_boot, seed)
    groups = _groups(R, clusters)
    run_means = np.mean([m.mean(1) for m in strata], axis=0)  # (R,)
    mean = float(np.mean([run_means[g].mean() for g in groups]))
    lo, hi = np.quantile(est, [(1 - level) / 2, (1 + level) / 2])
    return CI(mean, float(lo), float(hi), R)


def _groups(n_runs: int, clusters: list | None) -> list[np.ndarray]:
    """Run indices per cluster (one group of all runs without clusters)."""
    if clusters is None:
        return [np.arange(n_runs)]
    return [np.flatnonzero(np.asarray(clusters) == c) for c in dict.fromkeys(clusters)]


def _replicates(strata: list[np.ndarray], clusters: list | None, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot,) bootstrap means, resampled as `bootstrap_ci` describes."""
    R = strata[0].shape[0]
    rng = np.random.default_rng(seed)
    per_run = np.zeros((n_boot, R))
    for m in strata:
        per_run += _counts(rng, m.shape[1], n_boot) @ np.nan_to_num(m).T / m.shape[1] / len(strata)
    groups = _groups(R, clusters)
    k = _counts(rng, len(groups), n_boot)
    est = np.zeros(n_boot)
    for j, g in enumerate(groups):
        est += k[:, j] * (_counts(rng, len(g), n_boot) * per_run[:, g]).sum(1) / len(g)
    return est / len(groups)


def bootstrap_p(
    diff_strata: list[np.ndarray], clusters: list | None = None, n_boot: int = 4000, seed: int = 0
) -> float:
    """Two-sided p that the mean paired difference is 0: diff_strata[s] (runs, questions) holds
    a run's correctness minus its paired baseline run's (same zoo and seed). p = 2 min(P(d* <= 0),
    P(d* >= 0)) over the bootstrap replicates d* (+1 smoothing, so never exactly 0).

    >>> d = np.array([[1, 1, 0, 1], [1, 0, 1, 1], [0, 1, 1, 1]], dtype=float)
    >>> bootstrap_p([d]) < 0.01, bootstrap_p([d - d]) == 1.0
    (True, True)
    """
    est = _replicates(diff_strata, clusters, n_boot, seed)
    if np.allclose(est, 0):
        return 1.0
    lo, hi = (np.sum(est <= 0) + 1) / (n_boot + 1), (np.sum(est >= 0) + 1) / (n_boot + 1)
    return float(min(1.0, 2 * min(lo, hi)))


def percentile_ci(values: list[float], n_boot: int = 4000, level: float = 0.95, seed: int = 0) -> CI:
    """Mean over runs with a percentile bootstrap interval: it stays within the values' range
    (steps to reach a level cannot go below 0).

    >>> c = percentile_ci([5, 12, 8, 20]); c.mean, 5 <= c.low <= c.high <= 20
    (11.25, True)
    """
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return CI(float(x.mean()) if len(x) else float("nan"), float("nan"), float("nan"), len(x))
    means = _counts(np.random.default_rng(seed), len(x), n_boot) @ x / len(x)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return CI(float(x.mean()), float(lo), float(hi), len(x))


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
