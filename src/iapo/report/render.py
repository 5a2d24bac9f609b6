"""The report itself: tables and figures in order, as report.md and report.html, with the
verdict on the primary contrast and the design's caveat above them. Renders the episode gallery
when one was drawn (`iapo.viz.episode_gallery`, a step of its own: it runs the models)."""

from __future__ import annotations

import html
import json
import logging
import math
from collections import Counter
from pathlib import Path

import numpy as np

from iapo.provenance import write_text
from iapo.report.contrasts import (
    arm_runs,
    attribution_variants,
    best_on_val,
    comparisons,
    incentives,
    require_arms,
)
from iapo.report.figures import (
    fig_alignment,
    fig_attribution,
    fig_contrasts,
    fig_misuse,
    fig_training,
    fig_val_curves,
)
from iapo.report.load import load_results, load_run_curves, method_configs, write_runs_csv
from iapo.report.roles import ReportRoles
from iapo.report.tables import (
    ablation_table,
    accuracy_table,
    call_quality_table,
    contrasts_table,
    cost_table,
    diagnostics_table,
    early_steps_table,
    floor_splits,
    fmt_ci,
    fmt_diff,
    fmt_p,
    fmt_pts,
    found_step,
    headline_table,
    per_seed_table,
    per_zoo_table,
    question_type_table,
    question_view,
    sample_efficiency,
    tool_collapse,
    tools_found_table,
    tools_table,
    versus_sft_table,
)
from iapo.stats import (
    Contrast,
    arm_ci,
    contrast,
    plan_grid,
    variance_components,
)
from iapo.store import ExperimentDir

log = logging.getLogger(__name__)


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


def compare_markdown(arms: dict[str, dict], primary: tuple[str, str], references: list[str]) -> str:
    """The arms' accuracies and their comparisons as Markdown: `primary` confirmatory, every arm
    against each of `references` exploratory (Holm), as a report computes them."""
    require_arms(arms, (*primary, *references))
    contrasts = comparisons(arms, references or [primary[1]], primary[0], primary)
    n_zoos = len({z for a in arms.values() for z in a})
    rows = [[m, str(sum(map(len, a.values()))), fmt_ci(arm_ci(a))] for m, a in arms.items()]
    out = [f"**{verdict(next((c for c in contrasts if c.primary), None), primary)}**", "", design_caveat(n_zoos), "",
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
            + "Power is the decision's (the zoo t-test and the exact sign-flip test both reject: nothing with "
            "4 zoos or fewer). Zoo builds not included.")  # fmt: skip
    return note + "\n\n" + _md_table(head, rows)


def machines_line(results: list[dict]) -> str:
    """Which CPUs trained the runs (the SFT students' evaluations have no run record)."""
    count = Counter(r.get("machine") or "a CPU not recorded" for r in results if r["method"] != "sft")
    if not count:
        return ""
    return "Trained on: " + "; ".join(f"{n} run{'s' * (n != 1)} on {m}" for m, n in count.most_common()) + "."


Section = tuple[str, list[str], list[list[str]]]  # (title, header, rows)

FIGURES = {  # file -> (title, what it draws from: "contrasts", "results", "curves" or "runs", how)
    "fig_contrasts.png": (
        "The confirmatory contrasts: A - B with its 95% CI, each zoo's (or seed pair's) difference below",
        "contrasts",
        fig_contrasts,
    ),
    "fig_val_runs.png": ("Val accuracy of every run (a line per run, a colour per zoo)", "runs", fig_val_curves),
    "fig_training.png": ("Tool use and accuracy during training (paper's Fig. 4 analog)", "curves", fig_training),
    "fig_misuse.png": ("Tool-call classes on the test splits (paper's Fig. 3 analog, misuse)", "results", fig_misuse),
    "fig_attribution.png": (
        "Attribution share per input component, final turn (paper's Fig. 3 analog)",
        "results",
        fig_attribution,
    ),
    "fig_alignment.png": (
        "Student vs target attribution shares at the first and last GRPO step (IAPO methods)",
        "curves",
        fig_alignment,
    ),
}


