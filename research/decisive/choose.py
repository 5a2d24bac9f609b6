"""Apply the pilot's rule (pilot.yaml): for each choice, the setting with the higher mean final val
accuracy wins; within `--tie` points, the cheaper one (seconds per training step).

    python research/decisive/choose.py runs/decisive_pilot > research/decisive/pilot.md
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from iapo.report import load_run_curves
from iapo.report.contrasts import final_val

CHOICES = {
    "teacher-derived target": ("regions_own", "combined"),
    "curiosity setting": ("curiosity", "curiosity_strong"),
    "distillation weight": ("distill_low", "distill_high"),
}


def summary(runs: dict[str, list[dict]]) -> tuple[float, float, int]:
    """(mean final val accuracy, mean seconds per step, runs) of one setting."""
    vals = final_val(list(runs.values()))
    steps = [r["time/step_s"] for rows in runs.values() for r in rows if "time/step_s" in r]
    return float(np.nanmean(vals)), float(np.mean(steps)) if steps else math.nan, len(vals)


def choose(a: tuple[float, float], b: tuple[float, float], tie: float) -> int:
    """0 or 1: the higher val accuracy, or within `tie` (a fraction) the cheaper."""
    if abs(a[0] - b[0]) <= tie:
        return 0 if a[1] <= b[1] else 1
    return 0 if a[0] > b[0] else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path, help="the pilot's experiment directory")
    ap.add_argument("--tie", type=float, default=2.0, help="val points within which the cheaper setting wins")
    a = ap.parse_args()
    curves = load_run_curves(a.run_dir)
    print("| choice | setting | runs | final val % (mean) | s / step | chosen |\n|---|---|---|---|---|---|")
    for choice, pair in CHOICES.items():
        if not all(m in curves for m in pair):
            print(f"| {choice} | not in {a.run_dir} | | | | |")
            continue
        s = [summary(curves[m]) for m in pair]
        win = choose((s[0][0], s[0][1]), (s[1][0], s[1][1]), a.tie / 100)
        for i, (m, (val, sec, n)) in enumerate(zip(pair, s, strict=True)):
            print(f"| {choice} | {m} | {n} | {100 * val:.1f} | {sec:.2f} | {'yes' if i == win else ''} |")


if __name__ == "__main__":
    main()
