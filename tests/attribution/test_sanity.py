"""Sanity of the attribution: once a model has learned to answer from what the tools show, the
visual components (image + tool outputs) take a larger share of the answer turn's attribution
than in an untrained model.

Measured on the quickstart's trained teacher (chart_value, 16 val episodes, m = 16): with tools,
visual share 0.48 (pad baseline) / 0.48 (blank) vs 0.23 / 0.17 untrained; without tools the
image share is 0.15 (pad) / 0.08 (blank) vs 0.17 / 0.06 untrained: the question, which names the
bar to read, then carries most of it. So the test uses tool episodes."""

from __future__ import annotations

import random

import torch

from iapo.attribution import AttributionSettings, attribute_episodes
from iapo.models.build import ModelSpec, build_model, make_processor
from iapo.rollout.episode import COMPONENTS
from iapo.supervised.pretrain import PretrainConfig, load_vision, pretrain_vision
from iapo.supervised.sft import sft_segments, train_sft
from iapo.supervised.zoo import ZooSFTConfig

VISUAL = [COMPONENTS.index("image"), COMPONENTS.index("tool_output")]


def test_trained_model_attributes_more_to_the_image(small_world, tokenizers, tmp_path):
    """Questions whose answer is only in the image: chart values, answered after a tool call."""
    spec = ModelSpec(hidden=64, heads=2, layers=2, intermediate=128, vision_hidden=32)
    proc = make_processor(tokenizers["main"], spec)
    train = [e for e in small_world.load("train") if e.family == "chart_value"]
    val = [e for e in small_world.load("val") if e.family == "chart_value"][:12]
    pretrain_vision(train, val, spec, proc, PretrainConfig(steps=80, batch_images=16, eval_every=80), tmp_path / "v")
    untrained = build_model(spec, proc, seed=1)
    trained = build_model(spec, proc, seed=1)
    load_vision(trained, tmp_path / "v" / "vision.pt")
    cfg = ZooSFTConfig(text_steps=0, steps=150, batch_size=16, lr=3e-3, no_tools_share=0.0, warmup=10)
    train_sft(trained, proc, train, cfg, tmp_path / "sft")
    rng = random.Random(0)
    episodes = [sft_segments(ex, rng, tools=True) for ex in val]

    def visual_share(model) -> float:
        turns = attribute_episodes(model, proc, episodes, "final", AttributionSettings(estimator="ig", n_steps=16))
        return float(torch.stack([t[0].p for t in turns])[:, VISUAL].sum(-1).mean())

    before, after = visual_share(untrained), visual_share(trained)
    assert after > before, (before, after)
