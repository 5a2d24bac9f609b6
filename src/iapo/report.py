"""`iapo report RUN_DIR`: the experiment's tables and figures as HTML + Markdown + PNGs.

Reads only what `iapo.experiment` wrote (results, metric logs, the records of each run and of
the experiment with their resolved configs), so a report can be regenerated at any time. Every
interval and test takes each run's test accuracy as its data, with the zoo as the unit when a
grid has several (`iapo.stats`); the verdict is the pre-registered primary contrast alone, every
other comparison is exploratory and Holm-adjusted, and each comparison is computed once
(`comparisons`) and shown with the same numbers wherever it appears. Per-question views are
description. `runs.csv` holds one row per run for re-analysis and `iapo plan`.
"""

from __future__ import annotations

import csv
import html
import json
import logging
import math
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from iapo.errors import DataError
from iapo.provenance import write_text
from iapo.rollout.episode import COMPONENTS
from iapo.stats import (
    CI,
    Contrast,
    arm_ci,
    contrast,
    holm,
    percentile_ci,
    plan_grid,
    values,
    variance_components,
    wilson,
)
from iapo.store import Damaged, read_json
from iapo.tools.session import CallClass
from iapo.viz import write_gallery

log = logging.getLogger(__name__)

BASELINE = "outcome"


def _run_files(run_dir: Path, name: str) -> list[tuple[str, int | None, Path]]:
    """(method, zoo seed or None, path) of every `name` under runs/<method>/[zoo<z>/][seed<k>/]."""
    out = []
    for p in sorted((run_dir / "runs").rglob(name)):
        parts = p.relative_to(run_dir / "runs").parts
        zoo = next((int(x[3:]) for x in parts[1:-1] if x.startswith("zoo") and x[3:].isdigit()), None)
        if len(parts) <= 4 and all(x.startswith(("zoo", "seed")) for x in parts[1:-1]):
            out.append((parts[0], zoo, p))
    return out


def load_results(run_dir: Path) -> list[dict]:
    """Every run's result.json, with the zoo it ran on (`zoo`: None for a one-zoo grid)."""
    found = _run_files(run_dir, "result.json")
    if not found:
        raise FileNotFoundError(f"{run_dir}: no runs/*/result.json (run `iapo experiment` first)")
    out, damaged = [], []
    for _, zoo, p in found:
        try:
            out.append({**read_json(p, required=("method", "seed")), "zoo": zoo})
        except Damaged as err:
            damaged.append(str(err))
    if damaged:  # a report only reads: the next `iapo experiment` sets them aside and recomputes them
        log.warning("skipped %d damaged result file(s): %s", len(damaged), "; ".join(damaged))
    return out


def method_configs(run_dir: Path, meta: dict) -> dict[str, dict]:
    """method -> its resolved method config, from the runs' own records (run.json) where they
    exist, else from experiment.json: what each run ran with, not this version's defaults."""
    out = dict(meta.get("config", {}).get("methods", {}))
    for m, _, p in _run_files(run_dir, "run.json"):
        out[m] = json.loads(p.read_text())["config"]["method"]
    return out


