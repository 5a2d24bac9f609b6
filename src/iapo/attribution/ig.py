"""Integrated Gradients of a model turn w.r.t. the LM input embeddings, batched over interpolation steps.

For a model turn y (the policy's tokens) of an episode x, f(x) = sum_t log p(y_t | x, y_<t).
IG_i = (x_i - x'_i) * sum_k w_k * df/dx_i (x' + a_k (x - x')) over the LM input embeddings,
text and image-token rows alike (Qwen2.5-VL scatters the image features into the embedding
rows, position ids are computed once). Summing IG over the embedding dimension and then over
the tokens of each component gives A_c; p_c = |A_c| / sum |A_c| is what IAPO aligns.

All m interpolation steps of all rows run in one forward + backward (chunked by `chunk` rows),
as captum 0.9 also does by default, with gradients w.r.t. the path only (no weight gradients).
Why hand-written and not captum (the reference it is tested against): captum needs a forward
function of the inputs, which for a causal LM means the full logits of every position and
interpolation step; ours is faster by that (bench/cost_curve.py prints the ratio per model
size) and adds what IAPO needs: rows of similar length share a chunk (less padding), f(x) and f(x') for
the completeness check come from the path's end points (trapezoid) instead of two more passes,
the LM head runs on the target tokens only (`sequence_logprob`: with Qwen's 151k vocabulary the
full logits of m steps would dominate memory and time), and the sums per input component.

Baselines: `pad` (the pad token's embedding in every row; the default), `blank` (pad on text
rows, the vision features of a blank white image on image rows) and `zero` (the textbook
choice). Zero is unreliable here: every decoder layer starts with RMSNorm, whose gradient at a
zero input is ~1/sqrt(eps), so f changes almost entirely in a sliver near alpha = 0 and no
quadrature with few nodes sees it.

Quadrature rules (`quadrature`): `gausslegendre` (captum's default; exact for polynomials of
degree 2m-1 along the path; the default here, chosen from the measured table in
docs/method.md), `trapezoid` (the composite trapezoid rule, weights summing to 1), and captum's
four Riemann rules with its exact step sizes and alphas, so `integrated_gradients` agrees with
`captum.attr.IntegratedGradients` for every rule captum has (tested). captum's
`riemann_trapezoid` weights sum to (m-1)/m, so its completeness error cannot fall below ~1/m.
Rules without the path's end points (Gauss-Legendre) get f(x) and f(x') from one extra
forward pass without gradients, only when `completeness=True`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from iapo.models.build import image_features
from iapo.rollout.episode import Batch

Rule = Literal["gausslegendre", "trapezoid", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"]
RULES: tuple[str, ...] = (
    "gausslegendre",
    "trapezoid",
    "riemann_trapezoid",
    "riemann_left",
    "riemann_right",
    "riemann_middle",
)
Baseline = Literal["blank", "pad", "zero"]
N_STEPS = 4  # m, IG's quadrature nodes: the one default of the library


def quadrature(n_steps: int, rule: Rule = "gausslegendre") -> tuple[torch.Tensor, torch.Tensor]:
    """(weights, alphas), both (n_steps,) float64, for integrating over alpha in [0, 1].
    The Riemann rules and Gauss-Legendre equal captum's `approximation_parameters`."""
    if n_steps < 2:
        raise ValueError("n_steps must be at least 2")
    n = n_steps
    if rule == "gausslegendre":
        import numpy as np

        x, wq = np.polynomial.legendre.leggauss(n)  # nodes and weights on [-1, 1]
        return torch.tensor(0.5 * wq, dtype=torch.float64), torch.tensor(0.5 * (1 + x), dtype=torch.float64)
    if rule == "trapezoid":  # composite trapezoid on n equispaced nodes: weights sum to 1
        w = torch.full((n,), 1.0 / (n - 1), dtype=torch.float64)
        w[0] /= 2
        w[-1] /= 2
        return w, torch.linspace(0, 1, n, dtype=torch.float64)
    w = torch.full((n,), 1.0 / n, dtype=torch.float64)
    if rule == "riemann_trapezoid":
        w[0] /= 2
        w[-1] /= 2
        a = torch.linspace(0, 1, n, dtype=torch.float64)
    elif rule == "riemann_left":
        a = torch.linspace(0, 1 - 1 / n, n, dtype=torch.float64)
    elif rule == "riemann_right":
        a = torch.linspace(1 / n, 1, n, dtype=torch.float64)
    elif rule == "riemann_middle":
        a = torch.linspace(1 / (2 * n), 1 - 1 / (2 * n), n, dtype=torch.float64)
    else:
        raise ValueError(f"unknown IG rule {rule!r}; one of {', '.join(RULES)}")
    return w, a


