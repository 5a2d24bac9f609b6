"""Sampling one turn for a batch of episodes: the model's own prefill, then a lean decode loop.

Why hand-written (instead of `model.generate`): on the toolkit's small models `generate` spends
most of a decoded token in Python (cache objects, mask building, logits processors, stopping
criteria, kwargs plumbing), several times the arithmetic; and every turn of an episode pushed
all of the episode's images through the vision tower again. Here

- the prompt goes through the model's forward once, with `generate`'s own 3-D rope positions and
  with image features from `VisionCache` (each image through the vision tower once per rollout,
  passed as `mm_encoder_outputs`);
- each next token goes through the decoder's own modules (its norms, projections, rotary
  embedding and transformers' SDPA attention) on a preallocated KV cache with a padding mask;
- the sampling rule is `generate`'s: suppressed ids to -inf, temperature, top-p, then a
  multinomial draw over the float32 softmax (argmax when greedy); finished rows get pad ids.

A seeded turn draws the same tokens as `generate` (tests/rollout/test_sampler.py compares them).
"""

from __future__ import annotations

import torch
from PIL import Image
from transformers import DynamicCache
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb

from iapo.models.processor import PerObject


def supports(model) -> bool:
    """Whether the lean decode loop covers this model: full attention in every layer (a model
    with sliding-window layers samples with `generate`)."""
    return not getattr(model.model.language_model, "has_sliding_layers", False)