def load_run_curves(run_dir: Path) -> dict[str, dict[str, list[dict]]]:
    """method -> run label (`s<k>`, or `z<z>/s<k>` with several zoos) -> its metrics.jsonl rows.
    Finished runs only (a result.json beside the log), so a report taken while a grid runs counts
    the same runs in its curves as in its accuracy tables."""
    out: dict[str, dict[str, list[dict]]] = defaultdict(dict)
    for m, zoo, p in _run_files(run_dir, "metrics.jsonl"):
        if not (p.parent / "result.json").exists():
            continue
        label = ("" if zoo is None else f"z{zoo}/") + "s" + p.parent.name.removeprefix("seed")
        out[m][label] = [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
    return out


def load_curves(run_dir: Path) -> dict[str, list[list[dict]]]:
    """method -> one metrics.jsonl (list of rows) per run."""
    return {m: list(runs.values()) for m, runs in load_run_curves(run_dir).items()}


def _fmt(c) -> str:
    if c.n == 0 or math.isnan(c.mean):
        return "n/a"
    if math.isnan(c.low):
        return f"{100 * c.mean:.1f} (n={c.n})"
    return f"{100 * c.mean:.1f} [{100 * c.low:.1f}, {100 * c.high:.1f}]"


def _p(x: float) -> str:
    return "n/a" if math.isnan(x) else (f"{x:.3f}" if x >= 0.001 else "<0.001")


# --- tables -------------------------------------------------------------------------------------


def average_accuracy(r: dict, splits: list[str] | None = None) -> float:
    """A run's accuracy: the mean over test splits (each split weighted equally) of its accuracy."""
    return float(np.mean([r["splits"][s]["accuracy"]["mean"] for s in (splits or sorted(r["splits"]))]))


def arm_runs(results: list[dict], splits: list[str] | None = None) -> dict[str, dict]:
    """method -> zoo (None with one zoo) -> {seed: accuracy}: the only input of every interval
    and test in the report (questions enter through each run's accuracy)."""
    out: dict[str, dict] = defaultdict(dict)
    for r in sorted(results, key=lambda r: (r.get("zoo") is not None, r.get("zoo") or 0, r["seed"] or 0)):
        out[r["method"]].setdefault(r.get("zoo"), {})[r["seed"]] = average_accuracy(r, splits)
    return dict(out)


def accuracy_table(results: list[dict]) -> tuple[list[str], list[list[str]], dict[str, CI]]:
    """Rows: method; columns: runs, each test split and their average, mean [95% CI] with the
    zoo as the unit (`stats.arm_ci`); the SFT student evaluated once on one zoo gets Wilson
    intervals over its questions (nothing else varies)."""
    splits = sorted(results[0]["splits"])
    by_split = {s: arm_runs(results, [s]) for s in splits}
    avg = arm_runs(results)
    rows, arms = [], {}
    for m, zoos in avg.items():
        single = sum(map(len, zoos.values())) == 1
        if single:
            (r,) = [x for x in results if x["method"] == m]
            q = _per_question(r, splits)
            cells = [_fmt(_wilson_of(r["splits"][s]["accuracy"])) for s in splits]
            arms[m] = wilson(sum(q.values()), len(q))
            cells.append(_fmt(arms[m]) + " (questions)")
        else:
            cells = [_fmt(arm_ci(by_split[s][m])) for s in splits]
            arms[m] = arm_ci(zoos)
            cells.append(_fmt(arms[m]))
        rows.append([m, str(sum(map(len, zoos.values()))), *cells])
    return ["method", "runs", *splits, "average"], rows, arms


def _wilson_of(acc: dict) -> CI:
    return CI(acc["mean"], acc["ci_low"], acc["ci_high"], acc["n"])


def _per_question(r: dict, splits: list[str]) -> dict[str, float]:
    return {f"{s}:{e['id']}": float(e["correct"]) for s in splits for e in r["episodes"][s]}


def comparisons(
    arms: dict[str, dict], references: list[str], proposed: str, primary: tuple[str, str] | None,
    variants: list[str] | None = None,
) -> list[Contrast]:  # fmt: skip
    """Every comparison the report shows, each computed once (`stats.contrast`) from `arms`
    (method -> zoo -> per-run accuracies, `arm_runs`): the primary contrast named in the config
    (confirmatory), then every method against each of `references` (the baseline, the best
    incentive on val) and every attribution variant (`variants`) against the proposed method
    (exploratory: Holm-adjusted together)."""
    methods = [m for m in arms if m != "sft"]
    pairs = [primary] if primary and all(x in arms for x in primary) else []
    for ref in references:
        pairs += [(m, ref) for m in methods if m != ref and ref in arms]
    pairs += [(m, proposed) for m in variants or [] if m in arms and m != proposed and proposed in arms]
    seen, out = set(), []
    for a, b in pairs:
        if frozenset((a, b)) not in seen:
            seen.add(frozenset((a, b)))
            c = contrast(arms[a], arms[b], (a, b))
            out.append(replace(c, primary=bool(primary) and (a, b) == tuple(primary)))
    return holm(out)


def attribution_variants(configs: dict[str, dict]) -> list[str]:
    """The methods with an attribution term."""
    return [m for m, c in configs.items() if (c or {}).get("attribution")]


def find(contrasts: list[Contrast], a: str, b: str) -> Contrast | None:
    return next((c for c in contrasts if (c.a, c.b) == (a, b)), None)


def _diff(c: Contrast | None) -> str:
    """`+20.6 [12.1, 29.0]`: a difference in points with its 95% CI."""
    if c is None or math.isnan(c.diff):
        return ""
    ci = "" if math.isnan(c.low) else f" [{100 * c.low:+.1f}, {100 * c.high:+.1f}]"
    return f"{100 * c.diff:+.1f}{ci}"


def _pts(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}"


CONTRAST_HEAD = ["A", "B", "role", "unit (n)", "A %", "B %", "A - B [95% CI]", "p", "p Holm", "p sign-flip",
                 "MDE (80%)", "reading"]  # fmt: skip


def contrasts_table(contrasts: list[Contrast]) -> tuple[list[str], list[list[str]]]:
    """One row per comparison: the means it compares (on the units it uses), their difference
    with its interval, the test over units, Holm's adjustment, the exact sign-flip p over zoos,
    the design's minimum detectable effect, and what that supports in words."""
    rows = [
        [
            c.a,
            c.b,
            "primary" if c.primary else "exploratory",
            f"{c.unit}s ({c.n_units})",
            _pts(c.mean_a),
            _pts(c.mean_b),
            _diff(c),
            _p(c.p),
            "" if c.p_holm is None else _p(c.p_holm),
            _p(c.p_sign_flip),
            _pts(c.mde),
            c.reading(),
        ]
        for c in contrasts
    ]
    return CONTRAST_HEAD, rows


def per_zoo_table(results: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Each method's mean accuracy on each zoo (runs in brackets): where a zoo carries a result."""
    arms = arm_runs(results)
    zoos = sorted({z for a in arms.values() for z in a}, key=lambda z: (z is None, z or 0))
    rows = [[m, *(f"{100 * values(a[z]).mean():.1f} ({len(a[z])})" if z in a else "" for z in zoos)]
            for m, a in arms.items()]  # fmt: skip
    return ["method", *(f"zoo {z}" for z in zoos)], rows


def versus_sft_table(results: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Each method minus the SFT student it starts from, per test split: points [95% CI], the zoo
    as the unit (one zoo: the runs against the SFT student's one greedy evaluation). Descriptive,
    no test: it shows where RL raises or lowers a split (e.g. OOD)."""
    splits = sorted(results[0]["splits"])
    per = {s: arm_runs(results, [s]) for s in splits}
    if "sft" not in per[splits[0]]:
        return [], []
    rows = [[m, *(_diff(contrast(per[s][m], per[s]["sft"], (m, "sft"))) for s in splits)]
            for m in per[splits[0]] if m != "sft"]  # fmt: skip
    return ["method", *splits], rows


def question_view(results: list[dict], a: str, b: str) -> tuple[list[str], list[list[str]]]:
    """Where two methods differ, per test split: questions that A answers right in more of its
    runs than B, in fewer, and as often. Description only: questions are not a unit of
    replication (a seed that shifts moves every question at once), so no p is attached."""
    rows = []
    for s in sorted(results[0]["splits"]):
        rate = {m: _mean_per_question([r for r in results if r["method"] == m], [s]) for m in (a, b)}
        keys = sorted(set(rate[a]) & set(rate[b]))
        d = np.array([rate[a][k] - rate[b][k] for k in keys])
        rows.append([s, str(len(keys)), str(int((d > 0).sum())), str(int((d < 0).sum())), str(int((d == 0).sum()))])
    return ["split", "questions", f"{a} right more often", f"{b} right more often", "as often"], rows


def _mean_per_question(runs: list[dict], splits: list[str]) -> dict[str, float]:
    """Each question's correctness averaged over runs."""
    acc: dict[str, list[float]] = defaultdict(list)
    for r in runs:
        for k, v in _per_question(r, splits).items():
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


def sample_efficiency(
    curves: dict[str, list[list[dict]]], baseline: str = BASELINE
) -> tuple[list[str], list[list[str]]]:
    """Steps until val accuracy first reaches the baseline's final (mean) val accuracy."""
    if baseline not in curves:
        return [], []
    target = float(np.nanmean(final_val(curves[baseline])))
    rows = []
    for m, runs in curves.items():
        steps = []
        for rows_ in runs:
            hit = [r["step"] for r in rows_ if r.get("val/accuracy", -1) >= target - 1e-9]
            steps.append(hit[0] if hit else None)
        reached = [s for s in steps if s is not None]
        ci = percentile_ci([float(s) for s in reached])
        cell = f"{ci.mean:.0f}" + ("" if math.isnan(ci.low) else f" [{ci.low:.0f}, {ci.high:.0f}]") if reached else "-"
        rows.append([m, f"{len(reached)}/{len(steps)}", cell])
    return ["method", f"seeds reaching {100 * target:.1f}% val", "steps (mean [95% CI])"], rows


def tool_collapse(results: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Share of test episodes with a tool call: SFT start vs final, per method."""
    sft = next((r for r in results if r["method"] == "sft"), None)

    def rate(r: dict) -> float:
        sp = r["splits"]
        return float(np.mean([s["tools/episodes_with_call"] for s in sp.values()]))

    start = rate(sft) if sft else math.nan
    by_m: dict[str, list[float]] = defaultdict(list)
    for r in results:
        if r["method"] != "sft":
            by_m[r["method"]].append(rate(r))
    rows = []
    for m, v in by_m.items():
        c = percentile_ci(v)
        collapsed = not math.isnan(start) and c.mean < 0.5 * start
        seeds = (
            "n/a" if math.isnan(start) else f"{sum(x < 0.5 * start for x in v)}/{len(v)}"
        )  # one seed can hide in a mean
        per_seed = " / ".join(f"{100 * x:.0f}" for x in v)
        never = f"{sum(x == 0 for x in v)}/{len(v)}"
        rows.append([m, f"{100 * start:.1f}", _fmt(c), per_seed, "yes" if collapsed else "no", seeds, never])
    head = [
        "method",
        "SFT start: episodes with a call %",
        "final % [95% CI]",
        "per seed %",
        "collapsed (< half of start)",
    ]
    return [*head, "seeds collapsed", "seeds that never call"], rows


def per_seed_table(results: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Average test accuracy of every run (zoo x seed): a mean and its interval can hide one odd run."""
    by_m: dict[str, dict] = defaultdict(dict)
    for r in results:
        if r["method"] != "sft":
            by_m[r["method"]][(r.get("zoo"), r["seed"])] = average_accuracy(r)
    keys = sorted({k for v in by_m.values() for k in v}, key=lambda k: (k[0] is not None, k[0] or 0, k[1]))
    name = (lambda k: f"seed {k[1]}") if all(k[0] is None for k in keys) else (lambda k: f"z{k[0]}/s{k[1]}")
    rows = [[m, *(f"{100 * v[k]:.1f}" if k in v else "" for k in keys)] for m, v in by_m.items()]
    return ["method", *map(name, keys)], rows


def cost_table(runs: dict[str, dict[str, list[dict]]], results: list[dict]) -> tuple[list[str], list[list[str]]]:
    """What a run of each method costs (means over its finished runs): minutes of training (val
    evaluations included) and of the final test evaluation, seconds per GRPO step and their
    split (rollout, each reward term, update), val evaluation per run, and calls per episode.
    Runs made before 0.2.1 logged no per-term or evaluation times: those cells stay empty."""
    train = defaultdict(list)
    test = defaultdict(list)
    for r in results:
        if r["method"] != "sft" and r.get("train_seconds") is not None:
            train[r["method"]].append(r["train_seconds"] / 60)
            if r.get("test_eval_seconds") is not None:
                test[r["method"]].append(r["test_eval_seconds"] / 60)
    terms = sorted({k for by in runs.values() for rows in by.values() for r in rows for k in r
                    if k.startswith("time/reward/")})  # fmt: skip
    keys = ["time/step_s", "time/rollout_s", "time/reward_s", *terms, "time/update_s"]
    rows = []
    for m, by in runs.items():
        per_key = {k: [_run_mean(rs, k) for rs in by.values()] for k in [*keys, "tools/calls_per_episode"]}
        evals = [sum(r.get("time/eval_s", 0.0) for r in rs) for rs in by.values()]
        cell = lambda v, f="{:.2f}": f.format(np.nanmean(v)) if any(map(math.isfinite, v)) else ""  # noqa: E731
        rows.append([m, str(len(by)), cell(train.get(m, [math.nan]), "{:.1f}"), cell(test.get(m, [math.nan]), "{:.1f}"),
                     *(cell(per_key[k]) for k in keys), cell([e / 60 for e in evals if e] or [math.nan], "{:.1f}"),
                     cell(per_key["tools/calls_per_episode"])])  # fmt: skip
    head = ["method", "runs", "train min / run", "test eval min / run", "s / step", "rollout s", "reward s",
            *(k.removeprefix("time/reward/").removesuffix("_s") + " s" for k in terms), "update s",
            "val eval min / run", "calls / episode"]  # fmt: skip
    return head, rows


FOUND_CALLS, FOUND_USEFUL = 0.5, 0.5


def found_step(rows: list[dict]) -> int | None:
    """The first GRPO step whose rollouts call a tool in at least half of the episodes with at
    least half of the calls useful: the run has found the tools (a call bonus alone can reach
    the first condition, not the second)."""
    for r in rows:
        calls, useful = r.get("tools/episodes_with_call"), r.get("tools/useful_rate")
        if calls is not None and useful is not None and calls >= FOUND_CALLS and useful >= FOUND_USEFUL:
            return int(r["step"])
    return None


def tools_found_table(runs: dict[str, dict[str, list[dict]]]) -> tuple[list[str], list[list[str]]]:
    """Per method: how many runs ever find the tools, and at which step."""
    rows = []
    for m, by_run in runs.items():
        steps = {k: found_step(v) for k, v in by_run.items()}
        hit = sorted(s for s in steps.values() if s is not None)
        when = ", ".join(f"{k}@{s}" for k, s in steps.items() if s is not None) or "-"
        med = f"{float(np.median(hit)):.0f}" if hit else "-"
        rows.append([m, f"{len(hit)}/{len(steps)}", med, when])
    head = ["method", "runs that find the tools", "median step", "runs @ step"]
    return head, rows


EARLY_KEYS = [
    ("tools/episodes_with_call", "call rate"),
    ("tools/useful_rate", "useful calls"),
    ("rollout/accuracy", "right rollouts"),
    ("attr/divergence", "D"),
    ("attr/divergence_useful_calls", "D useful"),
    ("attr/divergence_useless_calls", "D useless"),
]


def early_steps_table(
    runs: dict[str, dict[str, list[dict]]], methods: list[str], first: int = 10
) -> tuple[list[str], list[list[str]]]:
    """For the attribution methods: what the runs that find the tools and those that stay away
    from them did in their first `first` steps (means over steps, then runs)."""
    rows = []
    for m in methods:
        groups: dict[str, list[list[dict]]] = {"find the tools": [], "never": []}
        for rows_ in runs.get(m, {}).values():
            groups["never" if found_step(rows_) is None else "find the tools"].append(
                [r for r in rows_ if 1 <= r["step"] <= first]
            )
        for g, rs in groups.items():
            if not rs:
                continue
            cells = [m, g, str(len(rs))]
            for k, _ in EARLY_KEYS:
                per_run = ([v for r in run if (v := _value(r, k)) is not None and math.isfinite(v)] for run in rs)
                v = [float(np.mean(x)) for x in per_run if x]
                cells.append(f"{np.mean(v):.2f}" if v else "n/a")
            rows.append(cells)
    return ["method", "runs that", "n", *(h for _, h in EARLY_KEYS)], rows


DIAG_KEYS = [
    ("attr/rank_corr_correct", "rho(term, correct)"),
    ("attr/rank_corr_call", "rho(term, call)"),
    ("attr/rank_corr_useful_call", "rho(term, useful call)"),
    ("attr/divergence_with_calls", "D with call"),
    ("attr/divergence_no_calls", "D no call"),
    ("attr/divergence_useful_calls", "D useful call"),
    ("attr/divergence_useless_calls", "D useless calls"),
    ("attr/divergence_correct", "D right"),
    ("attr/divergence_incorrect", "D wrong"),
    ("attr/region_divergence_useful_calls", "D regions, useful call"),
    ("attr/region_divergence_useless_calls", "D regions, useless calls"),
]


def _run_mean(rows: list[dict], key: str) -> float:
    v = [r[key] for r in rows if key in r and r[key] is not None and math.isfinite(r[key])]
    return float(np.mean(v)) if v else math.nan


def diagnostics_table(curves: dict[str, list[list[dict]]]) -> tuple[list[str], list[list[str]]]:
    """What the attribution term rewards, over all training steps (mean over steps, then seeds):
    within-group rank correlations of the term (higher = better) with correctness, with making
    a call and with a useful call; the divergence by kind of episode; and D at the first and
    last step (does the student align with its target?)."""
    rows = []
    for m, runs in curves.items():
        if not any("attr/divergence" in r for rows_ in runs for r in rows_):
            continue
        cells = [m]
        for k, _ in DIAG_KEYS:
            v = [_run_mean(rows_, k) for rows_ in runs]
            v = [x for x in v if math.isfinite(x)]
            cells.append(
                f"{np.mean(v):+.2f}" if k.startswith("attr/rank") and v else (f"{np.mean(v):.2f}" if v else "n/a")
            )
        first = [next((r["attr/divergence"] for r in rows_ if "attr/divergence" in r), math.nan) for rows_ in runs]
        last = [
            next((r["attr/divergence"] for r in reversed(rows_) if "attr/divergence" in r), math.nan) for rows_ in runs
        ]
        cells += [f"{np.nanmean(first):.2f}", f"{np.nanmean(last):.2f}"]
        rows.append(cells)
    return ["method", *(h for _, h in DIAG_KEYS), "D first step", "D last step"], rows


TARGETS = {
    "teacher_own": "The teacher's own attribution (cached per question)",
    "teacher_forced": "The teacher forced through the student's rollout",
    "random": "Is it the attribution term, or any target? (random Dirichlet target)",
    "evidence": "Can a fixed target help? (the evidence target, no teacher)",
}


def _level(a) -> str:
    """Where a term aligns: `component level`, `region level` or both."""
    return " + ".join(n for n, w in (("component", a.components), ("region", a.regions)) if w) + " level"


def ablation_question(name: str, methods: dict, proposed: str = "iapo") -> str:
    """What an attribution variant asks, from how its config differs from the proposed method's."""
    if name == proposed:
        return "the method"
    from iapo.attribution import describe
    from iapo.rewards.alignment import AttributionRewardConfig
    from iapo.rewards.method import MethodConfig

    # the runs' resolved configs (method_configs); a record older than 0.2 gets this version's defaults
    m, ref = MethodConfig.model_validate(methods.get(name, {})), MethodConfig.model_validate(methods.get(proposed, {}))
    ma, ra = m.attribution or AttributionRewardConfig(), ref.attribution or AttributionRewardConfig()
    level = "" if _level(ma) == _level(ra) else f"{_level(ma).capitalize()}: "
    if ma.target != ra.target or level:
        return level + TARGETS.get(ma.target, ma.target)
    if describe(ma) != describe(ra):
        return f"Another attribution estimator: {describe(ma)}"
    if ma.center != ra.center:
        return f"Does centring the term help? (center: {ma.center})"
    if m.teacher != ref.teacher:
        return f"Another teacher: {m.teacher}"
    return "lambda / divergence sweep"


def ablation_table(
    arms: dict[str, CI], contrasts: list[Contrast], methods: dict | None = None, baseline: str = BASELINE,
    proposed: str = "iapo",
) -> tuple[list[str], list[list[str]]]:  # fmt: skip
    """Every method with an attribution term: what it asks (from its config), its accuracy, and
    its comparisons with the baseline and the proposed method (the same contrasts as elsewhere)."""
    rows = []
    methods = methods or {}
    for m, ci in arms.items():
        if not (methods.get(m, {}).get("attribution") or (not methods and m.startswith("iapo"))):
            continue
        vs_p = "" if m == proposed else _diff(find(contrasts, m, proposed))
        rows.append([m, ablation_question(m, methods, proposed), _fmt(ci), _diff(find(contrasts, m, baseline)), vs_p])
    return ["run", "question", "average acc % [95% CI]", f"vs {baseline}", f"vs {proposed}"], rows


def headline_table(
    arms: dict[str, CI], contrasts: list[Contrast], runs: dict[str, dict[str, list[dict]]], baseline: str,
    incentive: str | None,
) -> tuple[list[str], list[list[str]]]:  # fmt: skip
    """One row per method: accuracy, its difference to the baseline and to the best incentive
    (points [95% CI], p: Holm-adjusted unless the contrast is the primary one), and how many runs
    find the tools."""

    def cell(c: Contrast | None) -> str:
        if c is None or math.isnan(c.diff):
            return ""
        return f"{_diff(c)} (p {_p(c.p_used)}{'' if c.primary else ' adj.'})"

    rows = []
    for m, ci in arms.items():
        found = [found_step(v) for v in runs.get(m, {}).values()]
        rows.append([m, _fmt(ci), cell(find(contrasts, m, baseline)), cell(find(contrasts, m, incentive or "")),
                     f"{sum(f is not None for f in found)}/{len(found)}" if found else ""])  # fmt: skip
    head = ["method", "average test accuracy % [95% CI]", f"vs {baseline}", f"vs {incentive or 'best incentive'}",
            "runs that find the tools"]  # fmt: skip
    return head, rows


# --- figures ------------------------------------------------------------------------------------


LEGACY_KEYS = {"rollout/accuracy": "accuracy"}  # metric names of runs made before 0.2


def _value(row: dict, key: str) -> float | None:
    """A metric of a log row, under its name or the name it had before 0.2."""
    v = row.get(key)
    return row.get(LEGACY_KEYS[key]) if v is None and key in LEGACY_KEYS else v


def _curve(runs: list[list[dict]], key: str) -> tuple[np.ndarray, np.ndarray] | None:
    pts = defaultdict(list)
    for rows in runs:
        for r in rows:
            v = _value(r, key)
            if v is not None and math.isfinite(v):
                pts[r["step"]].append(v)
    if not pts:
        return None
    steps = np.array(sorted(pts))
    return steps, np.array([np.mean(pts[s]) for s in steps])


def fig_training(curves: dict[str, list[list[dict]]], path: Path) -> None:
    """Fig. 4 analog: tool calls, useful-call rate, accuracy over training (mean over seeds)."""
    keys = [
        ("tools/calls_per_episode", "tool calls / episode"),
        ("tools/useful_rate", "useful-call rate"),
        ("rollout/accuracy", "train accuracy (rollouts)"),
        ("val/accuracy", "val accuracy (greedy)"),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    for ax, (k, title) in zip(axes, keys, strict=True):
        for m, runs in curves.items():
            c = _curve(runs, k)
            if c is not None:
                ax.plot(*c, label=m, marker="." if k.startswith("val") else None)
        ax.set_title(title)
        ax.set_xlabel("GRPO step")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig_val_curves(runs: dict[str, dict[str, list[dict]]], path: Path) -> None:
    """Val accuracy against GRPO step, one line per run (a colour per zoo), a panel per method:
    a mean curve hides when single runs find the tools."""
    ms = [m for m, by in runs.items() if any("val/accuracy" in r for rows in by.values() for r in rows)]
    n = max(1, len(ms))
    cols = min(4, n)
    fig, axes = plt.subplots((n + cols - 1) // cols, cols, figsize=(4 * cols, 2.8 * ((n + cols - 1) // cols)),
                             sharey=True, squeeze=False)  # fmt: skip
    for ax, m in zip(axes.flat, ms, strict=False):
        for label, rows in runs[m].items():
            pts = [(r["step"], r["val/accuracy"]) for r in rows if "val/accuracy" in r]
            zoo = label.split("/")[0] if "/" in label else ""
            color = f"C{int(zoo[1:]) % 10}" if zoo else "C0"
            ax.plot(*zip(*pts, strict=True), color=color, alpha=0.6, lw=1)
        ax.set_title(m, fontsize=9)
        ax.set_xlabel("GRPO step")
    for ax in list(axes.flat)[len(ms) :]:
        ax.axis("off")
    axes[0][0].set_ylabel("val accuracy (greedy)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig_misuse(results: list[dict], path: Path) -> None:
    """Fig. 3 analog (a): share of each call class over all test calls, per method."""
    classes = [c.value for c in CallClass if c != CallClass.VALID]
    by_m: dict[str, list[list[float]]] = defaultdict(list)
    for r in results:
        sp = r["splits"].values()
        by_m[r["method"]].append([float(np.mean([s[f"tools/class/{c}"] for s in sp])) for c in classes])
    fig, ax = plt.subplots(figsize=(9, 3.4))
    w = 0.8 / max(1, len(by_m))
    for i, (m, v) in enumerate(by_m.items()):
        ax.bar(np.arange(len(classes)) + i * w, np.mean(v, 0), w, label=m)
    ax.set_xticks(np.arange(len(classes)) + 0.4 - w / 2, [c.replace("_", "\n") for c in classes], fontsize=8)
    ax.set_ylabel("share of calls")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig_attribution(results: list[dict], path: Path) -> None:
    """Fig. 3 analog (b): mean component share of the final turn, correct vs incorrect."""
    by_m: dict[str, dict[str, list[list[float]]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        for k, d in (r.get("attribution") or {}).items():
            if d.get("n"):
                by_m[r["method"]][k].append([d[c] for c in COMPONENTS])
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.4), sharey=True)
    for ax, k in zip(axes, ("correct", "incorrect"), strict=True):
        ms = [m for m in by_m if by_m[m][k]]
        w = 0.8 / max(1, len(ms))
        for i, m in enumerate(ms):
            ax.bar(np.arange(len(COMPONENTS)) + i * w, np.mean(by_m[m][k], 0), w, label=m)
        ax.set_xticks(np.arange(len(COMPONENTS)) + 0.4 - w / 2, COMPONENTS, fontsize=8)
        ax.set_title(f"{k} episodes")
    axes[0].set_ylabel("attribution share p_c")
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig_alignment(curves: dict[str, list[list[dict]]], path: Path) -> None:
    """Student vs target component shares at the first and the last GRPO step, per IAPO method
    (mean over seeds): does the student move toward its target, and on which components?"""
    ms = [m for m, runs in curves.items() if any("attr/student_share/system" in r for rows in runs for r in rows)]
    fig, axes = plt.subplots(1, max(1, len(ms)), figsize=(4 * max(1, len(ms)), 3.2), sharey=True, squeeze=False)
    x = np.arange(len(COMPONENTS))
    for ax, m in zip(axes[0], ms, strict=False):
        for which, pick, style in (("start", 0, "--"), ("end", -1, "-")):
            for who, color in (("student", "C0"), ("target", "C3")):
                vals = []
                for rows in curves[m]:
                    rs = [r for r in rows if f"attr/{who}_share/system" in r]
                    if rs:
                        vals.append([rs[pick].get(f"attr/{who}_share/{c}", 0.0) for c in COMPONENTS])
                if vals:
                    ax.plot(x, np.mean(vals, 0), style, color=color, marker="o", label=f"{who}, {which}")
        ax.set_xticks(x, COMPONENTS, fontsize=7, rotation=30)
        ax.set_title(m, fontsize=9)
    axes[0][0].set_ylabel("share of the final turn's attribution")
    if ms:
        axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- rendering ----------------------------------------------------------------------------------


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "_no rows_\n"
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;"
    "text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}pre{background:#f6f6f6;"
    "padding:1em;overflow-x:auto;font-size:12px}"
)


def primary_of(roles: dict) -> tuple[str, str]:
    """The pre-registered primary contrast of an experiment (`report.primary`, else proposed vs
    baseline)."""
    p = roles.get("primary")
    return (p[0], p[1]) if p else (roles.get("proposed", "iapo"), roles.get("baseline", BASELINE))


def write_runs_csv(results: list[dict], path: Path) -> None:
    """One row per run: method, zoo, seed, average and per-split test accuracy, training minutes:
    what `iapo plan` and any re-analysis read (no question-level data needed)."""
    splits = sorted(results[0]["splits"])
    lines = [",".join(["method", "zoo", "seed", "accuracy", *splits, "train_minutes"])]
    for r in sorted(results, key=lambda r: (r["method"], r.get("zoo") or 0, r["seed"] or 0)):
        minutes = r.get("train_seconds", math.nan) / 60 if r.get("train_seconds") is not None else math.nan
        vals = [average_accuracy(r), *(r["splits"][s]["accuracy"]["mean"] for s in splits)]
        zoo, seed = ("" if r.get(k) is None else str(r[k]) for k in ("zoo", "seed"))
        lines.append(",".join([r["method"], zoo, seed, *(f"{v:.6f}" for v in vals), f"{minutes:.2f}"]))
    write_text(path, "\n".join(lines) + "\n")


def read_runs_csv(path: Path) -> tuple[dict[str, dict], dict[str, float]]:
    """(method -> zoo -> per-run accuracies, method -> mean training minutes) from a runs.csv
    (`write_runs_csv`; a run directory means its runs.csv). A bad row is named, not skipped."""
    path = path / "runs.csv" if path.is_dir() else path
    if not path.exists():
        raise DataError(f"{path}: no runs.csv (write one with `iapo report RUN_DIR`)")
    arms: dict[str, dict] = defaultdict(dict)
    minutes: dict[str, list[float]] = defaultdict(list)
    with path.open() as f:
        for i, row in enumerate(csv.DictReader(f), start=2):
            try:
                zoo, seed = (int(row[k]) if row[k] not in ("", None) else None for k in ("zoo", "seed"))
                arms[row["method"]].setdefault(zoo, {})[seed] = float(row["accuracy"])
                if row.get("train_minutes") not in ("", None, "nan"):
                    minutes[row["method"]].append(float(row["train_minutes"]))
            except (KeyError, TypeError, ValueError) as e:
                raise DataError(f"{path}, line {i}: {e!r} (columns: method, zoo, seed, accuracy, ...)") from None
    return dict(arms), {m: float(np.mean(v)) for m, v in minutes.items() if v}


def require_arms(arms: dict[str, dict], names: list[str] | tuple[str, ...]) -> None:
    """One error naming every requested method the runs do not hold."""
    missing = [m for m in dict.fromkeys(names) if m not in arms]
    if missing:
        raise DataError(f"not in the runs: {', '.join(missing)} (have: {', '.join(arms)})")


def compare_markdown(arms: dict[str, dict], primary: tuple[str, str], references: list[str]) -> str:
    """The arms' accuracies and their comparisons as Markdown: `primary` confirmatory, every arm
    against each of `references` exploratory (Holm), as a report computes them."""
    require_arms(arms, (*primary, *references))
    contrasts = comparisons(arms, references or [primary[1]], primary[0], primary)
    n_zoos = len({z for a in arms.values() for z in a})
    rows = [[m, str(sum(map(len, a.values()))), _fmt(arm_ci(a))] for m, a in arms.items()]
    out = [f"**{_verdict(next((c for c in contrasts if c.primary), None), primary)}**", "", _design_caveat(n_zoos), "",
           _md_table(["method", "runs", "accuracy % [95% CI]"], rows), _md_table(*contrasts_table(contrasts))]  # fmt: skip
    return "\n".join(out)


def plan_markdown(
    arms: dict[str, dict], minutes: dict[str, float], a: str, b: str, effects: list[float], zoos: list[int],
    seeds: list[int], n_arms: int, workers: int, minutes_per_run: float | None = None,
) -> str:  # fmt: skip
    """How many zoos x seeds detect each effect (points) with 80% power, from the variance
    components of a pilot's A and B runs, and the wall time of a grid of `n_arms` arms at the
    pilot's measured minutes per run (mean over all its methods; `minutes_per_run` when the
    pilot recorded none) with `workers` runs at once."""
    require_arms(arms, (a, b))
    comp = variance_components(arms[a], arms[b])
    per_run = minutes_per_run or (float(np.mean(list(minutes.values()))) if minutes else math.nan)
    rows = []
    for r in plan_grid(comp, [e / 100 for e in effects], zoos, seeds):
        hours = r["runs_per_arm"] * n_arms * per_run / workers / 60
        rows.append([str(r["zoos"]), str(r["seeds"]), str(r["runs_per_arm"]),
                     *(f"{100 * r[f'power@{e / 100:g}']:.0f}" for e in effects), f"{hours:.1f}"])  # fmt: skip
    head = ["zoos", "seeds per zoo", "runs per arm", *(f"power @ {e:g} pts %" for e in effects),
            f"hours ({n_arms} arms, {workers} workers)"]  # fmt: skip
    sd = f"run sd {100 * math.sqrt(comp.run):.1f} points, zoo x method sd {100 * math.sqrt(comp.interaction):.1f}"
    note = (f"Pilot {a} vs {b}: {comp.n_runs} runs on {comp.n_zoos} zoo(s); {sd} (method of moments"
            f"{'; one zoo: the zoo x method part cannot be estimated and is taken as 0' if comp.n_zoos < 2 else ''}); "
            + (f"{per_run:.1f} min per run. " if math.isfinite(per_run) else "no run time recorded (--minutes-per-run). ")
            + "Zoo builds not included.")  # fmt: skip
    return note + "\n\n" + _md_table(head, rows)


def write_report(run_dir: Path) -> Path:
    """Write report.html, report.md, runs.csv and fig_*.png into `run_dir`; returns the HTML path."""
    results = load_results(run_dir)
    runs = load_run_curves(run_dir)
    curves = {m: list(by.values()) for m, by in runs.items()}
    meta = json.loads((run_dir / "experiment.json").read_text()) if (run_dir / "experiment.json").exists() else {}
    roles = meta.get("config", {}).get("report") or {}
    baseline, proposed = roles.get("baseline", BASELINE), roles.get("proposed", "iapo")
    primary = primary_of(roles)
    configs = method_configs(run_dir, meta)
    incentive = best_on_val(curves, incentives(configs))
    references = [baseline, *([incentive] if incentive else [])]
    contrasts = comparisons(arm_runs(results), references, proposed, primary, attribution_variants(configs))
    acc_h, acc_r, arms = accuracy_table(results)
    write_runs_csv(results, run_dir / "runs.csv")
    eff_h, eff_r = sample_efficiency(curves, baseline)
    col_h, col_r = tool_collapse(results)
    seed_h, seed_r = per_seed_table(results)
    diag_h, diag_r = diagnostics_table(curves)
    abl_h, abl_r = ablation_table(arms, contrasts, configs, baseline, proposed)
    found_h, found_r = tools_found_table(runs)
    cost_h, cost_r = cost_table(runs, results)
    attr_methods = [m for m in runs if (configs.get(m) or {}).get("attribution")]
    early_h, early_r = early_steps_table(runs, attr_methods)
    zoos = sorted({r["zoo"] for r in results if r.get("zoo") is not None})
    figs = {
        "fig_val_runs.png": ("Val accuracy of every run (a line per run, a colour per zoo)", fig_val_curves, runs),
        "fig_training.png": ("Tool use and accuracy during training (paper's Fig. 4 analog)", fig_training, curves),
        "fig_misuse.png": ("Tool-call classes on the test splits (paper's Fig. 3 analog, misuse)", fig_misuse, results),
        "fig_attribution.png": (
            "Attribution share per input component, final turn (paper's Fig. 3 analog)",
            fig_attribution,
            results,
        ),
        "fig_alignment.png": (
            "Student vs target attribution shares at the first and last GRPO step (IAPO methods)",
            fig_alignment,
            curves,
        ),
    }
    for name, (_, fn, data) in figs.items():
        fn(data, run_dir / name)
    gallery = write_gallery(run_dir, sorted({r["method"] for r in results} - {"sft"}))
    seeds = sorted({r["seed"] for r in results if r["seed"] is not None})
    main = next((c for c in contrasts if c.primary), None)
    verdict = _verdict(main, primary)
    over = "zoos" if len(zoos) > 1 else "runs of one zoo"
    head_h, head_r = headline_table(arms, contrasts, runs, baseline, incentive)
    con_h, con_r = contrasts_table(contrasts)
    zoo_h, zoo_r = per_zoo_table(results) if len(zoos) > 1 else ([], [])
    sft_h, sft_r = versus_sft_table(results)
    q_h, q_r = question_view(results, *primary) if main else ([], [])
    sections = [
        (f"Headline: accuracy and differences with the {over} as the unit", head_h, head_r),
        ("Every comparison (diff = A - B on the same runs; p Holm: exploratory family)", con_h, con_r),
        (f"Accuracy on the test splits (%, mean [95% CI], the {over} as the unit)", acc_h, acc_r),
        ("Mean accuracy per zoo (%, runs in brackets)", zoo_h, zoo_r),
        ("Against the SFT student, per test split (points [95% CI]; descriptive)", sft_h, sft_r),
        (f"Where {primary[0]} and {primary[1]} differ, question by question (description, no test)", q_h, q_r),
        ("Average test accuracy per run (%)", seed_h, seed_r),
        ("Sample efficiency", eff_h, eff_r),
        ("Finding the tools (training rollouts: >= half the episodes call, >= half the calls useful)", found_h,
         found_r),
        ("Does tool use collapse?", col_h, col_r),
        ("What the attribution term rewards (training, mean over steps and runs)", diag_h, diag_r),
        ("First 10 steps of the attribution runs that find the tools and of those that never do", early_h, early_r),
        ("Ablations: the three open questions", abl_h, abl_r),
        ("What a run costs (means over finished runs; per-step times are training steps)", cost_h, cost_r),
    ]  # fmt: skip
    where = f"zoos {zoos}, seeds {seeds}" if zoos else f"seeds {seeds}"
    caveat = _design_caveat(len(zoos))
    md = [f"# IAPO experiment report\n\nRun: `{run_dir}`; {where}; {len(results)} runs.\n\n**{verdict}**\n\n"
          f"{caveat}\n"]  # fmt: skip
    body = [f"<h1>IAPO experiment report</h1><p>Run: <code>{html.escape(str(run_dir))}</code>; {where}; "
            f"{len(results)} runs.</p><p><b>{html.escape(verdict)}</b></p><p>{html.escape(caveat)}</p>"]  # fmt: skip
    for title, h, r in sections:
        if len(r) < (2 if title.startswith("Ablations") else 1):
            continue  # nothing to compare
        md.append(f"## {title}\n\n{_md_table(h, r)}")
        body.append(f"<h2>{html.escape(title)}</h2>{_html_table(h, r)}")
    for name, (title, _, _) in figs.items():
        md.append(f"## {title}\n\n![{title}]({name})\n")
        body.append(f"<h2>{html.escape(title)}</h2><img src='{name}' alt='{html.escape(title)}'>")
    if gallery:
        title = "Episode gallery: the SFT student and seed 0 of each method on the same test questions"
        note = ("Questions where the policies disagree most. Each row: the episode's images with the attribution "
                "heat map of its final turn (red: raises the answer's log-probability), its turns and answer, "
                "and its component shares.")  # fmt: skip
        md.append(f"## {title}\n\n{note}\n\n" + "\n".join(f"![{p.stem}]({p.name})" for p in gallery) + "\n")
        body.append(f"<h2>{html.escape(title)}</h2><p>{html.escape(note)}</p>"
                    + "".join(f"<img src='{p.name}' alt='{p.stem}'>" for p in gallery))  # fmt: skip
    md.append(f"## Notes\n\n{NOTES}\n")
    body.append(f"<h2>Notes</h2><p>{html.escape(NOTES)}</p>")
    if meta:
        dump = json.dumps(meta, indent=1)
        md.append(f"## Config, versions, wall time\n\n```json\n{dump}\n```\n")
        body.append(f"<h2>Config, versions, wall time</h2><pre>{html.escape(dump)}</pre>")
    write_text(run_dir / "report.md", "\n".join(md))
    out = run_dir / "report.html"
    write_text(out, f"<!doctype html><html><head><meta charset='utf-8'><title>IAPO report</title>"
                    f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>")  # fmt: skip
    return out


NOTES = (
    "Every interval and test takes each run's test accuracy (the mean over test splits, each weighted "
    "equally) as its data: questions enter only through it. With several zoos the zoo is the unit: a "
    "method's accuracy is the mean of its zoo means with a t-interval over zoos, and a difference A - B is "
    "the mean over the zoos both ran on of (A's zoo mean - B's zoo mean), all runs of each, with a t-test "
    "over zoos (df = zoos - 1; calibrated in tests/test_stats.py) and an exact sign-flip p beside it. With "
    "one zoo the run is the unit (a paired t over seeds when both methods ran the same seeds, else Welch) "
    "and a result holds for that zoo only. The SFT student "
    "is evaluated once per zoo (greedy); on one zoo its intervals are Wilson intervals over questions. The "
    "primary contrast was named in the experiment config before the grid ran and alone decides the verdict; "
    "every other comparison is exploratory, Holm-adjusted over the report's family. MDE: the smallest true "
    "difference this design detects with 80% power at alpha 0.05, from its own standard error. A difference "
    "that is not significant is a bound ('no difference larger than X points excluded'), not a tie. Test "
    "splits were evaluated once, after training; val was used for curves and for every choice."
)


def _design_caveat(n_zoos: int) -> str:
    """What the number of zoos can support, said once above the tables."""
    if n_zoos <= 1:
        return ("One zoo: the run is the unit, so every result here holds for this zoo (this SFT student and "
                "teacher) only; another machine trains another zoo.")  # fmt: skip
    floor = 2 / 2**n_zoos
    return (f"{n_zoos} zoos: a zoo-level test has {n_zoos - 1} degree(s) of freedom, and an exact sign-flip test "
            f"cannot go below p = {floor:.3g}."
            + (" Two zoos detect only very large differences; treat every result as a pilot." if n_zoos == 2 else ""))  # fmt: skip


def _verdict(c: Contrast | None, primary: tuple[str, str]) -> str:
    """The primary contrast in words: a win or a loss only when its test over units rejects; else
    the bound the interval puts on the difference."""
    a, b = primary
    if c is None or math.isnan(c.diff):
        return f"Primary contrast {a} vs {b}: not both in this run."
    unit = f"{c.n_units} {c.unit}s as the unit"
    if math.isnan(c.low):
        return f"Primary contrast {a} vs {b}: {100 * c.diff:+.1f} points, too few {c.unit}s for an interval."
    stat = f"{_diff(c)} points, p = {_p(c.p)}, {unit}; MDE {_pts(c.mde)} points"
    if c.significant:
        return f"{a} {'beats' if c.diff > 0 else 'is below'} {b} (primary contrast): {stat}."
    return f"{a} vs {b} (primary contrast): no difference larger than {100 * c.bound:.1f} points excluded ({stat})."