# --- the model as a function of its input embeddings ---------------------------------------------


@dataclass
class EmbeddedBatch:
    """A teacher-forced batch lifted to input embeddings. inputs_embeds (B, T, D);
    position_ids (3, B, T) (Qwen2.5-VL's 3-D rope); attention_mask (B, T);
    target (B, T) 1 where a token's log-prob counts in f (predicted from position t-1);
    f_x (B,): f at x where a pass on this batch computed it (a token-level estimator's forward),
    so that the component games need not run their full coalition again."""

    inputs_embeds: torch.Tensor
    position_ids: torch.Tensor
    attention_mask: torch.Tensor
    input_ids: torch.Tensor
    target: torch.Tensor
    f_x: torch.Tensor | None = None


@torch.no_grad()
def embed(model, batch: Batch, target: torch.Tensor) -> EmbeddedBatch:
    """Text embeddings with the vision tower's features scattered into the image-token rows."""
    inner = model.model
    emb = model.get_input_embeddings()(batch.input_ids)
    if batch.pixel_values is not None:
        feats = image_features(model, batch.pixel_values, batch.image_grid_thw)
        mask = (batch.mm_token_type_ids == 1).unsqueeze(-1).expand_as(emb)
        emb = emb.masked_scatter(mask, feats.to(emb.dtype))
    pos, _ = inner.get_rope_index(
        batch.input_ids,
        mm_token_type_ids=batch.mm_token_type_ids,
        image_grid_thw=batch.image_grid_thw,
        attention_mask=batch.attention_mask,
    )
    return EmbeddedBatch(emb, pos, batch.attention_mask, batch.input_ids, target)


