"""`iapo report RUN_DIR`: the experiment's tables and figures as HTML + Markdown + PNGs.

Reads only what `iapo.experiment` wrote (results, metric logs, the resolved config), so a
report can be regenerated at any time. Every number carries its n; intervals are 95%:
t-intervals over seeds for methods (clipped to [0, 100] for accuracies), Wilson intervals for
the single SFT evaluation; per-seed values are shown beside them.
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
from iapo.stats import CI, mean_ci, paired_test, wilson
from iapo.tools.session import CallClass
from iapo.viz import write_gallery

BASELINE = "outcome"
UNIT = (0.0, 1.0)  # the range of an accuracy or a share


def load_results(run_dir: Path) -> list[dict]:
    paths = sorted((run_dir / "runs").glob("*/result.json")) + sorted((run_dir / "runs").glob("*/seed*/result.json"))
    if not paths:
        raise FileNotFoundError(f"{run_dir}: no runs/*/result.json (run `iapo experiment` first)")
    return [json.loads(p.read_text()) for p in paths]


def load_curves(run_dir: Path) -> dict[str, list[list[dict]]]:
    """method -> one metrics.jsonl (list of rows) per seed."""
    out: dict[str, list[list[dict]]] = defaultdict(list)
    for p in sorted((run_dir / "runs").glob("*/seed*/metrics.jsonl")):
        out[p.parent.parent.name].append([json.loads(x) for x in p.read_text().splitlines() if x.strip()])
    return out


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


def accuracy_table(results: list[dict], baseline: str = BASELINE) -> tuple[list[str], list[list[str]], dict]:
    """Rows: method; columns: each test split, the average, paired tests vs the baseline method."""
    splits = sorted(results[0]["splits"])
    by_m: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_m[r["method"]].append(r)
    avg = {
        m: [float(np.mean([r["splits"][s]["accuracy"]["mean"] for s in splits])) for r in rs] for m, rs in by_m.items()
    }
    header = [
        "method", "seeds", *splits, "average", "p vs sft (questions, t)",
        f"diff vs {baseline}", "p (seeds, t)", "p (questions, t)",
    ]  # fmt: skip
    rows, stats = [], {}
    base = {r["seed"]: r for r in by_m.get(baseline, [])}
    sft_q = _per_question(by_m["sft"][0], splits) if "sft" in by_m else {}
    for m, rs in by_m.items():
        cells = [m, str(len(rs))]
        if len(rs) == 1:  # one run (the SFT student): Wilson intervals over its questions
            for s in splits:
                acc = rs[0]["splits"][s]["accuracy"]
                cells.append(_fmt(CI(acc["mean"], acc["ci_low"], acc["ci_high"], acc["n"])))
            q = _per_question(rs[0], splits)
            a = wilson(sum(q.values()), len(q))
            cells.append(_fmt(a) + " (questions)")
        else:
            for s in splits:
                cells.append(_fmt(mean_ci([r["splits"][s]["accuracy"]["mean"] for r in rs], bounds=UNIT)))
            a = mean_ci(avg[m], bounds=UNIT)
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
        paired = [r for r in rs if r["seed"] in base]
        if m != baseline and paired:
            pt = paired_test(
                [float(np.mean([r["splits"][s]["accuracy"]["mean"] for s in splits])) for r in paired],
                [float(np.mean([base[r["seed"]]["splits"][s]["accuracy"]["mean"] for s in splits])) for r in paired],
            )
            # question level: each question's correctness averaged over the shared seeds
            qa, qb = defaultdict(list), defaultdict(list)
            for r in paired:
                for k, v in _per_question(r, splits).items():
                    qa[k].append(v)
                for k, v in _per_question(base[r["seed"]], splits).items():
                    qb[k].append(v)
            keys = sorted(set(qa) & set(qb))
            pq = paired_test([float(np.mean(qa[k])) for k in keys], [float(np.mean(qb[k])) for k in keys])
            sign = "+" if pt.diff.mean >= 0 else ""
            cells += [f"{sign}{100 * pt.diff.mean:.1f}", _p(pt.p_t), _p(pq.p_t)]
            stats[m].update(diff=pt.diff.mean, p_seeds=pt.p_t, p_questions=pq.p_t)
        else:
            cells += ["", "", ""]
        rows.append(cells)
    return header, rows, stats


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
        ci = mean_ci([float(s) for s in reached])
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
        c = mean_ci(v, bounds=UNIT)
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
    """Average test accuracy of every seed: a mean and its interval can hide one odd seed."""
    by_m: dict[str, dict] = defaultdict(dict)
    for r in results:
        if r["method"] != "sft":
            by_m[r["method"]][r["seed"]] = float(np.mean([s["accuracy"]["mean"] for s in r["splits"].values()]))
    seeds = sorted({s for v in by_m.values() for s in v})
    rows = [[m, *(f"{100 * v[s]:.1f}" if s in v else "" for s in seeds)] for m, v in by_m.items()]
    return ["method", *(f"seed {s}" for s in seeds)], rows


DIAG_KEYS = [
    ("attr/rank_corr_correct", "rho(term, correct)"),
    ("attr/rank_corr_call", "rho(term, call)"),
    ("attr/rank_corr_useful_call", "rho(term, useful call)"),
    ("attr/divergence_with_calls", "D with call"),
    ("attr/divergence_no_calls", "D no call"),
    ("attr/divergence_correct", "D right"),
    ("attr/divergence_incorrect", "D wrong"),
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
    "evidence": "Can any component-level target help? (fixed evidence target, no teacher)",
}


def ablation_question(name: str, methods: dict, proposed: str = "iapo") -> str:
    """What an attribution variant asks, from how its config differs from the proposed method's."""
    if name == proposed:
        return "the method"
    from iapo.attribution import describe
    from iapo.rewards.attribution import AttributionRewardConfig

    m, ref = methods.get(name, {}), methods.get(proposed, {})
    # the configs with every default filled in (the defaults of this version)
    ma = AttributionRewardConfig.model_validate(m.get("attribution") or {})
    ra = AttributionRewardConfig.model_validate(ref.get("attribution") or {})
    if ma.target != ra.target:
        return TARGETS.get(ma.target, ma.target)
    if describe(ma) != describe(ra):
        return f"Another attribution estimator: {describe(ma)}"
    if ma.center != ra.center:
        return f"Does centring the term help? (center: {ma.center})"
    teacher = m.get("teacher", "teacher")  # MethodConfig's default: nothing is inherited
    if teacher != ref.get("teacher", "teacher"):
        return f"Another teacher: {teacher}"
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