class VisionCache:
    """Features of the images seen in one rollout: the policy's weights do not change during a
    rollout, so each image (by object) goes through the vision tower once, however many turns
    show it again. Entries go with their images."""

    def __init__(self, model) -> None:
        self.model = model
        self._feats = PerObject()

    def features(
        self, images: list[Image.Image], pixels: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> list[torch.Tensor]:
        """Per image, its merged-token features (n_tokens_i, hidden); `pixels[i]` = (pixel_values,
        grid_thw) of images[i]. New images go through the tower together, in one call."""
        new = [i for i, im in enumerate(images) if self._feats.get(im) is None]
        if new:
            dev = self.model.device
            pv = torch.cat([pixels[i][0] for i in new]).to(dev)
            grid = torch.cat([pixels[i][1] for i in new]).to(dev)
            out = self.model.model.get_image_features(pv, grid, return_dict=True).pooler_output
            for i, f in zip(new, out, strict=True):
                self._feats.put(images[i], f)
        return [self._feats.get(im) for im in images]


def _prefill(model, batch: dict[str, torch.Tensor], feats: list[torch.Tensor], max_new: int):
    """The prompt through the model's forward: (last-position logits (B, V), KV buffers per layer,
    (B,) next rope position, (B, n + max_new) bool attention mask)."""
    kwargs = {k: v for k, v in batch.items() if k in ("attention_mask", "mm_token_type_ids", "image_grid_thw")}
    ids = batch["input_ids"]
    position_ids = model._prepare_position_ids_for_generation(ids, {"input_ids": ids, **kwargs})  # (4, B, n)
    cache = DynamicCache(config=model.config)
    mm = {"image": BaseModelOutputWithPooling(pooler_output=feats)} if feats else None
    out = model(
        input_ids=ids, position_ids=position_ids, past_key_values=cache, use_cache=True, logits_to_keep=1,
        mm_encoder_outputs=mm, **kwargs,
    )  # fmt: skip
    B, n = ids.shape
    kv = []
    for layer in cache.layers:
        k = layer.keys.new_empty((*layer.keys.shape[:2], n + max_new, layer.keys.shape[-1]))
        v = torch.empty_like(k)
        k[:, :, :n], v[:, :, :n] = layer.keys, layer.values
        kv.append((k, v))
    mask = torch.zeros((B, n + max_new), dtype=torch.bool, device=ids.device)
    mask[:, :n] = batch["attention_mask"].bool()
    next_pos = position_ids[1:, :, -1].max(0).values + 1  # (B,): text tokens share one position on all 3 axes
    return out.logits[:, -1].to(copy=True, dtype=torch.float32), kv, next_pos, mask


def _decode_step(model, tokens: torch.Tensor, pos: torch.Tensor, kv: list, mask: torch.Tensor, t: int) -> torch.Tensor:
    """One token per row through the decoder; writes its keys/values at column t. -> (B, V) float32."""
    lm = model.model.language_model
    x = lm.embed_tokens(tokens[:, None])  # (B, 1, H)
    cos, sin = lm.rotary_emb(x, pos.view(1, -1, 1).expand(3, -1, 1))
    attn_mask = mask[:, None, None, : t + 1]  # (B, 1, 1, L)
    for layer, (kbuf, vbuf) in zip(lm.layers, kv, strict=True):
        a = layer.self_attn
        h = layer.input_layernorm(x)
        q = a.q_proj(h).view(x.shape[0], 1, -1, a.head_dim).transpose(1, 2)
        k = a.k_proj(h).view(x.shape[0], 1, -1, a.head_dim).transpose(1, 2)
        v = a.v_proj(h).view(x.shape[0], 1, -1, a.head_dim).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        kbuf[:, :, t], vbuf[:, :, t] = k[:, :, 0], v[:, :, 0]
        o, _ = sdpa_attention_forward(a, q, kbuf[:, :, : t + 1], vbuf[:, :, : t + 1], attn_mask, scaling=a.scaling)
        x = x + a.o_proj(o.reshape(x.shape[0], 1, -1))
        x = x + layer.mlp(layer.post_attention_layernorm(x))
    return model.lm_head(lm.norm(x))[:, -1].float()


def _next_tokens(logits: torch.Tensor, suppress: torch.Tensor, greedy: bool, temperature: float, top_p: float):
    """`generate`'s sampling rule on (B, V) float32 logits."""
    scores = logits.masked_fill(suppress, -float("inf"))
    if greedy:
        return scores.argmax(-1)
    if temperature != 1.0:
        scores = scores / temperature
    if top_p < 1.0:
        order, idx = torch.sort(scores, descending=False)
        drop = order.softmax(-1).cumsum(-1) <= (1 - top_p)
        drop[..., -1:] = False
        scores = scores.masked_fill(drop.scatter(1, idx, drop), -float("inf"))
    return torch.multinomial(scores.softmax(-1), num_samples=1).squeeze(1)


@torch.no_grad()
def sample_turn(
    model, batch: dict[str, torch.Tensor], feats: list[torch.Tensor], max_new_tokens: int, eos_id: int,
    pad_id: int, suppress_ids: list[int], greedy: bool = False, temperature: float = 1.0, top_p: float = 1.0,
    expand: torch.Tensor | None = None,
) -> torch.Tensor:  # fmt: skip
    """Left-padded `batch` (input_ids, attention_mask, mm_token_type_ids[, image_grid_thw]) on the
    model's device -> (B, <= max_new_tokens) generated ids, pad after a row's EOS. `expand` (B,):
    the batch holds distinct prompts and row b of the turn samples from prompt expand[b] (a GRPO
    group's episodes start from one prompt: it is prefilled once)."""
    greedy = greedy or temperature == 0
    logits, kv, pos, mask = _prefill(model, batch, feats, max_new_tokens)
    if expand is not None:
        logits, pos, mask = logits[expand], pos[expand], mask[expand]
        kv = [(k[expand], v[expand]) for k, v in kv]
    B, n = mask.shape[0], batch["input_ids"].shape[1]
    suppress = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
    suppress[suppress_ids] = True
    unfinished = torch.ones(B, dtype=torch.bool, device=logits.device)
    out = []
    for s in range(max_new_tokens):
        tok = _next_tokens(logits, suppress, greedy, temperature, top_p)
        tok = torch.where(unfinished, tok, pad_id)
        out.append(tok)
        unfinished &= tok != eos_id
        if s == max_new_tokens - 1 or not bool(unfinished.any()):
            break
        mask[:, n + s] = True
        logits = _decode_step(model, tok, pos, kv, mask, n + s)
        pos = pos + 1
    return torch.stack(out, 1)
