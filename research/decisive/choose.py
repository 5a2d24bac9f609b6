"""Apply a rule stated before the runs: the setting with the higher mean final val accuracy wins;
within `--tie` points of the best, the cheapest (seconds per training step). With several zoos
the mean is the mean of the zoo means; the cost is the mean over runs of each run's median
seconds per step. Two uses:

    python research/decisive/choose.py runs/decisive_pilot             # the pilot's three choices
    python research/decisive/choose.py runs/decisive --default         # the library default (config.yaml)
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from iapo.report import load_run_curves
from iapo.report.contrasts import final_val

DEFAULT = {"library default": ("iapo", "combined", "iapo_ig4")}
CHOICES = {
    "teacher-derived target": ("regions_own", "combined"),
    "curiosity setting": ("curiosity", "curiosity_strong"),
    "distillation weight": ("distill_low", "distill_high"),
}


def summary(runs: dict[str, list[dict]]) -> tuple[float, float, int]:
    """(final val accuracy: the mean of the zoo means, seconds per step, runs) of one setting;
    a run's label is `z<zoo>/s<seed>` with several zoos (`iapo.report.load_run_curves`)."""
    by_zoo: dict[str, list[list[dict]]] = {}
    for label, rows in runs.items():
        by_zoo.setdefault(label.split("/")[0] if "/" in label else "", []).append(rows)
    val = float(np.mean([np.nanmean(final_val(z)) for z in by_zoo.values()]))
    # each run's median step: a run stopped mid-step (SIGSTOP while CI shared the cores) holds one
    # step of minutes, which would dominate a mean over 100 steps of 1-4 s
    steps = [np.median(s) for rows in runs.values() if (s := [r["time/step_s"] for r in rows if "time/step_s" in r])]
    return val, float(np.mean(steps)) if steps else math.nan, len(runs)


def choose(scores: list[tuple[float, float]], tie: float) -> int:
    """The index of the winner: the cheapest of those within `tie` (a fraction) of the best val."""
    best = max(v for v, _ in scores)
    near = [i for i, (v, _) in enumerate(scores) if v >= best - tie]
    return min(near, key=lambda i: scores[i][1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path, help="the pilot's experiment directory")
    ap.add_argument("--tie", type=float, default=2.0, help="val points within which the cheaper setting wins")
    ap.add_argument("--default", action="store_true", help="the library default's rule of the grid's config")
    a = ap.parse_args()
    curves = load_run_curves(a.run_dir)
    print("| choice | setting | runs | final val % (mean) | s / step | chosen |\n|---|---|---|---|---|---|")
    for choice, names in (DEFAULT if a.default else CHOICES).items():
        if not all(m in curves for m in names):
            print(f"| {choice} | not all in {a.run_dir} | | | | |")
            continue
        s = [summary(curves[m]) for m in names]
        win = choose([(v, sec) for v, sec, _ in s], a.tie / 100)
        for i, (m, (val, sec, n)) in enumerate(zip(names, s, strict=True)):
            print(f"| {choice} | {m} | {n} | {100 * val:.1f} | {sec:.2f} | {'yes' if i == win else ''} |")


if __name__ == "__main__":
    main()
