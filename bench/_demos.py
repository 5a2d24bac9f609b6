"""Val demonstration episodes of a world, lifted to one model's input embeddings: the batch the IG
benchmarks (ig_quadrature.py, ig_path.py) attribute, the final answer turn as the target."""

from __future__ import annotations

import random
from pathlib import Path

from iapo.attribution import EmbeddedBatch, embed
from iapo.models.build import load
from iapo.rollout.episode import Batch, Segment, collate, encode
from iapo.supervised.sft import sft_segments
from iapo.world import World


def demo_segments(world: Path, episodes: int) -> list[list[Segment]]:
    """The first `episodes` val questions as demonstrations that call a tool (fixed seed)."""
    rng = random.Random(0)
    return [sft_segments(ex, rng, tools=True) for ex in World(world).load("val")[:episodes]]


def demo_batch(model_dir: Path, segs: list[list[Segment]]) -> tuple[object, object, Batch, EmbeddedBatch]:
    """(model, processor, batch, embedded batch) with the final assistant turn as f's target."""
    model, proc = load(model_dir)
    model.eval()
    encs = [encode(s, proc) for s in segs]
    masks = [e.assistant_mask(only=sum(k == "assistant" for k in e.kinds) - 1) for e in encs]
    batch = collate(encs, proc.pad_token_id, masks)
    return model, proc, batch, embed(model, batch, batch.completion_mask)
