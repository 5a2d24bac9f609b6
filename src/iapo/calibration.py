"""Grids with a known truth: how often `iapo.stats` rejects a true null, how often its intervals
cover the true difference, and its power, for a grid design (zoos x RL seeds) and world.

A simulated grid draws, for two arms A and B: a zoo effect shared by both arms, a zoo x arm
interaction, run noise (the RL seed) and question noise (each run's accuracy is a binomial draw
over `questions` test questions), at rates like the project's worlds:

- `sparse`: a run either finds the tools (accuracy near 25%, shifted per zoo) or does not (near
  1.5%); the chance to find them varies by zoo and by zoo x arm on the logit scale. Bimodal and
  heavy-tailed, as the sparse regime's runs are (research/claim: 0.0 / 29.2 / 1.7 ...).
- `quickstart`: every run finds the tools; accuracy near 65% with a few points of zoo, zoo x arm
  and run spread.

Both arms of those two come from one generator. Two nulls break that symmetry, as real grids do
(research/decisive: outcome GRPO found the tools in 14 of 18 runs, every other arm in 17-18):
- `bimodal`: A's runs find the tools with chance ~0.85 (45% or 1.5%), B's runs all sit at A's
  expected accuracy on their zoo; equal means, A's zoo means skewed left. The zoo t-test
  rejects 6-9% of these nulls, almost all in A's favour (a grid that happens to see no failure);
- `unequal_var`: quickstart rates, A's run spread four times B's.

A design's truth is E[accuracy of A] - E[accuracy of B] over the population of zoos, from a large
Monte Carlo draw of the same generator. The tests are the report's own (`stats.zoo_level`,
`stats.run_level`, `stats.sign_flip_batch`, `stats.decision_p`), vectorised over grids; each row
gives the false-positive rate of the t-test, of the sign-flip test and of the decision (both).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy.special import expit, logit

from iapo.stats import ALPHA, decision_p, run_level, sign_flip_batch, zoo_level

QUESTIONS = 120  # test questions per run, as in the worlds' test splits


@dataclass(frozen=True)
class World:
    """Generator parameters of one world's rates (accuracy as a fraction). `bimodal`: a run finds
    the tools (accuracy `level`) with chance `base` or stays at `floor`; else accuracy `base`.
    `b_expected`: arm B is unimodal at A's expected accuracy (the `bimodal` null);
    `a_run_sd`: arm A's own run spread (the `unequal_var` null)."""

    name: str
    bimodal: bool
    base: float  # bimodal: chance to find the tools; else the mean accuracy
    zoo_sd: float  # zoo effect (logit scale when bimodal)
    interaction_sd: float  # zoo x arm effect (same scale)
    run_sd: float  # run noise of the accuracy level
    level: float = 0.25  # bimodal: accuracy of a run that finds the tools
    level_zoo_sd: float = 0.04
    floor: float = 0.015  # bimodal: accuracy of a run that does not
    b_expected: bool = False
    a_run_sd: float | None = None

    def rates(self, rng: np.random.Generator, shape: tuple[int, ...], shift: float, zoo: np.ndarray,
              inter: np.ndarray, level_zoo: np.ndarray, arm: str = "a") -> np.ndarray:  # fmt: skip
        """True run accuracies of `arm`, `shape` = (..., zoos, runs); zoo / inter / level_zoo: (..., zoos, 1)."""
        sd = self.a_run_sd if arm == "a" and self.a_run_sd is not None else self.run_sd
        noise = rng.normal(0, sd, shape)
        if not self.bimodal:
            return np.clip(self.base + shift + zoo + inter + noise, 0, 1)
        chance = expit(logit(self.base + shift) + zoo + inter)
        level = np.clip(self.level + level_zoo + noise, 0, 1)
        if arm == "b" and self.b_expected:  # the expectation over the find coin: A's mean, one mode
            return chance * level + (1 - chance) * self.floor
        return np.where(rng.random(shape) < chance, level, self.floor)


def worlds(interaction: bool) -> dict[str, World]:
    """The worlds, with or without a zoo x arm interaction."""
    inter_logit, inter_acc = (1.0, 0.03) if interaction else (0.0, 0.0)
    return {
        "sparse": World("sparse", True, 0.5, 1.0, inter_logit, 0.05),
        "quickstart": World("quickstart", False, 0.65, 0.05, inter_acc, 0.02),
        "bimodal": World("bimodal", True, 0.85, 0.3, inter_logit / 2, 0.03, level=0.45, b_expected=True),
        "unequal_var": World("unequal_var", False, 0.65, 0.05, inter_acc, 0.02, a_run_sd=0.08),
    }


STRESS = World("stress", True, 0.9, 0.0, 0.0, 0.02, level=0.6, level_zoo_sd=0.0, b_expected=True)
"""Beyond any test at these sizes: A finds the tools in 9 of 10 runs at 60%, B sits at A's mean with
no zoo spread. A grid of <= 8 zoos rarely sees A fail, so A's zoo means look above B's every time
(`bench/stats_calibration.py --stress`; the report flags such a contrast, `tables.split_arms`)."""


