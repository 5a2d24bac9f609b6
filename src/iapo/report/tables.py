"""The report's tables: each a (header, rows) pair of strings, computed from results, curves
and the contrasts, rendered to Markdown and HTML by `iapo.report.render`."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from iapo.report.contrasts import (
    arm_runs,
    average_accuracy,
    final_val,
    find,
    find_either,
    mean_per_question,
    per_question,
)
from iapo.report.load import metric_value
from iapo.report.roles import BASELINE, PROPOSED
from iapo.rollout.summary import useless_share
from iapo.stats import (
    CI,
    Contrast,
    arm_ci,
    contrast,
    percentile_ci,
    values,
    wilson,
)


def fmt_ci(c) -> str:
    if c.n == 0 or math.isnan(c.mean):
        return "n/a"
    if math.isnan(c.low):
        return f"{100 * c.mean:.1f} (n={c.n})"
    return f"{100 * c.mean:.1f} [{100 * c.low:.1f}, {100 * c.high:.1f}]"


def fmt_p(x: float) -> str:
    return "n/a" if math.isnan(x) else (f"{x:.3f}" if x >= 0.001 else "<0.001")


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
            q = per_question(r, splits)
            cells = [fmt_ci(_wilson_of(r["splits"][s]["accuracy"])) for s in splits]
            arms[m] = wilson(sum(q.values()), len(q))
            cells.append(fmt_ci(arms[m]) + " (questions)")
        else:
            cells = [fmt_ci(arm_ci(by_split[s][m])) for s in splits]
            arms[m] = arm_ci(zoos)
            cells.append(fmt_ci(arms[m]))
        rows.append([m, str(sum(map(len, zoos.values()))), *cells])
    return ["method", "runs", *splits, "average"], rows, arms


def _wilson_of(acc: dict) -> CI:
    return CI(acc["mean"], acc["ci_low"], acc["ci_high"], acc["n"])


def fmt_diff(c: Contrast | None) -> str:
    """`+20.6 [12.1, 29.0]`: a difference in points with its 95% CI."""
    if c is None or math.isnan(c.diff):
        return ""
    ci = "" if math.isnan(c.low) else f" [{100 * c.low:+.1f}, {100 * c.high:+.1f}]"
    return f"{100 * c.diff:+.1f}{ci}"


def fmt_pts(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}"


CONTRAST_HEAD = ["A", "B", "role", "unit (n)", "A %", "B %", "A - B [95% CI]", "p (t)", "p sign-flip",
                 "p Holm (of the larger)", "MDE (80%, t)", "reading"]  # fmt: skip


def contrasts_table(contrasts: list[Contrast]) -> tuple[list[str], list[list[str]]]:
    """One row per comparison: the means it compares (on the units it uses), their difference
    with its interval, the t-test over units, the exact sign-flip p, Holm's adjustment of the
    larger of the two (`stats.decision_p`), the t-test's minimum detectable effect, and what that
    supports in words."""
    rows = [
        [
            c.a,
            c.b,
            c.role,
            f"{c.unit}s ({c.n_units})",
            fmt_pts(c.mean_a),
            fmt_pts(c.mean_b),
            fmt_diff(c),
            fmt_p(c.p),
            fmt_p(c.p_sign_flip),
            "" if c.p_holm is None else fmt_p(c.p_holm),
            fmt_pts(c.mde),
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
    rows = [[m, *(fmt_diff(contrast(per[s][m], per[s]["sft"], (m, "sft"))) for s in splits)]
            for m in per[splits[0]] if m != "sft"]  # fmt: skip
    return ["method", *splits], rows


def question_view(results: list[dict], a: str, b: str) -> tuple[list[str], list[list[str]]]:
    """Where two methods differ, per test split: questions that A answers right in more of its
    runs than B, in fewer, and as often. Description only: questions are not a unit of
    replication (a seed that shifts moves every question at once), so no p is attached."""
    rows = []
    for s in sorted(results[0]["splits"]):
        rate = {m: mean_per_question([r for r in results if r["method"] == m], [s]) for m in (a, b)}
        keys = sorted(set(rate[a]) & set(rate[b]))
        d = np.array([rate[a][k] - rate[b][k] for k in keys])
        rows.append([s, str(len(keys)), str(int((d > 0).sum())), str(int((d < 0).sum())), str(int((d == 0).sum()))])
    return ["split", "questions", f"{a} right more often", f"{b} right more often", "as often"], rows


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


def question_type_table(results: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Accuracy (mean [95% CI], the zoo as the unit) and the useless share of valid calls (mean
    over runs) per question type of each test split; only when a split mixes types (a distractor
    template beside the plain one), since the average over splits hides a template's change."""
    keys = sorted({(s, t) for r in results for s, d in r["splits"].items() for t in d.get("question_types", {})})
    if len(keys) == len({s for s, _ in keys}):
        return [], []
    rows = []
    for m in dict.fromkeys(r["method"] for r in results):
        runs = [r for r in results if r["method"] == m]
        cells = []
        for s, t in keys:
            typed = [(r, d[t]) for r in runs if t in (d := r["splits"].get(s, {}).get("question_types", {}))]
            by_zoo: dict = defaultdict(dict)
            for r, d in typed:
                by_zoo[r.get("zoo")][r["seed"]] = d["accuracy"]["mean"]
            share = np.array([useless_share(d) for _, d in typed])
            ok = np.isfinite(share)
            cells += [fmt_ci(arm_ci(by_zoo)), f"{100 * share[ok].mean():.1f}" if ok.any() else "-"]
        rows.append([m, *cells])
    head = [x for s, t in keys for x in (f"{s} {t.split('/')[-1]} %", "useless %")]
    return ["method", *head], rows


