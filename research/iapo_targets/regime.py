"""Is a run directory in the sparse-reward regime? From an `iapo experiment` run's training logs:

- at step 1 (the SFT student's own rollouts, before any update): the share of right rollouts, of
  GRPO groups with zero outcome variance, and of episodes with a tool call, pooled over every run;
- per method, val accuracy (mean [95% CI over seeds]) at every evaluation step, and its change
  over the last third of the steps (is the method still improving at this budget?).

    python research/iapo_targets/regime.py runs/iapo_sparse
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from iapo.report import fmt_ci, load_curves
from iapo.stats import mean_ci


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", type=Path)
    a = ap.parse_args()
    curves = load_curves(a.run_dir)
    trained = [[r for r in rows if "reward/outcome" in r] for runs in curves.values() for rows in runs]
    first = [rows[0] for rows in trained if rows]  # step 1
    if not first:
        raise SystemExit(f"{a.run_dir}: no training logs under runs/*/seed*/metrics.jsonl")
    keys = ("reward/outcome", "reward/zero_variance_groups", "tools/episodes_with_call")
    print(f"step 1, pooled over {len(first)} runs (the same SFT student, each run its own rollouts):")
    for k in keys:
        v = [r[k] for r in first]
        print(f"  {k:30s} {100 * np.mean(v):5.1f}%  (runs {100 * min(v):.0f}-{100 * max(v):.0f}%)")
    print("\nval accuracy %, mean [95% CI over seeds], per evaluation step; last third: change from the")
    print("evaluation at or before 2/3 of the steps to the final one (mean [95% CI over seeds])")
    for method, runs in curves.items():
        vals = [{r["step"]: r["val/accuracy"] for r in rows if "val/accuracy" in r} for rows in runs]
        steps = sorted(set.intersection(*(set(v) for v in vals)))
        if len(steps) < 2:
            continue
        cut = max(s for s in steps if s <= 2 * steps[-1] / 3)
        curve = "  ".join(f"{s}: {fmt_ci(mean_ci([v[s] for v in vals], bounds=(0, 1)))}" for s in steps)
        gain = mean_ci([v[steps[-1]] - v[cut] for v in vals], bounds=(-1, 1))
        print(f"  {method:20s} n={len(vals)}  {curve}\n  {'':20s} last third ({cut} -> {steps[-1]}): {fmt_ci(gain)}")


if __name__ == "__main__":
    main()
