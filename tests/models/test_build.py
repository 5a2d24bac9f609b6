from __future__ import annotations

import torch

from iapo.models.build import load, load_meta, save
from iapo.rollout.episode import collate, encode
from iapo.supervised.sft import sft_segments


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
    """Without mm_token_type_ids the model silently uses 1-D RoPE (measured with transformers 5); ours are passed."""
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


def test_rope_theta_reaches_the_model(tokenizers):
    """The spec's RoPE base sets how fast the (temporal, height, width) sections turn: at 1e4 the
    width section of a 32-dim head turns by < 0.01 rad per position, at 100 every section by more."""
    from iapo.models.build import ModelSpec, build_model, make_processor, mrope_section

    for theta, slow_enough in [(100.0, True), (10000.0, False)]:
        spec = ModelSpec(rope_theta=theta)
        model = build_model(spec, make_processor(tokenizers["main"], spec), seed=0)
        assert model.config.text_config.rope_parameters["rope_theta"] == spec.rope_theta
        inv_freq = model.model.language_model.rotary_emb.inv_freq  # (head_dim / 2,)
        assert len(inv_freq) == sum(mrope_section(spec.hidden // spec.heads))
        assert (inv_freq.min().item() > 0.01) == slow_enough


def test_the_patch_embedding_as_a_matmul_matches_the_conv3d(tiny_models):
    """RL runs the vision patch embedding as a matrix product (iapo.models.build.fast_patch_embed);
    the zoo is built with transformers' Conv3d, so zoo seeds give the models they gave before."""
    import copy

    import torch

    from iapo.models.build import fast_patch_embed

    model, _ = tiny_models["student"]
    pe = model.model.visual.patch_embed
    assert "forward" not in vars(pe)  # built and loaded models keep transformers' forward
    x = torch.randn(64, pe.proj.weight[0].numel())
    fast = fast_patch_embed(copy.deepcopy(model)).model.visual.patch_embed
    assert torch.allclose(fast(x), pe(x), atol=1e-5) and fast(x).shape == pe(x).shape


def test_a_repeated_image_goes_through_the_vision_tower_once(tiny_models, small_world, monkeypatch):
    """image_features: a group's rows repeat their question's image; each distinct image runs
    once and the features are those of the whole batch run through the tower."""
    from iapo.models.build import image_features
    from iapo.world.dataset import example_image

    model, proc = tiny_models["student"]
    exs = small_world.load("val")[:2]
    a, b = (example_image(ex) for ex in exs)
    pv, grid = proc.images([a, b, a, a])
    with torch.no_grad():
        ref = torch.cat(model.model.get_image_features(pv, grid).pooler_output)
        seen = []
        tower = model.model.get_image_features
        monkeypatch.setattr(model.model, "get_image_features", lambda p, g: seen.append(len(g)) or tower(p, g))
        out = image_features(model, pv, grid)
    assert seen == [2] and out.shape == ref.shape
    assert torch.allclose(out, ref, atol=1e-5)
