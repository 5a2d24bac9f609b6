"""Grids with a known truth: how often `iapo.stats` rejects a true null, how often its intervals
cover the true difference, and its power, for a grid design (zoos x RL seeds) and world.

A simulated grid draws, for two arms A and B: a zoo effect shared by both arms, a zoo x arm
interaction, run noise (the RL seed) and question noise (each run's accuracy is a binomial draw
over `questions` test questions), at rates like the project's two worlds:

- `sparse`: a run either finds the tools (accuracy near 25%, shifted per zoo) or does not (near
  1.5%); the chance to find them varies by zoo and by zoo x arm on the logit scale. Bimodal and
  heavy-tailed, as the sparse regime's runs are (research/claim: 0.0 / 29.2 / 1.7 ...).
- `quickstart`: every run finds the tools; accuracy near 65% with a few points of zoo, zoo x arm
  and run spread.

The truth of a design is E[accuracy of A] - E[accuracy of B] over the population of zoos, from a
large Monte Carlo draw of the same generator. The test statistics are computed by the functions
the report uses (`stats.zoo_level`, `stats.run_level`), vectorised over grids.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy.special import expit, logit

from iapo.stats import ALPHA, run_level, zoo_level

QUESTIONS = 120  # test questions per run, as in the worlds' test splits


@dataclass(frozen=True)
class World:
    """Generator parameters of one world's rates (accuracy as a fraction)."""

    name: str
    base: float  # sparse: chance to find the tools; quickstart: mean accuracy
    zoo_sd: float  # zoo effect (logit scale for sparse)
    interaction_sd: float  # zoo x arm effect (same scale)
    run_sd: float  # run noise of the accuracy level
    level: float = 0.25  # sparse: accuracy of a run that finds the tools
    level_zoo_sd: float = 0.04
    floor: float = 0.015  # sparse: accuracy of a run that does not

    def rates(self, rng: np.random.Generator, shape: tuple[int, ...], shift: float, zoo: np.ndarray,
              inter: np.ndarray, level_zoo: np.ndarray) -> np.ndarray:  # fmt: skip
        """True run accuracies, `shape` = (..., zoos, runs); zoo / inter / level_zoo: (..., zoos, 1)."""
        noise = rng.normal(0, self.run_sd, shape)
        if self.name == "quickstart":
            return np.clip(self.base + shift + zoo + inter + noise, 0, 1)
        found = rng.random(shape) < expit(logit(self.base + shift) + zoo + inter)
        return np.where(found, np.clip(self.level + level_zoo + noise, 0, 1), self.floor)


def worlds(interaction: bool) -> dict[str, World]:
    """Both worlds, with or without a zoo x arm interaction."""
    return {
        "sparse": World("sparse", 0.5, 1.0, 1.0 if interaction else 0.0, 0.05),
        "quickstart": World("quickstart", 0.65, 0.05, 0.03 if interaction else 0.0, 0.02),
    }


def draw(world: World, rng: np.random.Generator, grids: int, zoos: int, seeds: int, shift: float):
    """(a, b): per-run accuracies (grids, zoos, seeds) of arm A (shifted) and arm B."""
    zoo = rng.normal(0, world.zoo_sd, (grids, zoos, 1))
    level_zoo = rng.normal(0, world.level_zoo_sd, (grids, zoos, 1))
    out = []
    for s in (shift, 0.0):
        inter = rng.normal(0, world.interaction_sd, (grids, zoos, 1))
        p = world.rates(rng, (grids, zoos, seeds), s, zoo, inter, level_zoo)
        out.append(rng.binomial(QUESTIONS, p) / QUESTIONS)
    return out[0], out[1]


@functools.cache  # one Monte Carlo draw per (world, shift), shared by every design
def truth(world: World, shift: float, n: int = 400_000, seed: int = 12345) -> float:
    """E[acc A] - E[acc B] over the zoo population (common random numbers, Monte Carlo)."""
    diffs = []
    for s in (shift, 0.0):
        rng = np.random.default_rng(seed)
        zoo = rng.normal(0, world.zoo_sd, (n, 1, 1))
        level_zoo = rng.normal(0, world.level_zoo_sd, (n, 1, 1))
        inter = rng.normal(0, world.interaction_sd, (n, 1, 1))
        diffs.append(world.rates(rng, (n, 1, 1), s, zoo, inter, level_zoo).mean())
    return float(diffs[0] - diffs[1])


def shift_for(world: World, effect: float) -> float:
    """The generator shift whose true difference is `effect` (points as a fraction)."""
    if effect == 0:
        return 0.0
    hi = 0.99 - world.base
    return float(optimize.brentq(lambda s: truth(world, s, n=100_000) - effect, 0.0, hi, xtol=1e-4))


def evaluate(
    world: World, zoos: int, seeds: int, shift: float, grids: int, rng: np.random.Generator, welch: bool = False
):
    """(rejected, covered) booleans (grids,) of the report's test and 95% interval; with one zoo
    the run is the unit (paired by seed, or Welch with `welch`) and the truth is that zoo's own
    difference (checked only under the null: the arms are exchangeable within a zoo without an
    interaction)."""
    a, b = draw(world, rng, grids, zoos, seeds, shift)
    if zoos >= 2:
        _m, lo, hi, p, _, _ = zoo_level(a.mean(-1) - b.mean(-1))
    elif welch:
        _m, lo, hi, p, _, _ = run_level(a[:, 0], b[:, 0])
    else:
        _m, lo, hi, p, _, _ = zoo_level(a[:, 0] - b[:, 0])
    t = truth(world, shift) if shift else 0.0
    return p < ALPHA, (lo <= t) & (t <= hi)


def calibration_table(
    grids: int = 2000, designs: tuple[tuple[int, int], ...] = ((2, 3), (2, 8), (4, 3), (4, 8), (6, 3), (6, 8)),
    effects: tuple[float, ...] = (0.05, 0.10), seed: int = 0, one_zoo: bool = True,
) -> list[dict]:  # fmt: skip
    """One row per (world, interaction, zoos, seeds, test): false-positive rate and coverage under
    the null, coverage and power under each effect. One-zoo rows (the run as the unit, paired by
    seed or Welch; no interaction, so the zoo's own truth is 0) check the null only."""
    rng = np.random.default_rng(seed)
    rows = []
    for interaction in (False, True):
        for name, w in worlds(interaction).items():
            shifts = {e: shift_for(w, e) for e in effects}
            cases = [(z, s, "zoo t") for z, s in designs]
            if one_zoo and not interaction:
                cases += [(1, s, test) for s in (3, 8) for test in ("paired t", "Welch t")]
            for zoos, seeds, test in cases:
                rej0, cov0 = evaluate(w, zoos, seeds, 0.0, grids, rng, welch=test == "Welch t")
                row = {"world": name, "interaction": interaction, "zoos": zoos, "seeds": seeds, "test": test,
                       "grids": grids, "false_positive": float(rej0.mean()), "coverage_null": float(cov0.mean())}  # fmt: skip
                if zoos >= 2:
                    for e, s in shifts.items():
                        rej, cov = evaluate(w, zoos, seeds, s, grids, rng)
                        row[f"power@{100 * e:g}"] = float(rej.mean())
                        row[f"coverage@{100 * e:g}"] = float(cov.mean())
                rows.append(row)
    return rows


def mc_error(rate: float, grids: int) -> float:
    """Monte Carlo standard error of a rate estimated from `grids` simulated grids."""
    return float(np.sqrt(rate * (1 - rate) / grids))