def write_report(exp_dir: Path, out: Path | None = None) -> Path:
    """Write report.html, report.md, runs.csv and fig_*.png into `out` (default `exp_dir`, which is
    only read: a committed ledger stays as it is); returns the HTML path. The gallery drawn into
    `out` (gallery_*.png, `iapo.viz.episode_gallery`) is shown as is."""
    out = out or exp_dir
    out.mkdir(parents=True, exist_ok=True)
    damaged: list[str] = []
    results = load_results(exp_dir, damaged)
    runs = load_run_curves(exp_dir)
    meta = ExperimentDir(exp_dir).read_record()
    write_runs_csv(results, out / "runs.csv")
    curves = {m: list(by.values()) for m, by in runs.items()}
    arms = arm_runs(results)
    said, sections, contrasts = _sections(exp_dir, results, arms, runs, curves, meta)
    data = {"results": results, "runs": runs, "curves": curves, "contrasts": (arms, contrasts)}
    for name, (_, source, draw) in FIGURES.items():
        draw(data[source], out / name)
    zoos = sorted({r["zoo"] for r in results if r.get("zoo") is not None})
    seeds = sorted({r["seed"] for r in results if r["seed"] is not None})
    where = f"zoos {zoos}, seeds {seeds}" if zoos else f"seeds {seeds}"
    n_sft = sum(r["method"] == "sft" for r in results)
    counts = f"{len(results) - n_sft} trained runs and {n_sft} SFT evaluation{'s' * (n_sft != 1)}"
    if damaged:  # said in the report, not only in the log: a damaged grid must not read as a complete one
        log.warning("skipped %d damaged result file(s): %s", len(damaged), "; ".join(damaged))
        counts += (f" ({len(damaged)} damaged result file{'s' * (len(damaged) != 1)} left out, its arm shows fewer "
                   f"runs: {'; '.join(damaged)})")  # fmt: skip
    head = (str(exp_dir), f"; {where}; {counts}. {machines_line(results)}", said, design_caveat(len(zoos), len(seeds)))
    gallery = sorted(out.glob("gallery_*.png"))
    write_text(out / "report.md", _markdown(head, sections, gallery, meta))
    html_path = out / "report.html"
    write_text(html_path, _html(head, sections, gallery, meta))
    return html_path


