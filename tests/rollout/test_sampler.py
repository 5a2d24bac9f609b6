"""The lean sampler draws exactly what transformers' `generate` draws, on multi-image, left-padded
batches, sampled and greedy; images go through the vision tower once per rollout."""

from __future__ import annotations

import copy
import random

import pytest
import torch

from iapo.rollout.loop import Episode, RolloutConfig, generate_turn, rollout
from iapo.rollout.sampler import VisionCache
from iapo.supervised.sft import sft_segments


def _mid_episode(ex, k: int) -> Episode:
    """A demonstration cut after its k-th tool output: a prompt ending where the model speaks,
    with 1 + k images (k = 0: the question alone)."""
    segs = sft_segments(ex, random.Random(ex.id), tools=True)
    outs = [i for i, s in enumerate(segs) if s.kind == "tool_output"]
    end = outs[k - 1] + 1 if k and len(outs) >= k else 4
    return Episode(ex, segs[:end])


@pytest.fixture(scope="module")
def batch(small_world):
    exs = small_world.load("val", limit=12)
    return [_mid_episode(ex, i % 3) for i, ex in enumerate(exs)]


@pytest.mark.parametrize(
    "cfg",
    [
        RolloutConfig(max_new_tokens=24),
        RolloutConfig(max_new_tokens=24, greedy=True),
        RolloutConfig(max_new_tokens=16, temperature=0.7, top_p=0.9),
    ],
    ids=["sample", "greedy", "temperature-top_p"],
)
def test_lean_sampler_draws_what_generate_draws(tiny_models, batch, cfg):
    model, proc = tiny_models["student"]
    model.eval()
    assert len({len(e.segments) for e in batch}) > 1  # rows of different lengths and image counts
    # an untrained model rarely emits <|im_end|>: end turns on a token it does emit, so rows stop
    # at different steps and the finished rows' padding is exercised
    torch.manual_seed(0)
    rows = [ids for ids, _ in generate_turn(model, proc, batch, cfg)]
    proc = copy.copy(proc)  # a token the first row draws at its 4th step
    proc.eos_token_id = rows[0][3]
    torch.manual_seed(0)
    ref = generate_turn(model, proc, batch, cfg)
    torch.manual_seed(0)
    lean = generate_turn(model, proc, batch, cfg, VisionCache(model))
    assert lean == ref
    assert any(len(ids) < cfg.max_new_tokens and not truncated for ids, truncated in ref)  # early stops


def test_a_rollout_is_the_same_with_either_sampler(tiny_models, small_world):
    model, proc = tiny_models["student"]
    exs = [ex for ex in small_world.load("val", limit=4) for _ in range(3)]
    runs = {}
    for sampler in ("generate", "lean"):
        torch.manual_seed(1)
        eps = rollout(model, proc, exs, RolloutConfig(max_calls=2, max_new_tokens=20, sampler=sampler))
        runs[sampler] = [[t.ids for t in e.turns] for e in eps]
    assert runs["lean"] == runs["generate"]


def test_each_image_goes_through_the_vision_tower_once(tiny_models, batch, monkeypatch):
    model, proc = tiny_models["student"]
    seen = []
    real = model.model.get_image_features

    def counting(pv, grid, **kw):
        seen.append(int(grid.shape[0]))
        return real(pv, grid, **kw)

    monkeypatch.setattr(model.model, "get_image_features", counting)
    vision = VisionCache(model)
    cfg = RolloutConfig(max_new_tokens=4, greedy=True)
    generate_turn(model, proc, batch, cfg, vision)
    generate_turn(model, proc, batch, cfg, vision)  # the next turn shows the same images again
    n_images = sum(len(s.images) for e in batch for s in e.segments)
    assert seen == [n_images]


def test_pixels_are_computed_once_per_image_and_equal_the_batched_processor(tiny_models, small_world):
    _, proc = tiny_models["student"]
    images = [
        s.images[0]
        for ex in small_world.load("val", limit=3)
        for s in sft_segments(ex, random.Random(0), tools=True)
        if s.images
    ]
    ref = proc.image_processor(images=images, return_tensors="pt")
    pv, grid = proc.images(images)
    assert torch.equal(pv, ref["pixel_values"]) and torch.equal(grid, ref["image_grid_thw"])
    assert proc.pixels(images[0])[0] is proc.pixels(images[0])[0]  # cached, not recomputed
