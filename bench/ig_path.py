"""Where along the IG path f changes: the median share of f(x) - f(x') reached at each alpha, per
role and baseline, on a zoo's trained models (forward passes only). It explains the completeness
table of bench/ig_quadrature.py: a rule whose nodes miss the steps of f cannot integrate them.

    python bench/ig_path.py --zoo runs/quickstart/zoo --world runs/quickstart/world [--episodes 32]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from _demos import demo_batch, demo_segments
from _tiny import zoo_and_world
from iapo.attribution import baseline_embeddings, sequence_logprob
from iapo.store import ZooDir


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--zoo", type=Path, help="a zoo (default: untrained tiny models)")
    ap.add_argument("--world", type=Path, help="its world (default: a small one)")
    ap.add_argument("--roles", nargs="+", default=["student", "teacher"])
    ap.add_argument("--baselines", nargs="+", default=["pad", "blank"])
    ap.add_argument("--episodes", type=int, default=32)
    ap.add_argument("--points", type=int, default=33)
    a = ap.parse_args()
    torch.set_num_threads(2)
    a.zoo, a.world = zoo_and_world(a.zoo, a.world)
    segs = demo_segments(a.world, a.episodes)
    alphas = torch.linspace(0, 1, a.points)
    print("share of f(x) - f(x') reached at alpha (median over episodes)")
    print("role     baseline " + " ".join(f"{x:5.2f}" for x in alphas.tolist()))
    for role in a.roles:
        model, proc, batch, eb = demo_batch(ZooDir(a.zoo).role(role), segs)
        x = eb.inputs_embeds
        for bname in a.baselines:
            base = baseline_embeddings(model, proc, batch, eb, bname).expand_as(x)
            with torch.no_grad():
                f = torch.stack([sequence_logprob(model, eb, base + t * (x - base)) for t in alphas], 1)  # (B, P)
            reached = (f - f[:, :1]) / (f[:, -1:] - f[:, :1])
            print(f"{role:8s} {bname:8s} " + " ".join(f"{v:5.2f}" for v in reached.median(0).values.tolist()))


if __name__ == "__main__":
    main()
