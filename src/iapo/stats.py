"""Inference over a grid of RL runs: the zoo is the unit, questions enter through run accuracies.

A grid trains methods x zoos x RL seeds; each run's test accuracy already averages its test
questions, so question noise is part of the run-to-run spread and is never counted again. What
a claim generalises over is the zoo (the SFT student and teacher a grid starts from: another
machine trains another zoo), so:

- several zoos: a method's accuracy is the mean of its per-zoo means, with a t-interval over
  zoos; a contrast A - B is the mean of the per-zoo differences of means, tested with a
  t-test over zoos (df = zoos - 1) and an exact sign-flip test; a difference is significant
  only when both reject (`decision_p`: the t-test alone is liberal when one arm's runs are
  bimodal, the sign-flip test alone gives no interval). This is the
  split-plot analysis of a linear mixed model with zoo and zoo x method effects: exact under
  normal zoo effects whatever the run noise, with any number of seeds per method and zoo. A
  REML mixed model estimates the zoo x method variance and, when that estimate sits at zero with
  few zoos, tests against run noise alone: liberal exactly when a zoo carries a result.
- one zoo: the run is the unit (a paired t over seeds when both arms ran the same seeds, else
  Welch); the claim then holds for that zoo only.

Questions are not a unit of replication: a t-test over questions averaged across the runs of a
grid rejected a true null in 30-56% of simulated grids, because a seed that shifts moves every
question at once. Calibration (false-positive rate, coverage) and power are measured by
simulation in `iapo.calibration` and asserted in tests/test_stats.py.

- `wilson`: one evaluation's accuracy over n questions (the SFT student, evaluated once);
- `arm_ci`: a method's accuracy over a grid (zoo means, or runs with one zoo);
- `contrast`: A - B with its 95% CI, p, sign-flip p and minimum detectable effect (80% power),
  from the per-unit differences `unit_differences` (per zoo, or per seed on one zoo);
- `holm`: Holm's step-down adjustment of the exploratory comparisons (statsmodels);
- `variance_components` / `power` / `plan_grid`: size a grid from a pilot;
- `mean_ci`, `percentile_ci`: a t-interval and a percentile bootstrap over runs of any number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy import optimize, stats

ALPHA, POWER = 0.05, 0.8

# zoo (None with one zoo) -> per-run accuracies: {seed: accuracy}, or a plain sequence (no seeds)
RunsByZoo = Mapping[object, Mapping[object, float] | Sequence[float]]


def values(runs: Mapping[object, float] | Sequence[float]) -> np.ndarray:
    """A zoo's per-run accuracies as an array (seed order)."""
    return np.asarray(list(runs.values()) if isinstance(runs, Mapping) else runs, dtype=float)


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


NAN_CI = CI(math.nan, math.nan, math.nan, 0)


def wilson(successes: float, n: int, z: float = 1.96) -> CI:
    """Wilson score interval of a proportion.

    >>> str(wilson(8, 10))
    '80.0 [49.0, 94.3]'
    """
    if n == 0:
        return NAN_CI
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return CI(p, max(0.0, centre - half), min(1.0, centre + half), n)


def mean_ci(values: Sequence[float], level: float = 0.95, bounds: tuple[float, float] | None = None) -> CI:
    """Mean and t-interval; a single value has an undefined (nan) interval. `bounds`: the
    metric's range (e.g. (0, 1) for an accuracy); the interval is clipped to it.

    >>> c = mean_ci([0.5, 0.6, 0.7]); round(c.mean, 3), round(c.low, 3), round(c.high, 3)
    (0.6, 0.352, 0.848)
    >>> c = mean_ci([0.1, 0.9, 0.95], bounds=(0, 1)); round(c.low, 3), round(c.high, 3)
    (0.0, 1.0)
    """
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return NAN_CI
    m = float(x.mean())
    if n < 2:
        return CI(m, math.nan, math.nan, n)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    lo, hi = (m - half, m + half) if bounds is None else (max(bounds[0], m - half), min(bounds[1], m + half))
    return CI(m, float(lo), float(hi), n)


