"""Fidelity of each attribution estimator as IAPO's reward sees it: the component shares of the
final answer turn, on a zoo's trained student and teacher, against

- the estimator's own exact reference: converged IG (trapezoid, m = 128) for IG estimators; for
  the exact estimators (shapley, occlusion, grad_x_delta) the same estimator run one episode per
  pass (no padding, no batching), so the column shows only what batching changes;
- converged IG, for every estimator: how far each option is from the method's definition.

    python bench/attribution_fidelity.py --zoo runs/quickstart/zoo --world runs/quickstart/world

Columns: share L1 (median / p90 over episodes; L1 between share vectors runs from 0 to 2), the
completeness error |sum A - (f(x) - f(x'))| / |f(x) - f(x')| (median; a property IG and Shapley
claim, occlusion and grad_x_delta do not), and the wall time per episode of `attribute_episodes`
(the batched call the reward makes). Last line: `default <estimator>: share L1 median X p90 Y,
ms per episode T` for the library default (the worse of student and teacher).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from _demos import demo_segments
from _tiny import zoo_and_world
from iapo.attribution import IG_REFERENCE, AttributionSettings, attribute_episodes, describe
from iapo.models.build import load
from iapo.store import ZooDir

CANDIDATES = [
    AttributionSettings(estimator="ig", n_steps=4, rule="gausslegendre"),
    AttributionSettings(estimator="ig", n_steps=16, rule="gausslegendre"),
    AttributionSettings(estimator="ig", n_steps=32, rule="trapezoid"),
    AttributionSettings(estimator="ig", n_steps=64, rule="gausslegendre"),
    AttributionSettings(estimator="grad_x_delta"),
    AttributionSettings(estimator="occlusion"),
    AttributionSettings(estimator="shapley"),
]


def run(model, proc, segs, s: AttributionSettings, one_by_one: bool = False):
    """(shares (N, C), completeness errors (N,), ms per episode)."""
    t = time.perf_counter()
    if one_by_one:
        turns = [attribute_episodes(model, proc, [x], "final", s)[0] for x in segs]
    else:
        turns = attribute_episodes(model, proc, segs, "final", s)
    ms = (time.perf_counter() - t) * 1e3 / len(segs)
    p = torch.stack([ts[0].p for ts in turns]).double()
    err = torch.tensor([ts[0].relative_error for ts in turns])
    return p, err, ms


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().sum(-1)


def cell(d: torch.Tensor) -> str:
    return f"{d.median():5.3f} / {d.quantile(0.9):5.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--zoo", type=Path, help="a zoo (default: untrained tiny models)")
    ap.add_argument("--world", type=Path, help="its world (default: a small one)")
    ap.add_argument("--roles", nargs="+", default=["student", "teacher"])
    ap.add_argument("--episodes", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", nargs="+", metavar="LABEL", help="only these estimators, e.g. 'ig gausslegendre m=64'")
    ap.add_argument(
        "--no-ig-reference", action="store_true", help="skip converged IG (minutes per role): no 'vs IG' column"
    )
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    a.zoo, a.world = zoo_and_world(a.zoo, a.world)
    segs = demo_segments(a.world, a.episodes)
    default = AttributionSettings()
    print(f"{len(segs)} val demonstrations (final answer turn); reference IG: {describe(IG_REFERENCE)}")
    print(f"{'role':8s} {'estimator':24s} {'L1 own ref med / p90':>22s} {'L1 vs IG med / p90':>20s} "
          f"{'complete':>9s} {'ms/ep':>7s}")  # fmt: skip
    worst: tuple[float, float, float] | None = None
    for role in a.roles:
        model, proc = load(ZooDir(a.zoo).role(role))
        model.eval()
        ig_ref = None
        if not a.no_ig_reference:
            ig_ref, ig_err, ig_ms = run(model, proc, segs, IG_REFERENCE)
            print(f"{role:8s} {describe(IG_REFERENCE):24s} {'0 (itself)':>22s} {'0 (itself)':>20s} "
                  f"{ig_err.median():9.4f} {ig_ms:7.1f}", flush=True)  # fmt: skip
        cands = [s for s in CANDIDATES if not a.only or describe(s) in a.only]
        for s in cands + ([default] if default not in cands else []):
            p, err, ms = run(model, proc, segs, s)
            if s.estimator == "ig" and ig_ref is None:
                continue  # IG's own reference is converged IG
            own = ig_ref if s.estimator == "ig" else run(model, proc, segs, s, one_by_one=True)[0]
            d_own = l1(p, own)
            vs_ig = "-" if ig_ref is None else cell(l1(p, ig_ref))
            print(f"{role:8s} {describe(s):24s} {cell(d_own):>22s} {vs_ig:>20s} {err.nanmedian():9.4f} {ms:7.1f}",
                  flush=True)  # fmt: skip
            if s == default:
                row = (float(d_own.median()), float(d_own.quantile(0.9)), ms)
                worst = row if worst is None else tuple(max(x, y) for x, y in zip(worst, row, strict=True))
    assert worst is not None
    med, p90, ms = worst
    print(f"default {describe(default)}: share L1 median {med:.3f} p90 {p90:.3f}, ms per episode {ms:.1f}")


if __name__ == "__main__":
    main()
