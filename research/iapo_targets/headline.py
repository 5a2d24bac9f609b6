"""The headline table of an `iapo experiment` run directory, as research/iapo_targets/README.md
shows it: test accuracy mean [95% CI over seeds], the difference to the baseline with paired p
over seeds and over questions, the share of test episodes with a call per seed, seeds that never
call a tool, and the final val accuracy (what hyper-parameters are chosen on).

    python research/iapo_targets/headline.py runs/iapo_targets [--baseline outcome]
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from iapo.report import _fmt, _p, accuracy_table, final_val, load_curves, load_results
from iapo.stats import mean_ci


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--baseline", default="outcome")
    a = ap.parse_args()
    results = load_results(a.run_dir)
    curves = load_curves(a.run_dir)
    _, _, stats = accuracy_table(results, a.baseline)
    calls: dict[str, list[float]] = defaultdict(list)
    for r in sorted(results, key=lambda r: (r["method"], r["seed"] or 0)):
        calls[r["method"]].append(float(np.mean([s["tools/episodes_with_call"] for s in r["splits"].values()])))
    head = ["method", "test accuracy %", f"vs {a.baseline}", "p seeds / questions", "episodes with a call, per seed %",
            "seeds never calling", "val accuracy % (final)"]  # fmt: skip
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for m, s in stats.items():
        d = s.get("diff", math.nan)
        diff = "" if math.isnan(d) else f"{100 * d:+.1f}"
        ps = "" if math.isnan(d) else f"{_p(s['p_seeds'])} / {_p(s['p_questions'])}"
        per_seed = " / ".join(f"{100 * x:.0f}" for x in calls[m])
        never = f"{sum(x == 0 for x in calls[m])}/{len(calls[m])}"
        val = mean_ci([v for v in final_val(curves.get(m, [])) if not math.isnan(v)], bounds=(0, 1))
        row = [m, _fmt(s["average"]), diff, ps, per_seed, never, _fmt(val) if m in curves else ""]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
