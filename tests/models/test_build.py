from __future__ import annotations

import torch

from iapo.models.build import load, load_meta, save
from iapo.rollout.episode import collate, encode
from iapo.train.sft import sft_segments


def test_save_load_identical_logits(tiny_models, small_world, tmp_path):
    import random

    model, proc = tiny_models["student"]
    ex = small_world.load("val", limit=1)[0]
    batch = collate([encode(sft_segments(ex, random.Random(0), True), proc)], proc.pad_token_id)
    model.eval()
    with torch.no_grad():
        before = model(**batch.model_inputs()).logits
    save(model, proc, tmp_path / "m", {"role": "student"})
    model2, proc2 = load(tmp_path / "m")
    assert load_meta(tmp_path / "m")["role"] == "student"
    batch2 = collate([encode(sft_segments(ex, random.Random(0), True), proc2)], proc2.pad_token_id)
    assert torch.equal(batch.input_ids, batch2.input_ids)
    with torch.no_grad():
        after = model2(**batch2.model_inputs()).logits
    assert torch.equal(before, after)


def test_mm_token_type_ids_matter(tiny_models, small_world):
    """Without mm_token_type_ids the model silently uses 1-D RoPE (STACK.md); ours are passed."""
    import random

    model, proc = tiny_models["student"]
    ex = small_world.load("val", limit=1)[0]
    b = collate([encode(sft_segments(ex, random.Random(0), True), proc)], proc.pad_token_id)
    model.eval()
    with torch.no_grad():
        with_ids = model(**b.model_inputs()).logits
        inputs = b.model_inputs()
        inputs.pop("mm_token_type_ids")
        model.model.rope_deltas = None
        without = model(**inputs).logits
    assert b.mm_token_type_ids.sum() > 0
    assert not torch.allclose(with_ids, without)