def percentile_ci(values: Sequence[float], n_boot: int = 4000, level: float = 0.95, seed: int = 0) -> CI:
    """Mean over runs with a percentile bootstrap interval: it stays within the values' range
    (steps to reach a level cannot go below 0). Descriptive: not a test of a method.

    >>> c = percentile_ci([5, 12, 8, 20]); c.mean, 5 <= c.low <= c.high <= 20
    (11.25, True)
    """
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return CI(float(x.mean()) if len(x) else math.nan, math.nan, math.nan, len(x))
    rng = np.random.default_rng(seed)
    means = rng.multinomial(len(x), np.full(len(x), 1 / len(x)), size=n_boot) @ x / len(x)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return CI(float(x.mean()), float(lo), float(hi), len(x))


# --- the vectorised cores (the simulation in iapo.calibration calls these same functions) ---------


def zoo_level(d: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, ...]:
    """t over zoos. d: (..., Z) per-zoo differences (or per-zoo means).
    Returns (mean, low, high, p, se, df), each (...)."""
    z = d.shape[-1]
    m = d.mean(-1)
    se = d.std(-1, ddof=1) / math.sqrt(z)
    return _t_summary(m, se, np.full_like(m, z - 1.0), level)


def run_level(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, ...]:
    """Welch t over runs of one zoo. a: (..., nA), b: (..., nB); b with one run (the SFT student,
    evaluated once, greedy) is a constant. Returns (mean, low, high, p, se, df), each (...)."""
    na, nb = a.shape[-1], b.shape[-1]
    va = a.var(-1, ddof=1) / na
    vb = b.var(-1, ddof=1) / nb if nb > 1 else np.zeros_like(va)
    se = np.sqrt(va + vb)
    with np.errstate(invalid="ignore", divide="ignore"):
        df = (va + vb) ** 2 / (va**2 / (na - 1) + (vb**2 / (nb - 1) if nb > 1 else 0.0))
    df = np.where(np.isfinite(df), df, na - 1.0)
    return _t_summary(a.mean(-1) - b.mean(-1), se, df, level)


