"""Exact component-level attribution from forward passes only: the input components as players
of a cooperative game.

The value of a coalition S of components is v(S) = f(x_S), the target turn's log-probability
when the components outside S are replaced by the baseline embeddings x' (the same x' as IG's:
the pad embedding, or a blank image's features on image rows). Two estimators:

- `shapley`: the Shapley value of each component, exactly, from all 2^n coalitions of the
  n components an episode has (16 for an episode without a call, 64 with one). It splits
  f(x) - f(x') completely (efficiency), as IG does, and is what IG becomes when the players are
  whole components instead of embedding coordinates along one straight path.
- `occlusion`: leave one component out, phi_c = f(x) - f(x without c): n + 1 passes.

Both are exact for their own definitions (no quadrature); their distance to IG is measured in
`bench/attribution_fidelity.py`. Hand-written because captum's FeatureAblation / ShapleyValues
would run the full-vocabulary logits of every position for each coalition (`sequence_logprob`
runs the LM head on the target tokens only) and cannot batch coalitions of rows of different
lengths; tests check them against captum's ShapleyValues on a toy game.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import torch

from iapo.attribution.ig import Completeness, EmbeddedBatch, sequence_logprob
from iapo.rollout.episode import COMPONENTS

Game = Literal["shapley", "occlusion"]


@dataclass(kw_only=True)
class GameResult(Completeness):
    """scores (B, C) per component (0 where absent); f_base NaN where f(x') was not computed."""

    scores: torch.Tensor


def players(comp: torch.Tensor) -> list[int]:
    """The components present in one row's component ids (T,) (-1 = not a player)."""
    return sorted(int(c) for c in comp.unique() if c >= 0)


def coalitions(ps: list[int], game: Game, with_empty: bool) -> list[int]:
    """The coalitions (bitmasks over COMPONENTS) whose values `game` needs."""
    full = sum(1 << c for c in ps)
    if game == "shapley":
        return [sum(1 << c for c in s) for k in range(len(ps) + 1) for s in combinations(ps, k)]
    return [full, *(full ^ (1 << c) for c in ps), *([0] if with_empty else [])]


@torch.no_grad()
def coalition_values(
    model, eb: EmbeddedBatch, base: torch.Tensor, comp: torch.Tensor, masks: list[list[int]], chunk: int = 64
) -> list[dict[int, float]]:
    """v(S) for every row b and coalition S in masks[b]: the tokens of components outside S take
    the baseline embedding; everything else (the target turn, padding) stays. `chunk` caps rows
    per forward pass. comp (B, T) component ids on the model's device."""
    x = eb.inputs_embeds  # (B, T, D)
    pairs = [(b, m) for b, ms in enumerate(masks) for m in ms]
    vals: list[dict[int, float]] = [{} for _ in masks]
    for i in range(0, len(pairs), chunk):
        part = pairs[i : i + chunk]
        rows = torch.tensor([b for b, _ in part], device=x.device)
        bits = torch.tensor([m for _, m in part], device=x.device)  # (R,)
        c = comp[rows]  # (R, T)
        keep = (c < 0) | ((bits.unsqueeze(1) >> c.clamp(min=0)) & 1).bool()
        emb = torch.where(keep.unsqueeze(-1), x[rows], base[rows])  # (R, T, D)
        f = sequence_logprob(model, eb, emb, rows).double().cpu()
        for (b, m), v in zip(part, f.tolist(), strict=True):
            vals[b][m] = v
    return vals


def shapley_from_values(v: dict[int, float], ps: list[int]) -> dict[int, float]:
    """Exact Shapley values of the players ps from v over all their coalitions (bitmasks)."""
    n = len(ps)
    w = [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)]
    out = {}
    for c in ps:
        bit = 1 << c
        out[c] = sum(w[m.bit_count()] * (v[m | bit] - v[m]) for m in v if not m & bit)
    return out


def component_game(
    model,
    eb: EmbeddedBatch,
    base: torch.Tensor | None,
    comp: torch.Tensor,
    game: Game = "shapley",
    chunk: int = 64,
    completeness: bool = True,
) -> GameResult:
    """Per-component values (B, C) of f for each row of `eb`; comp (B, T) component ids."""
    x = eb.inputs_embeds
    base = torch.zeros_like(x) if base is None else base.to(x.dtype).expand_as(x)
    comp = comp.to(x.device)
    ps = [players(c) for c in comp]
    masks = [coalitions(p, game, completeness) for p in ps]
    vals = coalition_values(model, eb, base, comp, masks, chunk)
    B = x.shape[0]
    scores = torch.zeros(B, len(COMPONENTS), dtype=torch.float64)
    f_x, f_b = torch.zeros(B, dtype=torch.float64), torch.full((B,), math.nan, dtype=torch.float64)
    for b, (p, v) in enumerate(zip(ps, vals, strict=True)):
        full = sum(1 << c for c in p)
        f_x[b] = v[full]
        f_b[b] = v.get(0, math.nan)
        phi = shapley_from_values(v, p) if game == "shapley" else {c: v[full] - v[full ^ (1 << c)] for c in p}
        for c, val in phi.items():
            scores[b, c] = val
    return GameResult(scores=scores, f_x=f_x, f_base=f_b, delta=scores.sum(1) - (f_x - f_b))
