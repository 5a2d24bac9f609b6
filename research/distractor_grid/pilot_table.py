"""The pilot's table (research/distractor_grid/README.md): per run, the val decoy-call rate along
training and at the end, val accuracy per template, the mean advantage on the row token of
useful and decoy calls in training, and minutes.

    python research/distractor_grid/pilot_table.py runs/distractor_pilot runs/distractor_pilot_distill
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from iapo.store import ExperimentDir, read_json, read_metrics


def _mean(rows: list[dict], key: str) -> float:
    v = [r[key] for r in rows if isinstance(r.get(key), float) and math.isfinite(r[key])]
    return sum(v) / len(v) if v else math.nan


def table(dirs: list[Path]) -> list[str]:
    out = ["| arm | val decoy-call rate %, steps 0, 60, ..., 300 | value_pair val % | value_pair_later val % "
           "| row-token advantage, useful / decoy calls (training) | minutes |", "|---|---|---|---|---|---|"]  # fmt: skip
    for d in dirs:
        for method, _, run in ExperimentDir(d).run_files("result.json"):
            if method == "sft":
                continue
            seed = run.parent.name.removeprefix("seed")
            rows = read_metrics(run.parent)
            evals = [r for r in rows if "val/decoy_rate" in r]
            curve = " ".join(f"{100 * r['val/decoy_rate']:.0f}" for r in evals)
            last = evals[-1]
            adv = (
                f"{_mean(rows, 'credit/row_token_adv/useful'):+.2f} / {_mean(rows, 'credit/row_token_adv/decoy'):+.2f}"
            )
            minutes = read_json(run)["train_seconds"] / 60
            out.append(f"| {method} (seed {seed}) | {curve} | {100 * last['val/accuracy/value_pair']:.1f} "
                       f"| {100 * last['val/accuracy/value_pair_later']:.1f} | {adv} | {minutes:.1f} |")  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+", type=Path, help="experiment directories of the pilot")
    print("\n".join(table(ap.parse_args().dirs)))


if __name__ == "__main__":
    main()
