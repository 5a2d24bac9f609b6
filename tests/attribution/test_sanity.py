"""Sanity of the attribution: once a model has learned to read the answer off the image, the
image component's share of the answer turn's attribution grows over an untrained model's."""

from __future__ import annotations

import random

import torch

from iapo.attribution import attribute_episodes
from iapo.models.build import ModelSpec, build_model, make_processor
from iapo.rollout.episode import COMPONENTS
from iapo.train.pretrain import PretrainConfig, load_vision, pretrain_vision
from iapo.train.sft import SFTConfig, sft_segments, train_sft

IMAGE = COMPONENTS.index("image")


def test_trained_model_attributes_more_to_the_image(small_world, tokenizers, tmp_path):
    """Questions whose answer is only in the image: chart values, answered without tools."""
    spec = ModelSpec(hidden=64, heads=2, layers=2, intermediate=128, vision_hidden=32)
    proc = make_processor(tokenizers["main"], spec)
    train = [e for e in small_world.load("train") if e.family == "chart_value"]
    val = [e for e in small_world.load("val") if e.family == "chart_value"][:12]
    pretrain_vision(train, val, spec, proc, PretrainConfig(steps=80, batch_images=16, eval_every=80), tmp_path / "v")
    untrained = build_model(spec, proc, seed=1)
    trained = build_model(spec, proc, seed=1)
    load_vision(trained, tmp_path / "v" / "vision.pt")
    cfg = SFTConfig(text_steps=0, steps=150, batch_size=16, lr=3e-3, no_tools_share=1.0, warmup=10)
    train_sft(trained, proc, train, cfg, tmp_path / "sft")
    rng = random.Random(0)
    episodes = [sft_segments(ex, rng, tools=False) for ex in val]

    def image_share(model) -> float:
        turns = attribute_episodes(model, proc, episodes, "final", n_steps=16)
        return float(torch.stack([t[0].p for t in turns])[:, IMAGE].mean())

    before, after = image_share(untrained), image_share(trained)
    assert after > before, (before, after)