def draw(world: World, rng: np.random.Generator, grids: int, zoos: int, seeds: int, shift: float):
    """(a, b): per-run accuracies (grids, zoos, seeds) of arm A (shifted) and arm B."""
    zoo = rng.normal(0, world.zoo_sd, (grids, zoos, 1))
    level_zoo = rng.normal(0, world.level_zoo_sd, (grids, zoos, 1))
    out = []
    for s, arm in ((shift, "a"), (0.0, "b")):
        inter = rng.normal(0, world.interaction_sd, (grids, zoos, 1))
        p = world.rates(rng, (grids, zoos, seeds), s, zoo, inter, level_zoo, arm)
        out.append(rng.binomial(QUESTIONS, p) / QUESTIONS)
    return out[0], out[1]


@functools.cache  # one Monte Carlo draw per (world, shift), shared by every design
def truth(world: World, shift: float, n: int = 400_000, seed: int = 12345) -> float:
    """E[acc A] - E[acc B] over the zoo population (common random numbers, Monte Carlo)."""
    diffs = []
    for s, arm in ((shift, "a"), (0.0, "b")):
        rng = np.random.default_rng(seed)
        zoo = rng.normal(0, world.zoo_sd, (n, 1, 1))
        level_zoo = rng.normal(0, world.level_zoo_sd, (n, 1, 1))
        inter = rng.normal(0, world.interaction_sd, (n, 1, 1))
        diffs.append(world.rates(rng, (n, 1, 1), s, zoo, inter, level_zoo, arm).mean())
    return float(diffs[0] - diffs[1])


def shift_for(world: World, effect: float) -> float:
    """The generator shift whose true difference is `effect` (points as a fraction)."""
    if effect == 0:
        return 0.0
    hi = 0.99 - world.base
    return float(optimize.brentq(lambda s: truth(world, s, n=100_000) - effect, 0.0, hi, xtol=1e-4))


def evaluate(world: World, zoos: int, seeds: int, shift: float, grids: int, rng: np.random.Generator,
             welch: bool = False) -> dict[str, np.ndarray]:  # fmt: skip
    """Booleans (grids,) per grid: `t`, `sign_flip` and `decision` (both) rejected, and `covered`
    (the 95% t interval holds the truth). Several zoos: the zoo is the unit; one zoo: the run
    (paired by seed, or Welch with `welch`: no sign-flip test), the truth that zoo's own
    difference (checked only under the null: the arms are exchangeable within a zoo without an
    interaction)."""
    a, b = draw(world, rng, grids, zoos, seeds, shift)
    if zoos >= 2 or not welch:
        d = a.mean(-1) - b.mean(-1) if zoos >= 2 else a[:, 0] - b[:, 0]
        _m, lo, hi, p, _, _ = zoo_level(d)
        p_flip = sign_flip_batch(d)
    else:
        _m, lo, hi, p, _, _ = run_level(a[:, 0], b[:, 0])
        p_flip = np.full_like(p, np.nan)
    t = truth(world, shift) if shift or world.b_expected else 0.0
    return {"t": p < ALPHA, "sign_flip": p_flip < ALPHA, "decision": decision_p(p, p_flip) < ALPHA,
            "covered": (lo <= t) & (t <= hi)}  # fmt: skip


DESIGNS = ((2, 3), (2, 8), (4, 3), (4, 8), (6, 3), (6, 8), (8, 3))


def calibration_table(
    grids: int = 2000, designs: tuple[tuple[int, int], ...] = DESIGNS, effects: tuple[float, ...] = (0.05, 0.10),
    seed: int = 0, one_zoo: bool = True, extra: tuple[World, ...] = (),
) -> list[dict]:  # fmt: skip
    """One row per (world, interaction, zoos, seeds, test): false-positive rates under the null (of
    the decision, `false_positive`, and of each of its tests), coverage under the null, coverage
    and the decision's power under each effect. One-zoo rows (the run as the unit, paired by seed
    or Welch; no interaction, so the zoo's own truth is 0) and the nulls with a bimodal arm check
    the null only; `extra` worlds (e.g. `STRESS`) add their rows without an interaction."""
    rng = np.random.default_rng(seed)
    rows = []
    cases = [(i, w) for i in (False, True) for w in worlds(i).values()] + [(False, w) for w in extra]
    for interaction, w in cases:
        # a shift of A's find chance cannot move a bimodal null's mean by 5 points: its null only
        shifts = {} if w.b_expected else {e: shift_for(w, e) for e in effects}
        tests = [(z, s, "zoo") for z, s in designs]
        if one_zoo and not interaction and not w.b_expected:
            tests += [(1, s, test) for s in (3, 8) for test in ("paired", "Welch")]
        for zoos, seeds, test in tests:
            null = evaluate(w, zoos, seeds, 0.0, grids, rng, welch=test == "Welch")
            row = {"world": w.name, "interaction": interaction, "zoos": zoos, "seeds": seeds, "test": test,
                   "grids": grids, "false_positive": float(null["decision"].mean()),
                   "fp_t": float(null["t"].mean()), "fp_sign_flip": float(null["sign_flip"].mean()),
                   "coverage_null": float(null["covered"].mean())}  # fmt: skip
            if zoos >= 2:
                for e, s in shifts.items():
                    hit = evaluate(w, zoos, seeds, s, grids, rng)
                    row[f"power@{100 * e:g}"] = float(hit["decision"].mean())
                    row[f"coverage@{100 * e:g}"] = float(hit["covered"].mean())
            rows.append(row)
    return rows


def mc_error(rate: float, grids: int) -> float:
    """Monte Carlo standard error of a rate estimated from `grids` simulated grids."""
    return float(np.sqrt(rate * (1 - rate) / grids))