def _t_summary(m: np.ndarray, se: np.ndarray, df: np.ndarray, level: float) -> tuple[np.ndarray, ...]:
    """(mean, low, high, two-sided p, se, df); a zero spread gives p = 1 for a zero mean, else 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        t = m / se
        p = 2 * stats.t.sf(np.abs(t), df)
        half = stats.t.ppf(0.5 + level / 2, df) * se
    flat = se == 0
    p = np.where(flat, np.where(m == 0, 1.0, 0.0), p)
    half = np.where(flat, 0.0, half)
    return m, m - half, m + half, p, se, df


def mde(se: float, df: float, power: float = POWER, alpha: float = ALPHA) -> float:
    """The smallest true difference a two-sided t-test with this standard error and df detects
    with probability `power` (noncentral t).

    >>> round(mde(1.0, 1e6), 2)  # the normal limit: (1.96 + 0.84) standard errors
    2.8
    """
    if not (se > 0 and df > 0):
        return math.nan
    hi = 1.0
    while _power_t(hi, df, alpha) < power:
        hi *= 2
    return float(se * optimize.brentq(lambda ncp: _power_t(ncp, df, alpha) - power, 0.0, hi))


def _power_t(ncp: float, df: float, alpha: float = ALPHA) -> float:
    """Power of a two-sided t-test at noncentrality `ncp`: E over the chi-square of the
    standard error of P(|Z + ncp| > crit * s), integrated over its quantiles (Gauss-Legendre;
    scipy's noncentral t returns nan for the large ncp of a 1-df test)."""
    crit = stats.t.ppf(1 - alpha / 2, df)
    s = np.sqrt(stats.chi2.ppf(_U, df) / df)  # (nodes,)
    p = stats.norm.sf(crit * s - ncp) + stats.norm.cdf(-crit * s - ncp)
    return float(np.dot(_W, p))


_X, _W = np.polynomial.legendre.leggauss(400)
_U, _W = (_X + 1) / 2, _W / 2  # nodes and weights on (0, 1)


def sign_flip_p(d: Sequence[float]) -> float:
    """Exact two-sided sign-flip test of a zero mean over zoos (scipy, every sign pattern);
    its smallest attainable p is 2 / 2^Z (0.5 with 2 zoos, 0.125 with 4, 0.031 with 6)."""
    x = np.asarray(d, dtype=float)
    if len(x) < 2 or np.allclose(x, 0):
        return 1.0 if len(x) else math.nan
    res = stats.permutation_test(
        (x,), lambda v, axis: np.mean(v, axis=axis), permutation_type="samples", vectorized=True,
        n_resamples=np.inf, alternative="two-sided",
    )  # fmt: skip
    return float(res.pvalue)


def sign_flip_batch(d: np.ndarray) -> np.ndarray:
    """`sign_flip_p` of many grids at once (the simulation's core). d: (grids, Z), Z <= 16 ->
    (grids,): the share of the 2^Z sign patterns whose |mean| reaches the observed one."""
    z = d.shape[-1]
    signs = 1 - 2 * ((np.arange(2**z)[:, None] >> np.arange(z)) & 1)  # (2^Z, Z) of +-1
    flipped = np.abs(d @ signs.T)  # (grids, 2^Z)
    return (flipped >= np.abs(d.sum(-1, keepdims=True)) * (1 - 1e-9)).mean(-1)


def decision_p(p_t, p_flip):
    """The p a decision uses: the larger of the t-test's and the exact sign-flip test's, so a
    difference counts only when both reject (an intersection of two tests holds its level where
    either does). The t-test alone rejects up to 1.5x its level when one arm's runs are bimodal
    (some runs never find the tools) and the other's are not (`iapo.calibration`)."""
    return np.fmax(p_t, p_flip)  # fmax: a nan sign-flip p (Welch over unpaired runs) leaves the t-test's


# --- contrasts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contrast:
    """A - B over a grid: `diff` = `mean_a` - `mean_b`, both on the units used (`unit`: "zoo" =
    the zoos both arms ran on, each arm's zoo mean over all its runs there; one zoo: "seed" =
    runs paired by seed, "run" = unpaired runs)."""

    a: str
    b: str
    unit: str
    n_units: int
    n_a: int  # runs of A used
    n_b: int
    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    p: float  # the t-test over units
    p_sign_flip: float  # exact over zoos (or seed pairs); nan over unpaired runs
    mde: float  # 80% power at alpha 0.05 for this design
    p_holm: float | None = None  # set by `holm` for secondary and exploratory contrasts
    primary: bool = False
    secondary: bool = False  # pre-registered beside the primary: a Holm family of its own

    @property
    def role(self) -> str:
        return "primary" if self.primary else "secondary" if self.secondary else "exploratory"

    @property
    def p_test(self) -> float:
        """The decision's p before adjustment: t and sign-flip must both reject (`decision_p`)."""
        return float(decision_p(self.p, self.p_sign_flip))

    @property
    def p_used(self) -> float:
        return self.p_test if self.primary or self.p_holm is None else self.p_holm

    @property
    def significant(self) -> bool:
        return self.p_used < ALPHA  # False for nan

    def reading(self) -> str:
        """What the contrast supports, in words: a difference, or the interval it is compatible with.

        >>> c = Contrast("a", "b", "zoo", 6, 18, 18, 0.27, 0.25, 0.019, -0.022, 0.060, 0.29, 0.28, 0.056)
        >>> c.reading()
        'not significant: compatible with -2.2 to +6.0 points; differences beyond that excluded at 95%'
        """
        if math.isnan(self.diff):
            return "no shared runs"
        if math.isnan(self.low):
            return f"{100 * self.diff:+.1f}, no interval (too few {self.unit}s)"
        if self.significant:
            return f"{self.a} {'above' if self.diff > 0 else 'below'} {self.b}"
        span = f"compatible with {100 * self.low:+.1f} to {100 * self.high:+.1f} points"
        if self.low > 0 or self.high < 0:  # the t interval excludes 0; the sign-flip test or Holm does not
            why = "after Holm" if self.p_test < ALPHA else f"by the sign-flip test (p {self.p_sign_flip:.2g})"
            return f"not significant {why}: {span}"
        return f"not significant: {span}; differences beyond that excluded at 95%"

    def to_json(self) -> dict:
        return asdict(self)


def _shared_zoos(a: RunsByZoo, b: RunsByZoo) -> list:
    return [z for z in a if z in b and len(a[z]) and len(b[z])]


def unit_differences(a: RunsByZoo, b: RunsByZoo) -> np.ndarray:
    """The per-unit differences A - B that `contrast` tests: with two or more shared zoos, each
    zoo's mean of A's runs minus B's (zoo order); with one, A - B per seed when both ran the same
    seeds; else none (unpaired runs have no per-unit difference).

    >>> unit_differences({0: [0.3, 0.5], 1: [0.2]}, {0: [0.1], 1: [0.2, 0.4]}).round(2).tolist()
    [0.3, -0.1]
    >>> unit_differences({None: {0: 0.5, 1: 0.2}}, {None: {0: 0.25, 1: 0.3}}).round(2).tolist()
    [0.25, -0.1]
    """
    zoos = _shared_zoos(a, b)
    if len(zoos) >= 2:
        return np.array([values(a[z]).mean() - values(b[z]).mean() for z in zoos])
    ra, rb = (a[zoos[0]], b[zoos[0]]) if zoos else ({}, {})
    if isinstance(ra, Mapping) and isinstance(rb, Mapping) and ra and set(ra) == set(rb):
        return np.array([ra[k] - rb[k] for k in ra], dtype=float)
    return np.array([], dtype=float)


def contrast(a: RunsByZoo, b: RunsByZoo, names: tuple[str, str] = ("a", "b")) -> Contrast:
    """A - B with the zoo as the unit when both arms share two or more zoos. With one zoo the run
    is the unit: paired by seed when both arms ran the same seeds ({seed: accuracy}; a seed fixes
    the question order and sampling of a run, a design feature shared by both arms), else Welch.

    >>> a = {0: [0.30, 0.28], 1: [0.20, 0.22], 2: [0.26, 0.24]}
    >>> b = {0: [0.10, 0.12], 1: [0.05, 0.07], 2: [0.00, 0.02]}
    >>> c = contrast(a, b); c.unit, c.n_units, round(c.diff, 3), round(c.mean_a - c.mean_b, 3), c.p < 0.05
    ('zoo', 3, 0.19, 0.19, True)
    """
    zoos = _shared_zoos(a, b)
    nan = math.nan
    if not zoos:
        return Contrast(*names, "zoo", 0, 0, 0, nan, nan, nan, nan, nan, nan, nan, nan)
    n_a, n_b = sum(len(a[z]) for z in zoos), sum(len(b[z]) for z in zoos)
    if len(zoos) >= 2:
        d = unit_differences(a, b)
        m, lo, hi, p, se, df = (float(x) for x in zoo_level(d))
        mean_a, mean_b = (float(np.mean([values(r[z]).mean() for z in zoos])) for r in (a, b))
        return Contrast(*names, "zoo", len(zoos), n_a, n_b, mean_a, mean_b, m, lo, hi, p, sign_flip_p(d),
                        mde(se, df))  # fmt: skip
    (z,) = zoos
    xa, xb = values(a[z]), values(b[z])
    if len(xa) < 2:
        return Contrast(*names, "run", len(xa), n_a, n_b, float(xa.mean()), float(xb.mean()),
                        float(xa.mean() - xb.mean()), nan, nan, nan, nan, nan)  # fmt: skip
    if len(d := unit_differences(a, b)):
        m, lo, hi, p, se, df = (float(x) for x in zoo_level(d))  # a one-sample t over seed pairs
        unit, p_flip = "seed", sign_flip_p(d) if len(d) <= 16 else nan
    else:
        m, lo, hi, p, se, df = (float(x) for x in run_level(xa, xb))
        unit, p_flip = "run", nan
    return Contrast(*names, unit, len(xa), n_a, n_b, float(xa.mean()), float(xb.mean()), m, lo, hi, p, p_flip,
                    mde(se, df))  # fmt: skip


def arm_ci(runs: RunsByZoo, level: float = 0.95) -> CI:
    """A method's accuracy over a grid: the mean of its zoo means with a t-interval over zoos
    (several zoos) or over runs (one zoo), clipped to [0, 1]; n = the number of runs.

    >>> str(arm_ci({0: [0.2, 0.3], 1: [0.4, 0.5]}))
    '35.0 [0.0, 100.0]'
    """
    zoos = [z for z in runs if len(runs[z])]
    n = sum(len(runs[z]) for z in zoos)
    units = [values(runs[z]).mean() for z in zoos] if len(zoos) >= 2 else [x for z in zoos for x in values(runs[z])]
    c = mean_ci(units, level, bounds=(0.0, 1.0))
    return replace(c, n=n)


def holm(contrasts: list[Contrast]) -> list[Contrast]:
    """Holm's step-down adjustment within each family: the pre-registered secondary contrasts,
    and the exploratory ones (the primary contrast is in neither: it alone was named as the
    verdict before the grid ran)."""
    from statsmodels.stats.multitest import multipletests

    out = list(contrasts)
    for family in ("secondary", "exploratory"):
        idx = [i for i, c in enumerate(contrasts) if c.role == family and math.isfinite(c.p)]
        if idx:
            adj = multipletests([contrasts[i].p_test for i in idx], alpha=ALPHA, method="holm")[1]
            for i, p in zip(idx, adj, strict=True):
                out[i] = replace(contrasts[i], p_holm=float(p))
    return out


# --- planning a grid from a pilot ---------------------------------------------------------------


@dataclass(frozen=True)
class Components:
    """Variance components of a contrast's per-run accuracies: `run` the spread of runs within a
    zoo and method (RL seed and test questions together), `interaction` the spread of the
    zoo x method effect on the difference (0 when not estimable: one zoo)."""

    run: float
    interaction: float
    n_zoos: int
    n_runs: int


def variance_components(a: RunsByZoo, b: RunsByZoo) -> Components:
    """Method of moments (the ANOVA estimator), floored at 0:
    run = pooled within-(zoo, arm) variance; Var(d_z) = interaction + run (1/nA_z + 1/nB_z)."""
    zoos = [z for z in a if z in b and len(a[z]) and len(b[z])]
    cells = [values(x[z]) for z in zoos for x in (a, b)]
    dof = sum(len(c) - 1 for c in cells)
    run = float(sum(((c - c.mean()) ** 2).sum() for c in cells) / dof) if dof > 0 else math.nan
    inter = 0.0
    if len(zoos) >= 2 and math.isfinite(run):
        d = np.array([values(a[z]).mean() - values(b[z]).mean() for z in zoos])
        noise = np.mean([run * (1 / len(a[z]) + 1 / len(b[z])) for z in zoos])
        inter = max(0.0, float(d.var(ddof=1) - noise))
    return Components(run, inter, len(zoos), sum(len(c) for c in cells))


def power(effect: float, comp: Components, zoos: int, seeds: int, alpha: float = ALPHA, draws: int = 8000) -> float:
    """Power of the decision (`decision_p`: the zoo t-test and the exact sign-flip test both reject)
    for a true difference `effect` with `zoos` zoos and `seeds` runs per arm and zoo: with 2-12
    zoos by simulating normal per-zoo differences (seeded, so a plan is the same every time; Monte
    Carlo error <= 0.6 points), with more the t-test's (the sign-flip floor is then far below
    alpha). One zoo: the run-level t-test, the interaction then part of the effect."""
    if 2 <= zoos <= 12:
        sd = math.sqrt(comp.interaction + 2 * comp.run / seeds)
        if sd == 0:
            return 1.0
        rng, hits = np.random.default_rng(0), 0
        for _ in range(draws // 1000):  # chunks: 1000 x 2^Z sign patterns at a time
            d = rng.normal(effect, sd, (1000, zoos))
            hits += int((decision_p(zoo_level(d)[3], sign_flip_batch(d)) < alpha).sum())
        return hits / (draws // 1000 * 1000)
    if zoos >= 2:
        se = math.sqrt((comp.interaction + 2 * comp.run / seeds) / zoos)
        df = zoos - 1
    else:
        se, df = math.sqrt(2 * comp.run / seeds), 2 * seeds - 2
    return _power_t(effect / se, df, alpha) if se > 0 else 1.0


def plan_grid(comp: Components, effects: Sequence[float], zoos: Sequence[int], seeds: Sequence[int]) -> list[dict]:
    """Power for every (zoos, seeds) design and effect; rows sorted by the runs they cost."""
    rows = [
        {"zoos": z, "seeds": s, "runs_per_arm": z * s, **{f"power@{e:g}": power(e, comp, z, s) for e in effects}}
        for z in zoos
        for s in seeds
    ]
    return sorted(rows, key=lambda r: (r["runs_per_arm"], r["zoos"]))