def _sections(
    exp_dir: Path, results: list[dict], arms: dict[str, dict], runs: dict, curves: dict[str, list], meta: dict
) -> tuple[str, list[Section], list[Contrast]]:
    """The verdict on the primary contrast, the report's tables in order (`arms`: `arm_runs` of
    `results`; `curves`: each method's runs' metric rows; a table with no rows is left out when
    rendered) and its contrasts."""
    roles = ReportRoles.of(meta)
    baseline, proposed, primary = roles.baseline, roles.proposed, roles.primary_contrast
    configs = method_configs(exp_dir, meta)
    incentive = best_on_val(curves, incentives(configs))
    references = [baseline, *([incentive] if incentive else [])]
    secondary = roles.secondary
    registered: list[Contrast] = []  # primary and secondary on another measure than accuracy
    if roles.measure != "accuracy":
        rates = arm_runs(results, measure=roles.measure)
        registered = comparisons(rates, [], proposed, primary, None, secondary)
        contrasts = comparisons(arms, references, proposed, None, attribution_variants(configs), None)
    else:
        contrasts = comparisons(arms, references, proposed, primary, attribution_variants(configs), secondary)
    acc_h, acc_r, accuracy = accuracy_table(results)
    main = next((c for c in registered or contrasts if c.primary), None)
    low = floor_splits(results)
    inside = [s for s in sorted(results[0]["splits"]) if s not in low] if low else []
    apart = {f"in-distribution ({', '.join(inside)}) % [95% CI]": {m: arm_ci(a) for m, a in arm_runs(results, inside).items()},
             **{f"{s} % (every method at the floor)": {m: arm_ci(a) for m, a in arm_runs(results, [s]).items()}
                for s in low}} if low else None  # fmt: skip
    zoos = {r["zoo"] for r in results if r.get("zoo") is not None}
    over = "zoos" if len(zoos) > 1 else "runs of one zoo"
    bare = {m: arm_ci(a) for m, a in arm_runs(results, tools=False).items()}
    attr_methods = [m for m in runs if (configs.get(m) or {}).get("attribution")]
    sections = [
        *([(f"Registered analysis: decoy-call rate (% of valid calls on distractor questions that call the decoy; "
            f"lower is better; the {over} as the unit)",
            ["method", "decoy-call rate % [95% CI]", "runs"],
            [[m, fmt_ci(arm_ci(a)), str(sum(len(s) for s in a.values()))] for m, a in rates.items()]),
           ("Registered contrasts on the decoy-call rate (diff = A - B; p Holm within the secondary family)",
            *contrasts_table(registered))] if registered else []),
        (f"Headline: accuracy and differences with the {over} as the unit",
         *headline_table(accuracy, contrasts, runs, baseline, incentive, bare, apart)),
        ("Every comparison (diff = A - B on the same runs; p Holm: within the secondary family named before the "
         "grid, and within the exploratory rest)", *contrasts_table(contrasts)),
        (f"Accuracy on the test splits (%, mean [95% CI], the {over} as the unit)", acc_h, acc_r),
        ("With and without tools: test accuracy when no tools are offered (descriptive)", *tools_table(results)),
        ("Mean accuracy per zoo (%, runs in brackets)", *(per_zoo_table(results) if len(zoos) > 1 else ([], []))),
        ("Against the SFT student, per test split (points [95% CI]; descriptive)", *versus_sft_table(results)),
        (f"Where {primary[0]} and {primary[1]} differ, question by question (description, no test)",
         *(question_view(results, *primary) if main else ([], []))),
        ("Average test accuracy per run (%)", *per_seed_table(results)),
        ("Sample efficiency", *sample_efficiency(curves, baseline)),
        ("Finding the tools (training rollouts: >= half the episodes call, >= half the calls useful)",
         *tools_found_table(runs)),
        ("Does tool use collapse?", *tool_collapse(results)),
        ("What the calls are (test splits, mean over runs)", *call_quality_table(results)),
        ("Per question type: accuracy % [95% CI] and valid calls that are useless % (test splits)",
         *question_type_table(results)),
        ("What the attribution term rewards (training, mean over steps and runs)", *diagnostics_table(curves)),
        ("First 10 steps of the attribution runs that find the tools and of those that never do",
         *early_steps_table(runs, attr_methods)),
        ("Attribution variants: what each asks", *ablation_table(accuracy, contrasts, configs, baseline, proposed)),
        ("What a run costs (means over finished runs; per-step times are training steps)", *cost_table(runs, results)),
    ]  # fmt: skip
    found = {m: (sum(found_step(v) is not None for v in by.values()), len(by)) for m, by in runs.items()}
    notes = [split_arms_note(found, primary) if main is not None and not registered else ""]
    if low and main is not None and not registered:
        alone = contrast(*(arm_runs(results, inside)[m] for m in primary), primary)
        notes.append(f"On the in-distribution splits alone ({', '.join(low)} at the floor for every method; "
                     f"exploratory): {fmt_diff(alone)} points, p = {fmt_p(alone.p)} (t), "
                     f"{fmt_p(alone.p_sign_flip)} (sign-flip).")  # fmt: skip
    return " ".join([verdict(main, primary, roles.measure), *(n for n in notes if n)]), sections, contrasts


def _shown(sections: list[Section]) -> list[Section]:
    """The sections with something to show (the attribution variants: something to compare)."""
    return [s for s in sections if len(s[2]) >= (2 if s[0].startswith("Attribution variants") else 1)]


GALLERY = (
    "Episode gallery: the SFT student and seed 0 of each method on the same test questions",
    "Questions where the policies disagree most. Each row: the episode's images with the attribution heat map of "
    "its final turn (red: raises the answer's log-probability), its turns and answer, and its component shares.",
)