def call_quality_table(results: list[dict]) -> tuple[list[str], list[list[str]]]:
    """What the calls are, on the test splits (mean over runs and splits): calls per episode, the
    share of valid calls (they ran and changed the view) that the world labels useless (they hid
    the evidence or kept everything), and the misuse rate. Where few valid calls are useless,
    "where to look" cannot matter and any call bonus is as good as a teacher."""
    by_m: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for r in results:
        for s in r["splits"].values():
            if "tools/calls_per_episode" not in s:
                continue  # a result written without tool statistics
            by_m[r["method"]].append((s["tools/calls_per_episode"], useless_share(s), s["tools/misuse_rate"]))
    rows = []
    for m, v in by_m.items():
        calls, share, misuse = (np.array([x[i] for x in v]) for i in range(3))
        ok = np.isfinite(share)
        rows.append([m, f"{calls.mean():.2f}", f"{100 * share[ok].mean():.1f}" if ok.any() else "-",
                     f"{100 * misuse.mean():.1f}"])  # fmt: skip
    return ["method", "calls / episode", "valid calls that are useless %", "misuse % of calls"], rows


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
        rows.append([m, f"{100 * start:.1f}", fmt_ci(c), per_seed, "yes" if collapsed else "no", seeds, never])
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
                per_run = ([v for r in run if (v := metric_value(r, k)) is not None and math.isfinite(v)] for run in rs)
                v = [float(np.mean(x)) for x in per_run if x]
                cells.append(f"{np.mean(v):.2f}" if v else "n/a")
            rows.append(cells)
    return ["method", "runs that", "n", *(h for _, h in EARLY_KEYS)], rows


