"""Which comparisons a report makes and their statistics: each run's accuracy is the datum
(`arm_runs`), every contrast is computed once (`comparisons`, `iapo.stats.contrast`), the
primary one named in the config, the rest exploratory and Holm-adjusted."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import replace

import numpy as np

from iapo.errors import DataError
from iapo.stats import (
    Contrast,
    contrast,
    holm,
)


def average_accuracy(r: dict, splits: list[str] | None = None, tools: bool = True) -> float:
    """A run's accuracy: the mean over test splits (each split weighted equally) of its accuracy
    (`tools` False: of its evaluation with no tools offered)."""
    by_split = r["splits"] if tools else r["splits_no_tools"]
    return float(np.mean([by_split[s]["accuracy"]["mean"] for s in (splits or sorted(by_split))]))


def decoy_rate(r: dict, splits: list[str] | None = None) -> float:
    """A run's decoy-call rate: over the test splits with questions that name a distractor, the
    share of its valid calls there that call the distractor (`iapo.rollout.summary.decoy_stats`),
    each split weighted by its valid calls; nan without one."""
    by = [s for name, s in r["splits"].items() if (splits is None or name in splits) and "tools/decoy_rate" in s]
    n = [s.get("tools/distractor_valid_calls", 1.0) for s in by]
    rates = [
        (s["tools/decoy_rate"], k) for s, k in zip(by, n, strict=True) if k and not math.isnan(s["tools/decoy_rate"])
    ]
    return sum(x * k for x, k in rates) / sum(k for _, k in rates) if rates else math.nan


def arm_runs(
    results: list[dict], splits: list[str] | None = None, tools: bool = True, measure: str = "accuracy"
) -> dict[str, dict]:
    """method -> zoo (None with one zoo) -> {seed: accuracy}: the only input of every interval
    and test in the report (questions enter through each run's accuracy). `tools` False: the
    accuracy with no tools offered, of the runs evaluated that way. `measure` decoy_rate: each
    run's decoy-call rate instead (`decoy_rate`; a run without a valid call on a distractor
    question has none and is left out)."""
    out: dict[str, dict] = defaultdict(dict)
    for r in sorted(results, key=lambda r: (r.get("zoo") is not None, r.get("zoo") or 0, r["seed"] or 0)):
        if measure == "decoy_rate":
            if not math.isnan(v := decoy_rate(r, splits)):
                out[r["method"]].setdefault(r.get("zoo"), {})[r["seed"]] = v
        elif tools or "splits_no_tools" in r:
            out[r["method"]].setdefault(r.get("zoo"), {})[r["seed"]] = average_accuracy(r, splits, tools)
    return dict(out)


def per_question(r: dict, splits: list[str]) -> dict[str, float]:
    return {f"{s}:{e['id']}": float(e["correct"]) for s in splits for e in r["episodes"][s]}


def comparisons(
    arms: dict[str, dict], references: list[str], proposed: str, primary: tuple[str, str] | None,
    variants: list[str] | None = None, secondary: list[tuple[str, str]] | None = None,
) -> list[Contrast]:  # fmt: skip
    """Every comparison the report shows, each computed once (`stats.contrast`) from `arms`
    (method -> zoo -> per-run accuracies, `arm_runs`): the primary contrast named in the config
    (confirmatory), then every method against each of `references` (the baseline, the best
    incentive on val) and every attribution variant (`variants`) against the proposed method
    (exploratory: Holm-adjusted together)."""
    methods = [m for m in arms if m != "sft"]
    pairs = [primary] if primary and all(x in arms for x in primary) else []
    named = [tuple(p) for p in secondary or [] if all(x in arms for x in p)]
    pairs += named
    for ref in references:
        pairs += [(m, ref) for m in methods if m != ref and ref in arms]
    pairs += [(m, proposed) for m in variants or [] if m in arms and m != proposed and proposed in arms]
    seen, out = set(), []
    for a, b in pairs:
        if frozenset((a, b)) not in seen:
            seen.add(frozenset((a, b)))
            c = contrast(arms[a], arms[b], (a, b))
            is_primary = bool(primary) and (a, b) == tuple(primary)
            out.append(replace(c, primary=is_primary, secondary=not is_primary and (a, b) in named))
    return holm(out)


def attribution_variants(configs: dict[str, dict]) -> list[str]:
    """The methods with an attribution term."""
    return [m for m, c in configs.items() if (c or {}).get("attribution")]


def find(contrasts: list[Contrast], a: str, b: str) -> Contrast | None:
    return next((c for c in contrasts if (c.a, c.b) == (a, b)), None)


def find_either(contrasts: list[Contrast], a: str, b: str) -> Contrast | None:
    """A - B, or the contrast computed as B - A turned round (a primary contrast keeps its order)."""
    if (c := find(contrasts, a, b)) is not None or (r := find(contrasts, b, a)) is None:
        return c
    return replace(r, a=a, b=b, n_a=r.n_b, n_b=r.n_a, mean_a=r.mean_b, mean_b=r.mean_a, diff=-r.diff, low=-r.high,
                   high=-r.low)  # fmt: skip


def mean_per_question(runs: list[dict], splits: list[str]) -> dict[str, float]:
    """Each question's correctness averaged over runs."""
    acc: dict[str, list[float]] = defaultdict(list)
    for r in runs:
        for k, v in per_question(r, splits).items():
            acc[k].append(v)
    return {k: float(np.mean(v)) for k, v in acc.items()}


def incentives(configs: dict[str, dict]) -> list[str]:
    """The tool-use incentives among the methods: they pay for calls (a tool bonus, curiosity)
    and have no attribution term."""
    return [m for m, c in configs.items() if not c.get("attribution") and (c.get("tool_bonus") or c.get("curiosity"))]


def best_on_val(curves: dict[str, list[list[dict]]], names: list[str]) -> str | None:
    """The method of `names` with the highest mean final val accuracy: chosen on val, never test."""
    scored = {m: float(np.nanmean(final_val(curves[m]))) for m in names if curves.get(m)}
    scored = {m: v for m, v in scored.items() if math.isfinite(v)}
    return max(scored, key=scored.__getitem__) if scored else None


def final_val(curves: list[list[dict]]) -> list[float]:
    return [next((r["val/accuracy"] for r in reversed(rows) if "val/accuracy" in r), math.nan) for rows in curves]


def require_arms(arms: dict[str, dict], names: list[str] | tuple[str, ...]) -> None:
    """One error naming every requested method the runs do not hold."""
    missing = [m for m in dict.fromkeys(names) if m not in arms]
    if missing:
        raise DataError(f"not in the runs: {', '.join(missing)} (have: {', '.join(arms)})")