def _markdown(head: tuple[str, str, str, str], sections: list[Section], gallery: list[Path], meta: dict) -> str:
    exp_dir, run, said, caveat = head
    md = [f"# IAPO experiment report\n\nRun: `{exp_dir}`{run}\n\n**{said}**\n\n{caveat}\n"]
    md += [f"## {title}\n\n{_md_table(h, r)}" for title, h, r in _shown(sections)]
    md += [f"## {title}\n\n![{title}]({name})\n" for name, (title, _, _) in FIGURES.items()]
    if gallery:
        title, note = GALLERY
        md.append(f"## {title}\n\n{note}\n\n" + "\n".join(f"![{p.stem}]({p.name})" for p in gallery) + "\n")
    md.append(f"## Notes\n\n{NOTES}\n")
    if meta:
        md.append(f"## Config, versions, wall time\n\n```json\n{json.dumps(meta, indent=1)}\n```\n")
    return "\n".join(md)


def _html(head: tuple[str, str, str, str], sections: list[Section], gallery: list[Path], meta: dict) -> str:
    exp_dir, run, said, caveat = (html.escape(x) for x in head)
    body = [
        f"<h1>IAPO experiment report</h1><p>Run: <code>{exp_dir}</code>{run}</p><p><b>{said}</b></p><p>{caveat}</p>"
    ]
    body += [f"<h2>{html.escape(title)}</h2>{_html_table(h, r)}" for title, h, r in _shown(sections)]
    body += [
        f"<h2>{html.escape(t)}</h2><img src='{name}' alt='{html.escape(t)}'>" for name, (t, _, _) in FIGURES.items()
    ]
    if gallery:
        title, note = (html.escape(x) for x in GALLERY)
        body.append(f"<h2>{title}</h2><p>{note}</p>" + "".join(f"<img src='{p.name}' alt='{p.stem}'>" for p in gallery))
    body.append(f"<h2>Notes</h2><p>{html.escape(NOTES)}</p>")
    if meta:
        body.append(f"<h2>Config, versions, wall time</h2><pre>{html.escape(json.dumps(meta, indent=1))}</pre>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>IAPO report</title><style>{CSS}</style></head>"
            f"<body>{''.join(body)}</body></html>")  # fmt: skip


NOTES = (
    "Every interval and test takes each run's test accuracy (the mean over test splits, each weighted "
    "equally) as its data: questions enter only through it (a grid registered on the decoy-call rate takes each "
    "run's share of valid calls on distractor questions that call the decoy, pooled over its test splits, for its "
    "registered contrasts; its accuracy comparisons are then all exploratory). With several zoos the zoo is the unit: a "
    "method's accuracy is the mean of its zoo means with a t-interval over zoos, and a difference A - B is "
    "the mean over the zoos both ran on of (A's zoo mean - B's zoo mean), all runs of each, with a t-test "
    "over zoos (df = zoos - 1) and an exact sign-flip test; a difference is significant only when both "
    "reject (the t-test alone rejects 6-9% of simulated nulls where one arm's runs are bimodal; the decision "
    "holds 5% within Monte Carlo error in every design of tests/test_stats.py). With one zoo the run is the unit (a paired t and "
    "sign-flip over seeds when both methods ran the same seeds, else Welch) and a result holds for that zoo "
    "only. The SFT student "
    "is evaluated once per zoo (greedy); on one zoo its intervals are Wilson intervals over questions. The "
    "primary contrast was named in the experiment config before the grid ran and alone decides the verdict; "
    "every other comparison is exploratory, Holm-adjusted over the report's family. MDE: the smallest true "
    "difference the t-test of this design detects with 80% power at alpha 0.05, from its own standard error "
    "(the decision, which asks the sign-flip test too, needs somewhat more). A difference that is not "
    "significant reads as its interval ('not significant: compatible with -2.2 to +6.0 points; differences "
    "beyond that excluded at 95%'): zero is inside it, and so is every difference up to its ends. Test "
    "splits were evaluated once, after training; val was used for curves and for every choice."
)