# --- figures ------------------------------------------------------------------------------------


def _curve(runs: list[list[dict]], key: str) -> tuple[np.ndarray, np.ndarray] | None:
    pts = defaultdict(list)
    for rows in runs:
        for r in rows:
            if key in r and r[key] is not None and math.isfinite(r[key]):
                pts[r["step"]].append(r[key])
    if not pts:
        return None
    steps = np.array(sorted(pts))
    return steps, np.array([np.mean(pts[s]) for s in steps])


def fig_training(curves: dict[str, list[list[dict]]], path: Path) -> None:
    """Fig. 4 analog: tool calls, useful-call rate, accuracy over training (mean over seeds)."""
    keys = [
        ("tools/calls_per_episode", "tool calls / episode"),
        ("tools/useful_rate", "useful-call rate"),
        ("accuracy", "train accuracy (rollouts)"),
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
    curves = load_curves(run_dir)
    meta = json.loads((run_dir / "experiment.json").read_text()) if (run_dir / "experiment.json").exists() else {}
    roles = meta.get("config", {}).get("report") or {}
    baseline, proposed = roles.get("baseline", BASELINE), roles.get("proposed", "iapo")
    acc_h, acc_r, stats = accuracy_table(results, baseline)
    eff_h, eff_r = sample_efficiency(curves, baseline)
    col_h, col_r = tool_collapse(results)
    seed_h, seed_r = per_seed_table(results)
    diag_h, diag_r = diagnostics_table(curves)
    abl_h, abl_r = ablation_table(stats, meta.get("config", {}).get("methods", {}), baseline, proposed)
    figs = {
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
    sections = [
        ("Accuracy on the test splits (%, mean [95% CI] over seeds)", acc_h, acc_r),
        ("Average test accuracy per seed (%)", seed_h, seed_r),
        ("Sample efficiency", eff_h, eff_r),
        ("Does tool use collapse?", col_h, col_r),
        ("What the attribution term rewards (training, mean over steps and seeds)", diag_h, diag_r),
        ("Ablations: the three open questions", abl_h, abl_r),
    ]
    md = [f"# IAPO experiment report\n\nRun: `{run_dir}`; seeds {seeds}; {len(results)} runs.\n\n**{verdict}**\n"]
    body = [f"<h1>IAPO experiment report</h1><p>Run: <code>{html.escape(str(run_dir))}</code>; seeds {seeds}; "
            f"{len(results)} runs.</p><p><b>{html.escape(verdict)}</b></p>"]  # fmt: skip
    for title, h, r in sections:
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
        "Wilson intervals over questions, the methods' are t-intervals over seeds. p (seeds): paired "
        "t-test on per-seed average accuracy; p (questions): paired t-test on each test question's correctness "
        "averaged over the shared seeds. Test splits were evaluated once, after training; val was used for curves."
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
    """A win needs both tests: questions are not the unit of replication of an RL run, seeds are
    (a seed whose policy has not yet switched to tools moves hundreds of questions at once)."""
    if proposed not in stats or baseline not in stats:
        return f"{proposed} vs {baseline}: not both in this run."
    s = stats[proposed]
    d, pq, ps = 100 * s.get("diff", math.nan), s.get("p_questions", math.nan), s.get("p_seeds", math.nan)
    if math.isnan(d):
        return f"{proposed} vs {baseline}: no paired seeds."
    sig_q, sig_s = pq < 0.05, ps < 0.05  # False for nan
    tests = f"p = {_p(ps)} over seeds, {_p(pq)} over questions"
    if d > 0 and sig_q and sig_s:
        return f"{proposed} beats {baseline} here: {d:+.1f} points average accuracy ({tests})."
    if d > 0 and sig_q:
        return (
            f"{proposed} is above {baseline} here by {d:+.1f} points average accuracy, significant over "
            f"questions but not over seeds ({tests}): not a win at this number of seeds."
        )
    word = "is below" if d < 0 and sig_q and sig_s else ("does not beat" if d < 0 else "does not significantly beat")
    return f"{proposed} {word} {baseline} here: {d:+.1f} points average accuracy ({tests})."
