"""Completeness error of IG per quadrature rule, m and baseline, with the time of each, on a zoo's
trained models: the table the default rule and m are chosen from (docs/method.md).

    python bench/ig_quadrature.py --zoo runs/quickstart/zoo --world runs/quickstart/world [--episodes 32]

Completeness: |sum_i IG_i - (f(x) - f(x'))| / |f(x) - f(x')| per episode (f = the final turn's
log-probability); the median and the 90th percentile over episodes are printed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from _demos import demo_batch, demo_segments
from _tiny import zoo_and_world
from iapo.attribution import RULES, baseline_embeddings, integrated_gradients
from iapo.store import ZooDir


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--zoo", type=Path, help="a zoo (default: untrained tiny models)")
    ap.add_argument("--world", type=Path, help="its world (default: a small one)")
    ap.add_argument("--roles", nargs="+", default=["student", "teacher"])
    ap.add_argument("--episodes", type=int, default=32)
    ap.add_argument("--steps", type=int, nargs="+", default=[2, 4, 8, 16])
    ap.add_argument("--rules", nargs="+", default=["gausslegendre", "trapezoid", "riemann_trapezoid"])
    ap.add_argument("--baselines", nargs="+", default=["pad", "blank", "zero"])
    a = ap.parse_args()
    assert set(a.rules) <= set(RULES), f"rules: {RULES}"
    torch.set_num_threads(2)
    a.zoo, a.world = zoo_and_world(a.zoo, a.world)
    segs = demo_segments(a.world, a.episodes)
    print("role     baseline rule                  " + "  ".join(f"m={m:<2d} med / p90 / ms" for m in a.steps))
    for role in a.roles:
        model, proc, batch, eb = demo_batch(ZooDir(a.zoo).role(role), segs)
        for bname in a.baselines:
            base = baseline_embeddings(model, proc, batch, eb, bname)
            for rule in a.rules:
                cells = []
                for m in a.steps:
                    t = time.perf_counter()
                    res = integrated_gradients(model, eb, base, m, rule, chunk=64)
                    ms = (time.perf_counter() - t) * 1e3 / len(segs)
                    err = res.relative_error
                    cells.append(f"{err.median():6.3f} / {err.quantile(0.9):6.3f} / {ms:4.0f}")
                print(f"{role:8s} {bname:8s} {rule:20s}  " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
