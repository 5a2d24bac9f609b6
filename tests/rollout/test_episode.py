"""Component spans must be exact: they are what the attribution sums over."""

from __future__ import annotations

import random

import pytest
import torch

from iapo.models.tokenizer import IMAGE_PAD
from iapo.rollout.episode import COMPONENTS, encode, full_text
from iapo.supervised.sft import sft_segments


@pytest.mark.parametrize("name", ["student", "teacher_alt"])
def test_segment_spans_match_processor_tokenization(tiny_models, small_world, name):
    _, proc = tiny_models[name]
    for ex in small_world.load("val", limit=20):
        segs = sft_segments(ex, random.Random(ex.id), tools=True)
        enc = encode(segs, proc)
        images = [im for s in segs for im in s.images]
        ref = proc([full_text(segs)], [images])
        assert torch.equal(enc.input_ids, ref["input_ids"][0]), ex.id
        assert torch.equal(enc.mm_token_type_ids, ref["mm_token_type_ids"][0])
        # spans tile the sequence, in order, and each decodes back to its segment's text
        assert enc.spans[0][0] == 0 and enc.spans[-1][1] == len(enc)
        for (_, e), (s2, _) in zip(enc.spans, enc.spans[1:], strict=False):
            assert e == s2
        for seg, (s, e) in zip(segs, enc.spans, strict=False):
            text = proc.tokenizer.decode(enc.input_ids[s:e].tolist())
            n_img = int((enc.input_ids[s:e] == proc.image_token_id).sum())
            assert text.replace(IMAGE_PAD * n_img, IMAGE_PAD) == seg.text if n_img else text == seg.text


def test_components_cover_every_input_token(tiny_models, small_world):
    _, proc = tiny_models["student"]
    ex = small_world.load("val", limit=1)[0]
    segs = sft_segments(ex, random.Random(0), tools=True)
    enc = encode(segs, proc)
    n_turns = sum(s.kind == "assistant" for s in segs)
    last = n_turns - 1
    comp = enc.component_ids(target_turn=last)
    target = enc.assistant_mask(only=last).bool()
    start_target = int(target.nonzero()[0])
    assert (comp[:start_target] >= 0).all()  # every input token has exactly one component
    assert (comp[target] == -1).all()
    names = {COMPONENTS[i] for i in comp[comp >= 0].tolist()}
    assert {"system", "tool_spec", "question", "image"} <= names
    if n_turns > 1:
        assert {"tool_output", "history"} <= names
    # image tokens are exactly the image and tool_output image pads
    img = enc.input_ids[:start_target] == proc.image_token_id
    assert set(comp[:start_target][img].tolist()) <= {COMPONENTS.index("image"), COMPONENTS.index("tool_output")}