def sequence_logprob(
    model, eb: EmbeddedBatch, inputs_embeds: torch.Tensor, rows: torch.Tensor | None = None, past=None,
    end: int | None = None,
) -> torch.Tensor:  # fmt: skip
    """f for each row of `inputs_embeds` (R, T, D): (R,) sums of the target tokens' log-probs.
    Row r is a variant of batch row `rows[r]` (its ids, mask and positions); by default R is a
    multiple of the batch and the batch repeats along R. With `past` (a KV cache of the first P
    positions), `inputs_embeds` (R, end - P, D) holds positions P..end-1 only (`end`: the batch's
    length by default, less when the rows' padding is cut); no target token may lie at or before P.

    The LM head runs on the target positions only: with a real vocabulary (151k for Qwen) the
    full (R, T, V) logits of m interpolation steps would dominate memory and time."""
    if rows is None:
        rows = torch.arange(eb.inputs_embeds.shape[0]).repeat(inputs_embeds.shape[0] // eb.inputs_embeds.shape[0])
    rows = rows.to(eb.input_ids.device)
    T = end or eb.inputs_embeds.shape[1]
    P = T - inputs_embeds.shape[1]
    hidden = model.model(
        inputs_embeds=inputs_embeds,
        attention_mask=eb.attention_mask[rows, :T],
        position_ids=eb.position_ids[:, rows, P:T],
        past_key_values=past,
    ).last_hidden_state[:, :-1]  # (R, T-P-1, D): position t predicts token t+1
    r, cols = eb.target[rows, P + 1 : T].nonzero(as_tuple=True)
    logits = model.lm_head(hidden[r, cols])  # (N_target, V)
    ids = eb.input_ids[rows, P + 1 : T][r, cols]
    lp = torch.log_softmax(logits.float(), -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    return torch.zeros(inputs_embeds.shape[0], dtype=lp.dtype, device=lp.device).index_add(0, r, lp)


def kv_cache(kv: list | None):
    """A transformers cache from per-layer (keys, values); None for none."""
    from transformers import DynamicCache

    return DynamicCache(kv) if kv else None


def forward_kv(model, emb: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor, past: list | None = None) -> list:
    """Per layer (keys, values) (R, H, L, d) of the positions whose embeddings are `emb` (R, L, D),
    run on top of `past` (per layer (keys, values) of the positions before them, or None); `mask`
    covers past and new positions, `pos` (3, R, L) the new ones. The one prefix-cache forward of
    the term's passes (here and `games.segment_cache`)."""
    out = model.model(inputs_embeds=emb, attention_mask=mask, position_ids=pos, past_key_values=kv_cache(past),
                      use_cache=True)  # fmt: skip
    return [(layer.keys, layer.values) for layer in out.past_key_values.layers]


@torch.no_grad()
def _head_cache(model, eb: EmbeddedBatch, P: int):
    """The KV cache of positions 0..P-1 of every row: computed once and shared where all rows
    have the same embeddings, positions and mask there, else per row."""
    x, B = eb.inputs_embeds[:, :P], eb.inputs_embeds.shape[0]
    same = bool((x == x[:1]).all() and (eb.position_ids[:, :, :P] == eb.position_ids[:, :1, :P]).all()
                and eb.attention_mask[:, :P].all())  # fmt: skip
    rows = slice(0, 1) if same else slice(None)
    kv = forward_kv(model, x[rows], eb.attention_mask[rows, :P], eb.position_ids[:, rows, :P])
    return kv_cache([(k.expand(B, -1, -1, -1), v.expand(B, -1, -1, -1)) for k, v in kv])


# --- Integrated Gradients -------------------------------------------------------------------------


def baseline_embeddings(model, processor, batch: Batch, eb: EmbeddedBatch, kind: Baseline) -> torch.Tensor | None:
    """x' for every row: `zero` (None), `pad` (the pad token's embedding everywhere), or `blank`
    (pad on text rows, the vision features of a blank white image of the same size on image rows)."""
    if kind == "zero":
        return None
    pad = model.get_input_embeddings().weight[processor.pad_token_id].detach()
    base = pad.view(1, 1, -1).expand_as(eb.inputs_embeds).clone()
    if kind == "blank" and batch.pixel_values is not None:
        white = blank_pixels(processor, batch.image_grid_thw.cpu()).to(base.device)
        with torch.no_grad():
            feats = image_features(model, white, batch.image_grid_thw)
        mask = (batch.mm_token_type_ids == 1).unsqueeze(-1).expand_as(base)
        base = base.masked_scatter(mask, feats.to(base.dtype))
    return base


def blank_pixels(processor, grid_thw: torch.Tensor) -> torch.Tensor:
    """Processed pixel values of all-white images with the given patch grids."""
    from PIL import Image

    patch = processor.image_processor.patch_size
    images = [Image.new("RGB", (int(w) * patch, int(h) * patch), (255, 255, 255)) for _, h, w in grid_thw.tolist()]
    pv, grid = processor.images(images)
    assert torch.equal(grid, grid_thw), "blank images must keep the patch grid"
    return pv


@dataclass(kw_only=True)
class Completeness:
    """f_x, f_base (B,); delta (B,) = sum of the attributions - (f(x) - f(x'))."""

    f_x: torch.Tensor
    f_base: torch.Tensor
    delta: torch.Tensor

    @property
    def relative_error(self) -> torch.Tensor:
        """|delta| / |f(x) - f(x')| per row: the completeness check."""
        return self.delta.abs() / (self.f_x - self.f_base).abs().clamp(min=1e-8)


@dataclass(kw_only=True)
class IGResult(Completeness):
    """attributions (B, T, D) per embedding coordinate."""

    attributions: torch.Tensor


def integrated_gradients(
    model,
    inputs: EmbeddedBatch,
    baselines: torch.Tensor | None = None,
    n_steps: int | None = None,
    rule: Rule = "gausslegendre",
    chunk: int = 64,
    completeness: bool = True,
) -> IGResult:
    """IG of f w.r.t. the input embeddings, captum-style: `attribute(inputs, baselines, n_steps)`
    with the target turn carried in `inputs.target`. `chunk` caps rows per forward pass.

    Gradients are taken w.r.t. the path only (`autograd.grad`): no weight gradient is computed.
    `completeness=False` skips f(x) and f(x') where the rule has no end-point nodes (delta NaN).
    `n_steps` defaults to N_STEPS, the library's m (`AttributionSettings.n_steps` reads it too)."""
    x = inputs.inputs_embeds.detach()  # (B, T, D)
    base = torch.zeros_like(x) if baselines is None else baselines.to(x.dtype).expand_as(x)
    w, alphas = quadrature(n_steps or N_STEPS, rule)
    B = x.shape[0]
    grad_sum = torch.zeros_like(x)
    per_chunk = max(1, chunk // B)  # interpolation steps per forward pass
    f_at: dict[float, torch.Tensor] = {}  # f on the path's end points, where the rule has them
    for k0 in range(0, n_steps, per_chunk):
        ks = range(k0, min(n_steps, k0 + per_chunk))
        a = alphas[k0 : ks.stop].to(x.dtype).to(x.device).view(-1, 1, 1, 1)
        path = (base.unsqueeze(0) + a * (x - base).unsqueeze(0)).reshape(-1, *x.shape[1:])  # (k*B, T, D)
        path.requires_grad_(True)
        with torch.enable_grad():
            f = sequence_logprob(model, inputs, path)
            (g,) = torch.autograd.grad(f.sum(), path)
        for j, k in enumerate(ks):
            if float(alphas[k]) in (0.0, 1.0):
                f_at[float(alphas[k])] = f.detach().view(len(ks), B)[j]
        wk = w[k0 : ks.stop].to(x.dtype).to(x.device).view(-1, 1, 1, 1)
        grad_sum += (g.view(len(ks), *x.shape) * wk).sum(0)
    attributions = (x - base) * grad_sum
    nan = torch.full((B,), math.nan, dtype=attributions.dtype, device=x.device)
    if completeness and 1.0 not in f_at and inputs.f_x is not None:
        f_at[1.0] = inputs.f_x.to(x.dtype)  # a pass on this batch has f(x) already
    if completeness and len(f_at) < 2:
        with torch.no_grad():  # one forward of the missing end points
            ends = [e for e in (0.0, 1.0) if e not in f_at]
            f_ends = sequence_logprob(model, inputs, torch.cat([x if e else base for e in ends])).view(len(ends), B)
        f_at.update(zip(ends, f_ends, strict=True))
    f_x, f_b = f_at.get(1.0, nan), f_at.get(0.0, nan)
    delta = attributions.sum((1, 2)) - (f_x - f_b)
    return IGResult(attributions=attributions.detach(), f_x=f_x, f_base=f_b, delta=delta)


def gradient_times_delta(
    model, inputs: EmbeddedBatch, baselines: torch.Tensor | None = None, completeness: bool = True, start: int = 0
) -> IGResult:
    """(x - x') * df/dx at x: one forward + backward (the one-backward signal of gradient-based
    attribution rewards). Not IG: it equals IG only where f is linear along the path; its
    `delta` is its completeness gap, reported, never enforced (f(x') costs one more forward).

    `start` > 0: only positions start.. are attributed (the others get 0): the positions before
    run without gradient, once for all rows where every row has the same ones (a GRPO group's
    system prompt and tool spec, when region shares read only the image tokens after them)."""
    x0 = inputs.inputs_embeds.detach()
    base = torch.zeros_like(x0) if baselines is None else baselines.to(x0.dtype).expand_as(x0)
    head = _head_cache(model, inputs, start) if start > 0 else None
    x = x0[:, start:].clone().requires_grad_(True)  # (B, T - start, D)
    with torch.enable_grad():
        f_x = sequence_logprob(model, inputs, x, past=head)
        (g,) = torch.autograd.grad(f_x.sum(), x)
    f_b = torch.full_like(f_x.detach(), math.nan)
    if completeness:
        with torch.no_grad():
            f_b = sequence_logprob(model, inputs, base)
    attributions = torch.zeros_like(x0)
    attributions[:, start:] = (x.detach() - base[:, start:]) * g
    delta = attributions.sum((1, 2)) - (f_x.detach() - f_b)
    return IGResult(attributions=attributions.detach(), f_x=f_x.detach(), f_base=f_b, delta=delta)
