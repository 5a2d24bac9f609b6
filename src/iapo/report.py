"""`iapo report RUN_DIR`: the experiment's tables and figures as HTML + Markdown + PNGs.

Reads only what `iapo.experiment` wrote (results, metric logs, the records of each run and of
the experiment with their resolved configs), so a report can be regenerated at any time. Every
number carries its n; intervals are 95%: for methods a bootstrap over seeds and test questions
(`iapo.stats.bootstrap_ci`: it stays in [0, 100] by construction), Wilson intervals for the
single SFT evaluation, percentile bootstraps over seeds for steps and call rates; per-seed values
are shown beside them.
"""

from __future__ import annotations

import html
import json
import math
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from iapo.rollout.episode import COMPONENTS
from iapo.stats import CI, bootstrap_ci, bootstrap_p, paired_test, percentile_ci, wilson
from iapo.tools.session import CallClass
from iapo.viz import write_gallery

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
    return [{**json.loads(p.read_text()), "zoo": zoo} for _, zoo, p in found]


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


def _per_question(r: dict, splits: list[str]) -> dict[str, float]:
    return {f"{s}:{e['id']}": float(e["correct"]) for s in splits for e in r["episodes"][s]}


def _mean_per_question(runs: list[dict], splits: list[str]) -> dict[str, float]:
    """Each question's correctness averaged over runs."""
    acc: dict[str, list[float]] = defaultdict(list)
    for r in runs:
        for k, v in _per_question(r, splits).items():
            acc[k].append(v)
    return {k: float(np.mean(v)) for k, v in acc.items()}


def _question_matrix(runs: list[dict], split: str) -> np.ndarray:
    """(runs, questions) correctness on one split, questions in one order for every run."""
    ids = sorted({e["id"] for e in runs[0]["episodes"][split]})
    per = [{e["id"]: float(e["correct"]) for e in r["episodes"][split]} for r in runs]
    return np.array([[p.get(i, np.nan) for i in ids] for p in per])


def paired_stats(runs: list[dict], partners: list[dict], splits: list[str]) -> dict | None:
    """`runs` against the `partners` run of the same zoo and seed: the mean difference of per-run
    average accuracy; p over runs (paired t; `p_seeds` is the verdict's run-level p: the zoo-aware
    bootstrap when the pairs span several zoos), over questions (each question's correctness
    averaged over the paired runs) and by the bootstrap over zoos, runs and questions."""
    base = {(r.get("zoo"), r["seed"]): r for r in partners}
    paired = [r for r in runs if (r.get("zoo"), r["seed"]) in base]
    if not paired:
        return None
    partner = [base[(r.get("zoo"), r["seed"])] for r in paired]
    pt = paired_test(
        [float(np.mean([r["splits"][s]["accuracy"]["mean"] for s in splits])) for r in paired],
        [float(np.mean([b["splits"][s]["accuracy"]["mean"] for s in splits])) for b in partner],
    )
    qa, qb = _mean_per_question(paired, splits), _mean_per_question(partner, splits)
    keys = sorted(set(qa) & set(qb))
    pq = paired_test([qa[k] for k in keys], [qb[k] for k in keys])
    zoos = [r.get("zoo") for r in paired]
    diffs = [_question_matrix(paired, s) - _question_matrix(partner, s) for s in splits]
    pb = bootstrap_p(diffs, zoos if len(set(zoos)) > 1 else None)
    p_runs = pb if len(set(zoos)) > 1 else pt.p_t
    return {"diff": pt.diff.mean, "n": len(paired), "p_t": pt.p_t, "p_seeds": p_runs, "p_questions": pq.p_t,
            "p_bootstrap": pb}  # fmt: skip


