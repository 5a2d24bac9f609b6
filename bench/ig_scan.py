"""Issue 27's first candidate, measured and not adopted: IG with its gradient nodes placed where f
changes. A forward-only scan of f at K + 1 equispaced points of the straight path; then m
Gauss-Legendre nodes spread over the scan's intervals in proportion to |f(a_j+1) - f(a_j)|
(per episode, largest remainder); optionally each interval's attribution rescaled to its
measured change of f (exact completeness; an interval without nodes borrows the direction of the
nearest sampled one). Compared with plain Gauss-Legendre at m = 4 / 16 / 64, as component-share
L1 against converged IG (trapezoid, m = 512), over 8 val demonstrations of the student.

    python bench/ig_scan.py --zoo runs/quickstart/zoo --world runs/quickstart/world
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from _demos import demo_batch, demo_segments
from _tiny import zoo_and_world
from iapo.attribution import baseline_embeddings, component_scores, integrated_gradients, sequence_logprob, shares
from iapo.rollout.episode import encode
from iapo.store import ZooDir


def allocate(df: torch.Tensor, m: int) -> torch.Tensor:
    """m nodes over K intervals in proportion to |df| (K,), largest remainder."""
    q = df.abs() / df.abs().sum() * m
    n = q.floor().long()
    n[torch.argsort(q - n, descending=True)[: m - int(n.sum())]] += 1
    return n


def scan_ig(model, eb, base, K: int, m: int, rescale: bool) -> torch.Tensor:
    """(B, T, D) attributions."""
    x = eb.inputs_embeds
    B = x.shape[0]
    a = torch.linspace(0, 1, K + 1)
    rows = torch.arange(B).repeat(K + 1)
    path = (base.unsqueeze(0) + a.view(-1, 1, 1, 1) * (x - base).unsqueeze(0)).reshape(-1, *x.shape[1:])
    with torch.no_grad():
        f = torch.cat(
            [sequence_logprob(model, eb, path[i : i + 64], rows[i : i + 64]) for i in range(0, len(rows), 64)]
        )
    df = (f.view(K + 1, B)[1:] - f.view(K + 1, B)[:-1]).double()  # (K, B)
    nodes: list[tuple[int, int, float, float]] = []  # (row, interval, alpha, weight)
    for b in range(B):
        for j, n in enumerate(allocate(df[:, b], m).tolist()):
            if n:
                xg, wg = np.polynomial.legendre.leggauss(n)
                lo, hi = float(a[j]), float(a[j + 1])
                nodes += [(b, j, lo + (hi - lo) * (u + 1) / 2, w * (hi - lo) / 2) for u, w in zip(xg, wg, strict=True)]
    r = torch.tensor([n[0] for n in nodes])
    al = torch.tensor([n[2] for n in nodes], dtype=x.dtype).view(-1, 1, 1)
    wt = torch.tensor([n[3] for n in nodes], dtype=x.dtype).view(-1, 1, 1)
    grads = []
    for i in range(0, len(nodes), 64):
        p = (base[r[i : i + 64]] + al[i : i + 64] * (x - base)[r[i : i + 64]]).detach().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(sequence_logprob(model, eb, p, r[i : i + 64]).sum(), p)
        grads.append(g)
    contrib = (x - base)[r] * torch.cat(grads) * wt  # (N_nodes, T, D)
    attr = torch.zeros_like(x)
    for b in range(B):
        per: dict[int, torch.Tensor] = {}
        for k, (bb, j, _, _) in enumerate(nodes):
            if bb == b:
                per[j] = per.get(j, 0) + contrib[k]
        if not rescale:
            attr[b] = sum(per.values())
            continue
        for jj in range(K):
            j = min(per, key=lambda u, jj=jj: abs(u - jj))
            s = float(per[j].sum())
            if abs(s) > 1e-9:
                attr[b] += per[j] * (float(df[jj, b]) / s)
    return attr


def main() -> None:
    ap = argparse.ArgumentParser(description="IG with its nodes where f changes vs plain Gauss-Legendre")
    ap.add_argument("--zoo", type=Path, help="a zoo (default: untrained tiny models)")
    ap.add_argument("--world", type=Path, help="its world (default: a small one)")
    ap.add_argument("--episodes", type=int, default=8)
    ap.add_argument("--reference", type=int, default=512, help="m of the trapezoid reference")
    a = ap.parse_args()
    torch.set_num_threads(1)
    zoo, world = zoo_and_world(a.zoo, a.world)
    segs = demo_segments(world, a.episodes)
    model, proc, batch, eb = demo_batch(ZooDir(zoo).role("student"), segs)
    base = baseline_embeddings(model, proc, batch, eb, "pad")
    comp = torch.full(batch.input_ids.shape, -1, dtype=torch.long)
    for j, s in enumerate(segs):
        e = encode(s, proc)
        comp[j, : len(e)] = e.component_ids(sum(k == "assistant" for k in e.kinds) - 1)

    def share_l1(attr: torch.Tensor) -> str:
        d = (shares(component_scores(attr.sum(-1).double(), comp)) - ref_p).abs().sum(-1)
        return f"share L1 median {d.median():.3f} p90 {d.quantile(0.9):.3f}"

    ref = integrated_gradients(model, eb, base, a.reference, "trapezoid")
    ref_p = shares(component_scores(ref.attributions.sum(-1).double(), comp))
    print(f"reference: trapezoid m={a.reference}, completeness median {ref.relative_error.median():.4f}")
    for K, m in [(8, 4), (16, 4), (16, 8), (32, 8), (32, 16)]:
        for rescale in (False, True):
            t = time.perf_counter()
            attr = scan_ig(model, eb, base, K, m, rescale)
            ms = (time.perf_counter() - t) * 1e3 / len(segs)
            print(f"scan K={K:2d} m={m:2d} rescale={rescale!s:5s}: {share_l1(attr)}, {ms:.0f} ms/ep")
    for m in (4, 16, 64):
        t = time.perf_counter()
        res = integrated_gradients(model, eb, base, m, "gausslegendre")
        ms = (time.perf_counter() - t) * 1e3 / len(segs)
        print(f"gausslegendre m={m:2d}: {share_l1(res.attributions)}, {ms:.0f} ms/ep")


if __name__ == "__main__":
    main()
