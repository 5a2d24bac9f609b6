"""Teacher-forced log-probabilities of episodes' generated tokens (`token_logprobs`): what the
GRPO update, its reference model and the distillation reward score an episode with.

A GRPO group's G episodes start from one prompt (system, tool spec, image, question: most of an
episode's tokens, and its image the largest part of the vision tower's work). A causal model's
states over that prompt do not depend on what follows, so the prompt can go through the vision
tower and the decoder once, its keys and values shared by the G rows, and only each row's own
continuation (its turns and tool outputs) run per row (`prefix_hidden`). Gradients reach the
shared prompt from every row: the same sum as G copies, up to float summation order.
Hand-written because a KV prefix with gradients is not something `forward` offers;
tests/rl/test_grpo.py compares it with the full batch.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache

from iapo.rollout.episode import Batch, Encoded

MIN_PREFIX = 16  # below this, one forward of the whole batch is as cheap


def shared_prompt_length(encs: list[Encoded]) -> int:
    """P: the leading tokens (and whole images) every row shares, ending before the first token
    the loss scores (position t is predicted from t - 1, which must lie in a row's own part);
    0 if fewer than MIN_PREFIX or a single row. (The attribution's `games.shared_prefix` finds
    the same thing on embeddings, after the vision tower; here it is found on tokens and pixels,
    before it, so the shared image goes through the tower once.)"""
    if len(encs) < 2:
        return 0
    masks = [e.assistant_mask() for e in encs]
    first = min(int(m.nonzero()[0]) if m.any() else len(m) for m in masks)
    ids = [e.input_ids for e in encs]
    n = min(min(len(x) for x in ids), first - 1)
    same = torch.stack([x[:n] == ids[0][:n] for x in ids[1:]]).all(0)
    P = int(same.long().cumprod(0).sum())
    k = _images_before(encs[0], P)
    if any(_images_before(e, P) != k for e in encs):  # an image cut by P: stop before it
        return 0
    patches = sum(int(g.prod()) for g in encs[0].image_grid_thw[:k]) if k else 0
    for e in encs[1:]:
        if k and not torch.equal(e.pixel_values[:patches], encs[0].pixel_values[:patches]):
            return 0
    return P if P >= MIN_PREFIX else 0


def _images_before(e: Encoded, P: int) -> int:
    """How many of e's images have all their tokens before position P (-1: one is cut by P)."""
    if e.image_grid_thw is None:
        return 0
    runs = torch.diff(torch.nn.functional.pad(e.mm_token_type_ids.bool().long(), (1, 1)))
    starts, ends = (runs == 1).nonzero().flatten().tolist(), (runs == -1).nonzero().flatten().tolist()
    if any(s < P < end for s, end in zip(starts, ends, strict=True)):
        return -1
    return sum(end <= P for end in ends)


def _embed(model, ids: torch.Tensor, mm: torch.Tensor, pv: torch.Tensor | None, grid: torch.Tensor | None):
    """Token embeddings with image features scattered into the image-token rows (row-major)."""
    emb = model.get_input_embeddings()(ids)
    if pv is not None:
        feats = torch.cat(model.model.get_image_features(pv, grid).pooler_output).to(emb.dtype)
        emb = emb.masked_scatter((mm == 1).unsqueeze(-1).expand_as(emb), feats)
    return emb


def prefix_hidden(model, batch: Batch, encs: list[Encoded], P: int) -> torch.Tensor:
    """Hidden states (B, T - P, D) of positions P..T-1 of every row, its first P positions run
    once for all rows. `batch` = collate(encs) on the model's device."""
    dev = batch.input_ids.device
    k = _images_before(encs[0], P)
    pos, _ = model.model.get_rope_index(
        batch.input_ids, mm_token_type_ids=batch.mm_token_type_ids, image_grid_thw=batch.image_grid_thw,
        attention_mask=batch.attention_mask,
    )  # (3, B, T)  # fmt: skip
    patches = [sum(int(g.prod()) for g in e.image_grid_thw[:k]) if k else 0 for e in encs]
    head_pv = encs[0].pixel_values[: patches[0]].to(dev) if k else None
    head = _embed(model, batch.input_ids[:1, :P], batch.mm_token_type_ids[:1, :P], head_pv,
                  encs[0].image_grid_thw[:k].to(dev) if k else None)  # (1, P, D)  # fmt: skip
    out = model.model(inputs_embeds=head, attention_mask=batch.attention_mask[:1, :P], position_ids=pos[:, :1, :P],
                      use_cache=True)  # fmt: skip
    B = batch.input_ids.shape[0]
    past = DynamicCache([(lay.keys.expand(B, -1, -1, -1), lay.values.expand(B, -1, -1, -1))
                         for lay in out.past_key_values.layers])  # fmt: skip
    tails = [(e.pixel_values[p:], e.image_grid_thw[k:]) for e, p in zip(encs, patches, strict=True)
             if e.image_grid_thw is not None and len(e.image_grid_thw) > k]  # fmt: skip
    tail_pv = torch.cat([t[0] for t in tails]).to(dev) if tails else None
    tail_grid = torch.cat([t[1] for t in tails]).to(dev) if tails else None
    tail = _embed(model, batch.input_ids[:, P:], batch.mm_token_type_ids[:, P:], tail_pv, tail_grid)  # (B, T-P, D)
    return model.model(inputs_embeds=tail, attention_mask=batch.attention_mask, position_ids=pos[:, :, P:],
                       past_key_values=past).last_hidden_state  # fmt: skip


def token_logprobs(
    model, batch: Batch, with_entropy: bool = False, encs: list[Encoded] | None = None, prefix: int = 0
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log p(ids[t] | ids[<t]) for t >= 1: (B, T-1); optionally the entropy of each position.
    `batch` must be on the model's device. Only the positions the loss reads (the completion mask)
    get values, 0 elsewhere: the LM head and the full-vocabulary log-softmax run on those rows
    alone (an episode is mostly prompt and image tokens). `prefix` P > 0 (`prefix_hidden`): the rows
    share their first P tokens (`encs` = the rows' encodings), which run once. A wrapped model
    (DDP, DeepSpeed) must be called whole: it runs every row in full and the head on every
    position; the values are the same up to float rounding."""
    sel = batch.completion_mask[:, 1:].bool()  # (B, T-1)
    ids = batch.input_ids[:, 1:][sel]  # (N,)
    plain = hasattr(model, "lm_head") and hasattr(model, "model")
    if plain and prefix > 0 and encs is not None:
        hidden = prefix_hidden(model, batch, encs, prefix)[:, :-1]  # (B, T-1-P, H): predicts tokens P+1..
        logits = model.lm_head(hidden[sel[:, prefix:]]).float()  # sel[:, :P] is empty (shared_prompt_length)
    elif plain:
        hidden = model.model(**batch.model_inputs()).last_hidden_state[:, :-1]  # (B, T-1, H)
        logits = model.lm_head(hidden[sel]).float()  # (N, V)
    else:
        logits = model(**batch.model_inputs()).logits[:, :-1][sel].float()
    logp_all = torch.log_softmax(logits, -1)
    lp = torch.zeros(sel.shape, dtype=logp_all.dtype, device=logits.device)
    lp[sel] = logp_all.gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    ent = None
    if with_entropy:
        with torch.no_grad():
            ent = torch.zeros_like(lp)
            ent[sel] = -(logp_all.exp() * logp_all).sum(-1)
    return lp, ent