def accuracy_table(results: list[dict], baseline: str = BASELINE) -> tuple[list[str], list[list[str]], dict]:
    """Rows: method; columns: each test split, the average, paired tests vs the baseline method."""
    splits = sorted(results[0]["splits"])
    by_m: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_m[r["method"]].append(r)
    header = [
        "method", "runs", *splits, "average", "p vs sft (questions, t)",
        f"diff vs {baseline}", "p (runs, t)", "p (questions, t)", "p (bootstrap)",
    ]  # fmt: skip
    rows, stats = [], {}
    sft_q = _mean_per_question(by_m["sft"], splits) if "sft" in by_m else {}
    for m, rs in by_m.items():
        cells = [m, str(len(rs))]
        zoos = [r.get("zoo") for r in rs]
        clusters = zoos if len(set(zoos)) > 1 else None  # several zoos: resample zoos, then runs in them
        if len(rs) == 1:  # one run (the SFT student): Wilson intervals over its questions
            for s in splits:
                acc = rs[0]["splits"][s]["accuracy"]
                cells.append(_fmt(CI(acc["mean"], acc["ci_low"], acc["ci_high"], acc["n"])))
            q = _per_question(rs[0], splits)
            a = wilson(sum(q.values()), len(q))
            cells.append(_fmt(a) + " (questions)")
        else:
            strata = {s: _question_matrix(rs, s) for s in splits}
            for s in splits:
                cells.append(_fmt(bootstrap_ci([strata[s]], clusters)))
            a = bootstrap_ci(list(strata.values()), clusters)
            cells.append(_fmt(a))
        stats[m] = {"average": a}
        if m != "sft" and sft_q:
            qm = defaultdict(list)
            for r in rs:
                for k, v in _per_question(r, splits).items():
                    qm[k].append(v)
            keys = sorted(set(qm) & set(sft_q))
            p_sft = paired_test([float(np.mean(qm[k])) for k in keys], [sft_q[k] for k in keys]).p_t
            cells.append(_p(p_sft))
            stats[m]["p_vs_sft"] = p_sft
        else:
            cells.append("")
        pair = paired_stats(rs, by_m.get(baseline, []), splits) if m != baseline else None
        if pair:
            cells += [f"{100 * pair['diff']:+.1f}", _p(pair["p_t"]), _p(pair["p_questions"]), _p(pair["p_bootstrap"])]
            stats[m].update(pair)
        else:
            cells += ["", "", "", ""]
        rows.append(cells)
    return header, rows, stats


def incentives(configs: dict[str, dict]) -> list[str]:
    """The tool-use incentives among the methods: they pay for calls (a tool bonus, curiosity)
    and have no attribution term."""
    return [m for m, c in configs.items() if not c.get("attribution") and (c.get("tool_bonus") or c.get("curiosity"))]


def best_on_val(curves: dict[str, list[list[dict]]], names: list[str]) -> str | None:
    """The method of `names` with the highest mean final val accuracy: chosen on val, never test."""
    scored = {m: float(np.nanmean(final_val(curves[m]))) for m in names if curves.get(m)}
    scored = {m: v for m, v in scored.items() if math.isfinite(v)}
    return max(scored, key=scored.__getitem__) if scored else None


def versus_table(results: list[dict], reference: str) -> tuple[list[str], list[list[str]], dict]:
    """Every method against `reference` (e.g. the best tool-use incentive), paired by zoo and seed."""
    splits = sorted(results[0]["splits"])
    by_m: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_m[r["method"]].append(r)
    rows, stats = [], {}
    for m, rs in by_m.items():
        if m in ("sft", reference) or not (pair := paired_stats(rs, by_m.get(reference, []), splits)):
            continue
        stats[m] = pair
        rows.append([m, str(pair["n"]), f"{100 * pair['diff']:+.1f}", _p(pair["p_seeds"]), _p(pair["p_questions"])])
    head = ["method", "pairs", f"diff vs {reference}", "p (runs; zoo-aware)", "p (questions, t)"]
    return head, rows, stats


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
            by_m[r["method"]][(r.get("zoo"), r["seed"])] = float(
                np.mean([s["accuracy"]["mean"] for s in r["splits"].values()])
            )
    keys = sorted({k for v in by_m.values() for k in v}, key=lambda k: (k[0] is not None, k[0] or 0, k[1]))
    name = (lambda k: f"seed {k[1]}") if all(k[0] is None for k in keys) else (lambda k: f"z{k[0]}/s{k[1]}")
    rows = [[m, *(f"{100 * v[k]:.1f}" if k in v else "" for k in keys)] for m, v in by_m.items()]
    return ["method", *map(name, keys)], rows


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
    stats: dict, methods: dict | None = None, baseline: str = BASELINE, proposed: str = "iapo"
) -> tuple[list[str], list[list[str]]]:
    """Every method with an attribution term. `methods`: the experiment's method configs
    (experiment.json), to say what each variant asks."""
    rows = []
    methods = methods or {}
    ref = stats.get(proposed, {}).get("average")
    for m, s in stats.items():
        if not (methods.get(m, {}).get("attribution") or (not methods and m.startswith("iapo"))):
            continue
        q = ablation_question(m, methods, proposed)
        d_iapo = "" if ref is None or m == proposed else f"{100 * (s['average'].mean - ref.mean):+.1f}"
        rows.append(
            [
                m,
                q,
                _fmt(s["average"]),
                f"{100 * s.get('diff', math.nan):+.1f}",
                _p(s.get("p_questions", math.nan)),
                d_iapo,
            ]
        )
    return ["run", "question", "average acc % [95% CI]", f"vs {baseline}", "p (questions)", f"vs {proposed}"], rows