DIAG_KEYS = [
    ("attr/rank_corr_correct", "rho(term, correct)"),
    ("attr/rank_corr_call", "rho(term, call)"),
    ("attr/rank_corr_useful_call", "rho(term, useful call)"),
    ("attr/rank_corr_useful_among_valid", "rho(term, useful | valid call)"),
    ("attr/divergence_with_calls", "D with call"),
    ("attr/divergence_no_calls", "D no call"),
    ("attr/divergence_useful_calls", "D useful call"),
    ("attr/divergence_useless_calls", "D useless calls"),
    ("attr/divergence_decoy_calls", "D decoy call"),
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


PERMUTED = "Is it the teacher's knowledge of the question? (permuted: each question takes another's target)"


def ablation_question(name: str, methods: dict, proposed: str = PROPOSED) -> str:
    """What an attribution variant asks, from how its config differs from the proposed method's."""
    if name == proposed:
        return "the method"
    from iapo.attribution import describe
    from iapo.rewards.alignment import AttributionRewardConfig
    from iapo.rewards.method import MethodConfig

    # the runs' resolved configs (method_configs); a record older than 0.2 gets this version's defaults
    m, ref = MethodConfig.model_validate(methods.get(name, {})), MethodConfig.model_validate(methods.get(proposed, {}))
    ma, ra = m.attribution or AttributionRewardConfig(), ref.attribution or AttributionRewardConfig()
    if ma.permute != ra.permute:
        return PERMUTED if ma.permute else "Unpermuted targets (each question its own teacher target)"
    level = "" if _level(ma) == _level(ra) else f"{_level(ma).capitalize()}: "
    estimator = "" if describe(ma) == describe(ra) else f"another attribution estimator: {describe(ma)}"
    if ma.target != ra.target or level:
        return level + TARGETS.get(ma.target, ma.target) + (f"; {estimator}" if estimator else "")
    if estimator:
        return estimator[0].upper() + estimator[1:]
    if ma.center != ra.center:
        return f"Does centring the term help? (center: {ma.center})"
    if m.teacher != ref.teacher:
        return f"Another teacher: {m.teacher}"
    return config_difference(m.model_dump(), ref.model_dump(), proposed) or f"The same config as {proposed}"


def config_difference(a: dict, b: dict, b_name: str, prefix: str = "") -> str:
    """The fields where config `a` differs from `b`, dotted, with b's value in brackets.

    >>> config_difference({"lam": 0.5, "attr": {"div": "js", "k": 1}}, {"lam": 0.1, "attr": {"div": "kl", "k": 1}}, "iapo")
    'lam 0.5 (iapo: 0.1); attr.div js (iapo: kl)'
    """
    out = []
    for k in dict.fromkeys([*a, *b]):
        x, y = a.get(k), b.get(k)
        if isinstance(x, dict) and isinstance(y, dict):
            out.append(config_difference(x, y, b_name, f"{prefix}{k}."))
        elif x != y:
            out.append(f"{prefix}{k} {x} ({b_name}: {y})")
    return "; ".join(o for o in out if o)


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
        vs_p = "" if m == proposed else fmt_diff(find_either(contrasts, m, proposed))
        rows.append(
            [
                m,
                ablation_question(m, methods, proposed),
                fmt_ci(ci),
                fmt_diff(find_either(contrasts, m, baseline)),
                vs_p,
            ]
        )
    return ["run", "question", "average acc % [95% CI]", f"vs {baseline}", f"vs {proposed}"], rows


def tools_table(results: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Each method's test accuracy with its tools and with none offered, and the difference
    (points [95% CI], the zoo as the unit): what the tools add to the answer, apart from what RL
    changed in answering itself. Empty when no run was evaluated without tools."""
    bare = arm_runs(results, tools=False)
    if not bare:
        return [], []
    full = arm_runs(results)
    rows = [[m, fmt_ci(arm_ci(full[m])), fmt_ci(arm_ci(a)), fmt_diff(contrast(full[m], a, (m, f"{m} (no tools)")))]
            for m, a in bare.items()]  # fmt: skip
    return ["method", "with tools % [95% CI]", "no tools offered %", "tools add (points)"], rows


FLOOR = 0.05  # a test split on which every method's mean accuracy is below this is at the floor


def floor_splits(results: list[dict]) -> list[str]:
    """The test splits at the floor for every method (mean over its runs < `FLOOR`), when another
    split is not: averaged in, such a split (an OOD split no arm solves) halves every difference.

    >>> r = lambda m, ood, t: {"method": m, "splits": {"ood": {"accuracy": {"mean": ood}}, "test": {"accuracy": {"mean": t}}}}
    >>> floor_splits([r("a", 0.0, 0.3), r("b", 0.02, 0.5)]), floor_splits([r("a", 0.0, 0.3), r("b", 0.2, 0.5)])
    (['ood'], [])
    """
    splits = sorted(results[0]["splits"]) if results else []
    by_method: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        for s in splits:
            by_method[r["method"]][s].append(r["splits"][s]["accuracy"]["mean"])
    low = [s for s in splits if all(np.mean(v[s]) < FLOOR for v in by_method.values())]
    return low if len(low) < len(splits) else []


def headline_table(
    arms: dict[str, CI], contrasts: list[Contrast], runs: dict[str, dict[str, list[dict]]], baseline: str,
    incentive: str | None, bare: dict[str, CI] | None = None, apart: dict[str, dict[str, CI]] | None = None,
) -> tuple[list[str], list[list[str]]]:  # fmt: skip
    """One row per method: accuracy (and, where evaluated, with no tools offered: `bare`), its
    difference to the baseline and to the best incentive (points [95% CI], p: Holm-adjusted unless
    the contrast is the primary one), and how many runs find the tools. `apart`: column -> method
    -> accuracy, shown before the average (the in-distribution splits and a split at the floor)."""

    def cell(c: Contrast | None) -> str:
        if c is None or math.isnan(c.diff):
            return ""
        return f"{fmt_diff(c)} (p {fmt_p(c.p_used)}{'' if c.primary else ' adj.'})"

    rows = []
    for m, ci in arms.items():
        found = [found_step(v) for v in runs.get(m, {}).values()]
        no_tools = [fmt_ci(bare[m]) if m in bare else ""] if bare else []
        shown = [fmt_ci(col[m]) if m in col else "" for col in (apart or {}).values()]
        rows.append([m, *shown, fmt_ci(ci), *no_tools, cell(find(contrasts, m, baseline)),
                     cell(find(contrasts, m, incentive or "")),
                     f"{sum(f is not None for f in found)}/{len(found)}" if found else ""])  # fmt: skip
    average = "average of all test splits % (the registered measure)" if apart else "average test accuracy % [95% CI]"
    head = ["method", *(apart or {}), average, *(["no tools offered %"] if bare else []), f"vs {baseline}",
            f"vs {incentive or 'best incentive'}", "runs that find the tools"]  # fmt: skip
    return head, rows
