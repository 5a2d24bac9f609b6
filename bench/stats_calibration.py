"""Calibration and power of the report's inference on simulated grids with a known truth.

    python bench/stats_calibration.py [--grids 4000] [--seed 0] [--stress]

For each world (sparse-like and quickstart-like rates; one arm bimodal against a unimodal one with
the same mean; one arm with four times the other's run spread), with and without a zoo x method
interaction, and each design (zoos x RL seeds per arm; one zoo = the run as the unit): the
false-positive rate under a true null of the t-test, of the exact sign-flip test and of the
decision the report makes (both must reject), the coverage of the 95% interval (under the null
and under 5- and 10-point effects), and the decision's power at 5 and 10 points
(`iapo.calibration`). `--stress` adds a bimodal arm that fails rarely (`calibration.STRESS`),
beyond any test at these sizes. Ends with `worst false-positive rate F, worst coverage C` (over
the rows the tests assert).
"""

from __future__ import annotations

import argparse

from iapo.calibration import STRESS, calibration_table, mc_error


def _cell(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grids", type=int, default=4000, help="simulated grids per design and effect")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stress", action="store_true", help="add the rarely failing bimodal arm")
    a = ap.parse_args(argv)
    rows = calibration_table(grids=a.grids, seed=a.seed, extra=(STRESS,) if a.stress else ())
    head = ["world", "zoo x method", "zoos", "seeds", "test", "false pos. % (decision)", "t alone %",
            "sign-flip alone %", "coverage null %", "coverage @5 %", "coverage @10 %", "power @5 %", "power @10 %"]  # fmt: skip
    print(f"{a.grids} grids per cell; Monte Carlo error of a 5% rate: {100 * mc_error(0.05, a.grids):.2f} points\n")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        flip = "" if r["test"] == "Welch" else _cell(r["fp_sign_flip"])
        cells = [r["world"], "yes" if r["interaction"] else "no", str(r["zoos"]), str(r["seeds"]), r["test"],
                 _cell(r["false_positive"]), _cell(r["fp_t"]), flip, _cell(r["coverage_null"]),
                 _cell(r.get("coverage@5")), _cell(r.get("coverage@10")), _cell(r.get("power@5")),
                 _cell(r.get("power@10"))]  # fmt: skip
        print("| " + " | ".join(cells) + " |")
    kept = [r for r in rows if r["world"] != STRESS.name]
    worst_fp = max(r["false_positive"] for r in kept)
    worst_cov = min(v for r in kept for k, v in r.items() if k.startswith("coverage"))
    print(f"\nworst false-positive rate {worst_fp:.3f}, worst coverage {worst_cov:.3f}")


if __name__ == "__main__":
    main()