def headline_table(
    stats: dict, vs: dict, runs: dict[str, dict[str, list[dict]]], baseline: str, incentive: str | None
) -> tuple[list[str], list[list[str]]]:
    """One row per method: accuracy, the paired difference to the baseline and to the best
    incentive (p over runs, zoo-aware, / over questions), and how many runs find the tools."""

    def diff(s: dict | None) -> str:
        if not s or "diff" not in s:
            return ""
        return f"{100 * s['diff']:+.1f} ({_p(s['p_seeds'])} / {_p(s['p_questions'])})"

    rows = []
    for m, s in stats.items():
        found = [found_step(v) for v in runs.get(m, {}).values()]
        rows.append([m, _fmt(s["average"]), diff(s), diff(vs.get(m)),
                     f"{sum(f is not None for f in found)}/{len(found)}" if found else ""])  # fmt: skip
    head = ["method", "average test accuracy % [95% CI]", f"vs {baseline} (p runs / questions)",
            f"vs {incentive or 'best incentive'} (p runs / questions)", "runs that find the tools"]  # fmt: skip
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


def write_report(run_dir: Path) -> Path:
    """Write report.html, report.md and fig_*.png into `run_dir`; returns the HTML path."""
    results = load_results(run_dir)
    runs = load_run_curves(run_dir)
    curves = {m: list(by.values()) for m, by in runs.items()}
    meta = json.loads((run_dir / "experiment.json").read_text()) if (run_dir / "experiment.json").exists() else {}
    roles = meta.get("config", {}).get("report") or {}
    baseline, proposed = roles.get("baseline", BASELINE), roles.get("proposed", "iapo")
    acc_h, acc_r, stats = accuracy_table(results, baseline)
    eff_h, eff_r = sample_efficiency(curves, baseline)
    col_h, col_r = tool_collapse(results)
    seed_h, seed_r = per_seed_table(results)
    diag_h, diag_r = diagnostics_table(curves)
    configs = method_configs(run_dir, meta)
    abl_h, abl_r = ablation_table(stats, configs, baseline, proposed)
    found_h, found_r = tools_found_table(runs)
    attr_methods = [m for m in runs if (configs.get(m) or {}).get("attribution")]
    early_h, early_r = early_steps_table(runs, attr_methods)
    zoos = sorted({r["zoo"] for r in results if r.get("zoo") is not None})
    per_zoo = [(f"Accuracy on zoo {z} alone (%, mean [95% CI] over its seeds)",
                *accuracy_table([r for r in results if r.get("zoo") == z], baseline)[:2]) for z in zoos]  # fmt: skip
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
    verdict = _verdict(stats, baseline, proposed)
    incentive = best_on_val(curves, incentives(configs))
    vs_h, vs_r, vs_stats = versus_table(results, incentive) if incentive else ([], [], {})
    vp_h, vp_r, _ = versus_table(results, proposed) if proposed in runs else ([], [], {})
    if incentive and proposed in vs_stats:
        verdict += " " + _verdict({proposed: vs_stats[proposed], incentive: {}}, incentive, proposed)
    over = "zoos x seeds" if zoos else "seeds"
    head_h, head_r = headline_table(stats, vs_stats, runs, baseline, incentive)
    sections = [
        (f"Headline: over {over}; p over runs is zoo-aware when there are several zoos", head_h, head_r),
        (f"Accuracy on the test splits (%, mean [95% CI] over {over} and questions)", acc_h, acc_r),
        *per_zoo,
        (f"Against the best tool-use incentive on val ({incentive})", vs_h, vs_r),
        (f"Against {proposed} (the other targets and teachers)", vp_h, vp_r),
        ("Average test accuracy per run (%)", seed_h, seed_r),
        ("Sample efficiency", eff_h, eff_r),
        ("Finding the tools (training rollouts: >= half the episodes call, >= half the calls useful)", found_h,
         found_r),
        ("Does tool use collapse?", col_h, col_r),
        (f"What the attribution term rewards (training, mean over steps and {over})", diag_h, diag_r),
        ("First 10 steps of the attribution runs that find the tools and of those that never do", early_h, early_r),
        ("Ablations: the three open questions", abl_h, abl_r),
    ]  # fmt: skip
    where = f"zoos {zoos}, seeds {seeds}" if zoos else f"seeds {seeds}"
    md = [f"# IAPO experiment report\n\nRun: `{run_dir}`; {where}; {len(results)} runs.\n\n**{verdict}**\n"]
    body = [f"<h1>IAPO experiment report</h1><p>Run: <code>{html.escape(str(run_dir))}</code>; {where}; "
            f"{len(results)} runs.</p><p><b>{html.escape(verdict)}</b></p>"]  # fmt: skip
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
    notes = (
        "SFT is the student before RL, evaluated once (greedy decoding, so seed-independent); its intervals are "
        "Wilson intervals over questions, the methods' are percentile bootstraps that resample zoos (when there "
        "are several), runs within them and, within each test split, questions (they stay in [0, 100]). Runs are "
        "paired with the baseline run of the same zoo and seed. p (runs, t): paired t-test on per-run average "
        "accuracy; p (questions, t): paired t-test on each test question's correctness averaged over the paired "
        "runs; p (bootstrap): the same resampling applied to the paired differences (zoo-aware). With few runs "
        "a bootstrap understates the run-level spread (3 runs allow 10 distinct resamples), so with one zoo the "
        "verdict uses the t-test over runs; with several zoos it uses the bootstrap p. Test splits were evaluated "
        "once, after training; val was used for curves."
    )
    md.append(f"## Notes\n\n{notes}\n")
    body.append(f"<h2>Notes</h2><p>{html.escape(notes)}</p>")
    if meta:
        dump = json.dumps(meta, indent=1)
        md.append(f"## Config, versions, wall time\n\n```json\n{dump}\n```\n")
        body.append(f"<h2>Config, versions, wall time</h2><pre>{html.escape(dump)}</pre>")
    (run_dir / "report.md").write_text("\n".join(md))
    out = run_dir / "report.html"
    out.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>IAPO report</title>"
                   f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>")  # fmt: skip
    return out