def design_caveat(n_zoos: int, n_seeds: int = 0) -> str:
    """What the number of zoos (one zoo: of seeds paired by seed) can support, said once above the
    tables.

    >>> design_caveat(1, 3).split("; ")[-1]
    'with 3 seeds paired by seed the exact sign-flip test cannot go below p = 0.25, so no difference can be significant here (the decision asks both tests).'
    """
    if n_zoos <= 1:
        floor = 2 / 2**n_seeds if n_seeds else 0.0
        seeds = (
            f"; with {n_seeds} seeds paired by seed the exact sign-flip test cannot go below p = {floor:.3g}, so "
            "no difference can be significant here (the decision asks both tests)."
            if floor >= 0.05
            else "."
        )
        return ("One zoo: the run is the unit, so every result here holds for this zoo (this SFT student and "
                "teacher) only; another machine trains another zoo" + seeds)  # fmt: skip
    floor = 2 / 2**n_zoos
    return (f"{n_zoos} zoos: a zoo-level test has {n_zoos - 1} degree(s) of freedom, and an exact sign-flip test "
            f"cannot go below p = {floor:.3g}"
            + (", so no difference can be significant here (the decision asks both); treat every result as a "
               "pilot." if floor >= 0.05 else "."))  # fmt: skip


def verdict(c: Contrast | None, primary: tuple[str, str], measure: str = "accuracy") -> str:
    """The primary contrast in words: a win or a loss only when its decision rejects (the t-test
    over units and the exact sign-flip test both, `stats.decision_p`); else the interval it is
    compatible with.

    >>> from iapo.stats import Contrast
    >>> verdict(Contrast("a", "b", "zoo", 6, 18, 18, 0.27, 0.25, 0.019, -0.022, 0.060, 0.287, 0.281, 0.056),
    ...         ("a", "b"))  # doctest: +NORMALIZE_WHITESPACE
    'a vs b (primary contrast): not significant: compatible with -2.2 to +6.0 points; differences beyond
     that excluded at 95% (+1.9 [-2.2, +6.0] points, p = 0.287 (t), 0.281 (sign-flip), 6 zoos as the unit;
     MDE 5.6 points).'
    """
    a, b = primary
    if c is None or math.isnan(c.diff):
        return f"Primary contrast {a} vs {b}: not both in this run."
    if math.isnan(c.low):
        return f"Primary contrast {a} vs {b}: {100 * c.diff:+.1f} points, too few {c.unit}s for an interval."
    tests = f"p = {fmt_p(c.p)}" + ("" if math.isnan(c.p_sign_flip) else f" (t), {fmt_p(c.p_sign_flip)} (sign-flip)")
    stat = f"{fmt_diff(c)} points, {tests}, {c.n_units} {c.unit}s as the unit; MDE {fmt_pts(c.mde)} points"
    if measure == "decoy_rate":  # lower is better
        if c.significant:
            more = "more" if c.diff > 0 else "less"
            return f"{a} calls the decoy {more} often than {b} (primary contrast, decoy-call rate): {stat}."
        return f"{a} vs {b} on the decoy-call rate (primary contrast; lower is better): {c.reading()} ({stat})."
    if c.significant:
        return f"{a} {'beats' if c.diff > 0 else 'is below'} {b} (primary contrast): {stat}."
    return f"{a} vs {b} (primary contrast): {c.reading()} ({stat})."


def split_arms_note(found: dict[str, tuple[int, int]], primary: tuple[str, str]) -> str:
    """A caution when one arm of the primary contrast is bimodal (some of its runs never find the
    tools) and the other is not: such a null is where the t-test alone is liberal, and where
    both tests are, when the bimodal arm fails rarely (`iapo.calibration.STRESS`).
    found: method -> (runs that find the tools, runs)."""
    split = [m for m in primary if m in found and 0 < found[m][0] < found[m][1]]
    whole = [m for m in primary if m in found and found[m][0] in (0, found[m][1])]
    if len(split) != 1 or len(whole) != 1:
        return ""
    (m,), (other,) = split, whole
    return (f"{m}'s runs are bimodal ({found[m][0]} of {found[m][1]} find the tools; {other}: "
            f"{found[other][0]} of {found[other][1]}): a zoo mean of {m} then depends on how many of its runs "
            "failed, its 95% interval covers less (91% in simulation at 4 zoos x 3 seeds), and with few zoos "
            "and rare failures no test holds its level (bench/stats_calibration.py --stress).")  # fmt: skip
