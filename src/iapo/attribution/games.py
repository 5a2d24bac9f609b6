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

from iapo.attribution.ig import Completeness, EmbeddedBatch, forward_kv, kv_cache, sequence_logprob
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


def shared_prefix(eb: EmbeddedBatch, base: torch.Tensor, comp: torch.Tensor, min_share: float = 0.25) -> int:
    """P: the leading positions every row shares (embeddings, baseline, components, rope positions,
    no padding), ending before the first scored token's prediction; 0 if under `min_share` of
    the rows' length (below that the cached path costs more than it saves). The episodes of one
    GRPO group share their whole prompt, so its KV cache under a coalition is computed once, not
    once per row and coalition."""
    x = eb.inputs_embeds
    same = ((x == x[:1]).all(-1) & (base == base[:1]).all(-1) & (comp == comp[:1]) & (eb.attention_mask == 1)).all(0)
    same &= (eb.position_ids == eb.position_ids[:, :1]).all(0).all(0)
    scored = eb.target.bool().any(0).nonzero()
    first = int(scored[0]) if len(scored) else x.shape[1]
    P = min(int(same.long().cumprod(0).sum()), first - 1)  # suffix keeps the hidden state before a target
    return P if max(1, min_share * x.shape[1]) <= P else 0


def _keep(comp: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Which positions keep their embedding: comp (R, T) ids, bits (R,) coalitions -> (R, T)."""
    return (comp < 0) | ((bits.unsqueeze(1) >> comp.clamp(min=0)) & 1).bool()


def context_clusters(eb: EmbeddedBatch, base: torch.Tensor, comp: torch.Tensor, P: int, min_len: int = 8):
    """Rows that go on identically after the shared prefix up to their scored turn: [(rows, Q)], Q
    the position before the row's first scored token, for clusters of two or more rows at least
    `min_len` past P. A trained policy's group often makes the same call and sees the same tool
    output, and differs only in its answer; the cluster's calls and tool outputs then run once
    per coalition, not once per row."""
    first = eb.target.int().argmax(1).tolist()  # the first scored position of each row
    seen: dict[tuple, list[int]] = {}
    for b, f in enumerate(first):
        Q = f - 1
        own_part = Q - P
        if own_part < min_len or not eb.attention_mask[b, :Q].all():
            continue
        key = (Q, *(t[b, P:Q].cpu().numpy().tobytes() for t in (eb.inputs_embeds, base, comp)),
               eb.position_ids[:, b, P:Q].cpu().numpy().tobytes())  # fmt: skip
        seen.setdefault(key, []).append(b)
    return [(rows, key[0]) for key, rows in seen.items() if len(rows) > 1]


@torch.no_grad()
def segment_cache(
    model, eb: EmbeddedBatch, base: torch.Tensor, comp: torch.Tensor, row: int, start: int, stop: int,
    variants: list[int], past: list | None = None,
) -> list:  # fmt: skip
    """Per layer, (keys, values) (V, H, stop, d) of positions 0..stop-1 of `row` under each
    coalition in `variants`: positions start..stop-1 run on top of `past` ((keys, values) of the
    first `start` positions, one per variant)."""
    V = len(variants)
    keep = _keep(comp[row : row + 1, start:stop].expand(V, -1), torch.tensor(variants, device=comp.device))
    emb = torch.where(keep.unsqueeze(-1), eb.inputs_embeds[row, start:stop], base[row, start:stop])  # (V, L, D)
    mask = eb.attention_mask[row : row + 1, :stop].expand(V, -1)
    return forward_kv(model, emb, mask, eb.position_ids[:, row : row + 1, start:stop].expand(-1, V, -1), past)


def prefix_caches(
    model, eb: EmbeddedBatch, base: torch.Tensor, comp: torch.Tensor, P: int, variants: list[int], full: int
) -> list:  # fmt: skip
    """`segment_cache` of the shared prefix (row 0, positions 0..P-1) under each coalition in
    `variants`, per layer (V, H, P, d). A coalition keeps every position before the first token of
    a component it leaves out, so it runs only from there, on top of the full coalition's cache
    (`full`: the prefix's players): leaving out the question (its last component) reruns the
    question alone, not the system prompt, tool spec and image before it."""
    first = {c: int((comp[0, :P] == c).nonzero()[0]) for c in range(len(COMPONENTS)) if full >> c & 1}
    start = {v: min((first[c] for c in first if not v >> c & 1), default=P) for v in variants}
    head = segment_cache(model, eb, base, comp, 0, 0, P, [full])  # (1, H, P, d) per layer
    parts = {full: head}
    for s in sorted({start[v] for v in variants if v != full}):
        vs = [v for v in variants if v != full and start[v] == s]
        past = [(k[:, :, :s].expand(len(vs), -1, -1, -1), v[:, :, :s].expand(len(vs), -1, -1, -1)) for k, v in head]
        kv = segment_cache(model, eb, base, comp, 0, s, P, vs, past if s else None)
        parts.update({v: [(k[i : i + 1], val[i : i + 1]) for k, val in kv] for i, v in enumerate(vs)})
    return [(torch.cat([parts[v][n][0] for v in variants]), torch.cat([parts[v][n][1] for v in variants]))
            for n in range(len(head))]  # fmt: skip


@torch.no_grad()
def coalition_values(
    model, eb: EmbeddedBatch, base: torch.Tensor, comp: torch.Tensor, masks: list[list[int]], chunk: int = 64
) -> list[dict[int, float]]:
    """v(S) for every row b and coalition S in masks[b]: the tokens of components outside S take
    the baseline embedding; everything else (the target turn, padding) stays. `chunk` caps rows
    per forward pass. comp (B, T) component ids on the model's device.

    Work shared between rows runs once, as a two-level prefix tree: the shared prefix
    (`shared_prefix`) once per distinct coalition of its components, then the continuation of each
    cluster of rows that agree up to their scored turn (`context_clusters`) once per coalition;
    each (row, coalition) pair then runs only what is its own, in chunks of pairs of one start and
    similar length cut at their longest row (`_chunks`: a group's answer-only episodes are not
    padded to its episodes with calls)."""
    P = shared_prefix(eb, base, comp)
    in_prefix = sum(1 << int(c) for c in comp[0, :P].unique() if c >= 0)
    variants = sorted({m & in_prefix for ms in masks for m in ms})
    kv = prefix_caches(model, eb, base, comp, P, variants, in_prefix) if P else []
    slot = {v: i for i, v in enumerate(variants)}
    nodes = [(P, kv)]  # (where the rows' own part starts, the cache of what precedes it)
    own = {b: (0, {m: slot[m & in_prefix] for m in ms}) for b, ms in enumerate(masks)}  # node, coalition -> cache row
    for rows, Q in context_clusters(eb, base, comp, P):
        ms = sorted({m for b in rows for m in masks[b]})
        at = [slot[m & in_prefix] for m in ms]
        nodes.append((Q, segment_cache(model, eb, base, comp, rows[0], P, Q, ms, [(k[at], v[at]) for k, v in kv])))
        own.update({b: (len(nodes) - 1, {m: i for i, m in enumerate(ms)}) for b in rows})
    vals: list[dict[int, float]] = [{} for _ in masks]
    lengths = eb.attention_mask.sum(1).tolist()
    for n, (start, cache) in enumerate(nodes):
        pairs = [(b, m) for b, ms in enumerate(masks) if own[b][0] == n for m in ms]
        for part in _chunks(pairs, [lengths[b] - start for b, _ in pairs], chunk):
            idx = [own[b][1][m] for b, m in part]
            past = [(k[idx], v[idx]) for k, v in cache]
            for (b, m), v in zip(part, _values(model, eb, base, comp, part, start, past), strict=True):
                vals[b][m] = v
    return vals


def _values(model, eb: EmbeddedBatch, base: torch.Tensor, comp: torch.Tensor, part: list, start: int, past: list):
    """v(S) of the (row, coalition) pairs in `part`: positions start.. of each row under its
    coalition, on top of `past` (per layer, (keys, values) (R, H, start, d); [] when start is 0)."""
    x = eb.inputs_embeds
    rows = torch.tensor([b for b, _ in part], device=x.device)
    end = int(max(eb.attention_mask[b].sum() for b, _ in part))
    bits = torch.tensor([m for _, m in part], device=x.device)  # (R,)
    keep = _keep(comp[rows, start:end], bits)  # (R, end-start)
    emb = torch.where(keep.unsqueeze(-1), x[rows, start:end], base[rows, start:end])  # (R, end-start, D)
    return sequence_logprob(model, eb, emb, rows, kv_cache(past), end).double().cpu().tolist()


def _chunks(pairs: list, suffix: list[int], size: int, slack: float = 1.5) -> list[list]:
    """Pairs in chunks of at most `size`, by suffix length: a chunk closes before a pair longer
    than `slack` x its shortest (+ 8 tokens), so little of a chunk is padding."""
    order = sorted(range(len(pairs)), key=lambda i: suffix[i])
    out: list[list] = []
    first = 0
    for i in order:
        if not out or len(out[-1]) == size or suffix[i] > slack * first + 8:
            out.append([])
            first = suffix[i]
        out[-1].append(pairs[i])
    return out


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
    fulls = [sum(1 << c for c in p) for p in ps]  # each row's coalition of all its players
    if eb.f_x is not None:  # v(all players) = f(x): a pass on this batch has it already
        masks = [[m for m in ms if m != full] for ms, full in zip(masks, fulls, strict=True)]
    vals = coalition_values(model, eb, base, comp, masks, chunk)
    if eb.f_x is not None:
        for v, full, f in zip(vals, fulls, eb.f_x.tolist(), strict=True):
            v[full] = f
    B = x.shape[0]
    scores = torch.zeros(B, len(COMPONENTS), dtype=torch.float64)
    f_x, f_b = torch.zeros(B, dtype=torch.float64), torch.full((B,), math.nan, dtype=torch.float64)
    for b, (p, v, full) in enumerate(zip(ps, vals, fulls, strict=True)):
        f_x[b] = v[full]
        f_b[b] = v.get(0, math.nan)
        phi = shapley_from_values(v, p) if game == "shapley" else {c: v[full] - v[full ^ (1 << c)] for c in p}
        for c, val in phi.items():
            scores[b, c] = val
    return GameResult(scores=scores, f_x=f_x, f_base=f_b, delta=scores.sum(1) - (f_x - f_b))