def _verdict(stats: dict, baseline: str = BASELINE, proposed: str = "iapo") -> str:
    """A win needs both tests: questions are not the unit of replication of an RL run, runs are
    (a seed whose policy has not yet switched to tools moves hundreds of questions at once); with
    several zoos the run-level test resamples zoos too (a zoo can carry a result alone)."""
    if proposed not in stats or baseline not in stats:
        return f"{proposed} vs {baseline}: not both in this run."
    s = stats[proposed]
    d, pq, ps = 100 * s.get("diff", math.nan), s.get("p_questions", math.nan), s.get("p_seeds", math.nan)
    if math.isnan(d):
        return f"{proposed} vs {baseline}: no paired runs."
    sig_q, sig_s = pq < 0.05, ps < 0.05  # False for nan
    tests = f"p = {_p(ps)} over runs, {_p(pq)} over questions"
    if d > 0 and sig_q and sig_s:
        return f"{proposed} beats {baseline} here: {d:+.1f} points average accuracy ({tests})."
    if d > 0 and sig_q:
        return (
            f"{proposed} is above {baseline} here by {d:+.1f} points average accuracy, significant over "
            f"questions but not over runs ({tests}): not a win at this number of runs."
        )
    word = "is below" if d < 0 and sig_q and sig_s else ("does not beat" if d < 0 else "does not significantly beat")
    return f"{proposed} {word} {baseline} here: {d:+.1f} points average accuracy ({tests})."
