"""SFT stages on the world: the optional reading stage (research/reading/README.md)."""

from __future__ import annotations

import copy
import json
import random

import numpy as np
import pytest

from iapo.rollout.episode import NO_TOOLS, encode
from iapo.supervised.sft import SFTConfig, _StageBatches, choose_path, plan_step, reading_segments, train_sft
from iapo.supervised.zoo import ZooSFTConfig
from iapo.tools.registry import render_tool_spec, run_tool


def test_reading_episode_shows_both_images_and_trains_the_answer_only(tiny_models, small_world):
    _, proc = tiny_models["student"]
    ex = next(e for e in small_world.load("train") if e.valid_paths)
    segs = reading_segments(ex, random.Random(0), shortest_share=1.0)
    assert [s.kind for s in segs] == ["system", "tool_spec", "image", "image", "question", "assistant"]
    # the first image is the original, the second the output of the (shortest) valid path drawn
    path = choose_path(ex, random.Random(0), 1.0)
    assert len(path) == min(map(len, ex.valid_paths))
    image, layout = ex.load_image(), ex.layout
    for call in path:
        image, layout = run_tool(image, layout, call["name"], call["arguments"])
    assert np.array_equal(np.asarray(segs[2].images[0]), np.asarray(ex.load_image()))
    assert np.array_equal(np.asarray(segs[3].images[0]), np.asarray(image))
    enc = encode(segs, proc)
    mask = enc.assistant_mask()
    start, end = enc.spans[-1]
    assert mask.sum() == end - start and mask[start:end].all()  # loss on the answer turn only
    assert ex.answer in proc.tokenizer.decode(enc.input_ids[start:end])


def test_reading_stage_runs_between_text_and_multimodal_and_resumes(tiny_models, small_world, tmp_path):
    model, proc = tiny_models["student"]
    train = small_world.load("train")
    cfg = ZooSFTConfig(text_steps=0, reading_steps=2, steps=1, batch_size=2, warmup=0, checkpoint_every=1)
    train_sft(model, proc, train, cfg, tmp_path)
    for stage in ("reading", "multimodal"):
        assert (tmp_path / stage / "done.pt").exists()
    rows = [json.loads(x) for x in (tmp_path / "reading" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1] and all(np.isfinite(r["sft_reading/loss"]) for r in rows)
    assert not (tmp_path / "text").exists()


def _losses(run_dir, stage="multimodal"):
    return [json.loads(x)[f"sft_{stage}/loss"] for x in (run_dir / stage / "metrics.jsonl").read_text().splitlines()]


class _Stop(Exception):
    pass


def test_batches_do_not_depend_on_workers_and_a_killed_run_resumes_identically(tiny_models, small_world, tmp_path):
    model, proc = tiny_models["student"]
    train = small_world.load("train")
    cfg = ZooSFTConfig(text_steps=0, steps=5, batch_size=3, warmup=0, checkpoint_every=2, content_weight=1.0)
    runs = {}
    for name, workers in (("single", 0), ("workers", 2)):
        train_sft(copy.deepcopy(model), proc, train, cfg.model_copy(update={"data_workers": workers}), tmp_path / name)
        runs[name] = _losses(tmp_path / name)
    assert runs["workers"] == runs["single"] and len(runs["single"]) == 5

    def stop_at_3(stage, step, total, row):  # a kill after step 3: the last checkpoint is at step 2
        if step == 3:
            raise _Stop

    with pytest.raises(_Stop):
        train_sft(copy.deepcopy(model), proc, train, cfg, tmp_path / "killed", progress=stop_at_3)
    train_sft(copy.deepcopy(model), proc, train, cfg, tmp_path / "killed")
    assert _losses(tmp_path / "killed") == pytest.approx(runs["single"], rel=1e-5)


def test_direct_share_offers_tools_but_answers_at_once_and_leaves_other_plans_unchanged(tiny_models, small_world):
    _, proc = tiny_models["student"]
    train = [e for e in small_world.load("train") if e.valid_paths]
    base = ZooSFTConfig(batch_size=len(train), no_tools_share=0.0)

    def plans(cfg: SFTConfig, stage: str = "multimodal"):
        return plan_step(stage, train, random.Random(3), cfg)

    # direct_share 0 draws nothing extra: the published runs' batches stay the same
    assert plans(base) == plans(base.model_copy(update={"direct_share": 0.0}))
    lazy = plans(base.model_copy(update={"direct_share": 1.0}))
    assert all(tools and path == [] for _, tools, path in lazy)  # tools offered, no call made
    assert all(path for _, _, path in plans(base))
    half = plans(base.model_copy(update={"direct_share": 0.5}))
    assert 0.2 < sum(not path for _, _, path in half) / len(half) < 0.8
    # only the multimodal stage answers directly (text episodes are tool-call practice)
    assert all(path for _, _, path in plans(base.model_copy(update={"direct_share": 1.0}), "text"))
    # the demonstration: the tool spec is in the prompt, and the first assistant turn is the answer
    batch = _StageBatches("multimodal", [lazy[:2]], proc, rationale=False)[0]
    text = proc.tokenizer.decode(batch.input_ids[0])
    spec = render_tool_spec(lazy[0][0].layout.kind, lazy[0][0].layout, "compact")
    assert spec in text and NO_TOOLS not in text
    first_turn = text.split("<|im_start|>assistant\n", 1)[1]
    assert first_turn.startswith("<answer>") and "<tool_call>" not in first_turn


def test_reading_templates_restrict_the_reading_stage_only(small_world):
    from iapo.errors import ConfigError
    from iapo.supervised.sft import stage_pool

    train = small_world.load("train")
    cfg = ZooSFTConfig(reading_templates=["value", "chart_value"], batch_size=2)
    pool = stage_pool("reading", train, cfg)
    assert pool and {ex.meta["template"] for ex in pool} == {"value", "chart_value"}
    assert stage_pool("multimodal", train, cfg) is train and stage_pool("text", train, cfg) is train
    rng = random.Random(0)
    drawn = [ex for plan in (plan_step("reading", pool, rng, cfg) for _ in range(10)) for ex, _, _ in plan]
    assert {ex.meta["template"] for ex in drawn} <= {"value", "chart_value"}
    with pytest.raises(ConfigError, match=r"reading_templates.*fewer than one batch"):
        stage_pool("reading", train, ZooSFTConfig(reading_templates=["no_such_template"]))


def test_call_templates_demonstrate_calls_for_the_named_templates_only(small_world):
    """A demonstrator that shows where to look for some questions only: the others answer at once
    in the multimodal stage and are left out of the text stage (tool-call practice); unset, the
    batches are the ones drawn before the option existed."""
    from iapo.errors import ConfigError
    from iapo.supervised.sft import stage_pool

    train = [e for e in small_world.load("train") if e.valid_paths]
    base = ZooSFTConfig(batch_size=len(train), no_tools_share=0.0)
    only = base.model_copy(update={"call_templates": ["value"]})
    assert plan_step("multimodal", train, random.Random(3), base) == plan_step(
        "multimodal", train, random.Random(3), base.model_copy(update={"call_templates": None})
    )
    plans = plan_step("multimodal", train, random.Random(3), only)
    assert {ex.meta["template"] for ex, _, path in plans if path} == {"value"}
    assert all(tools and not path for ex, tools, path in plans if ex.meta["template"] != "value")
    only = only.model_copy(update={"batch_size": 4})
    text = stage_pool("text", train, only)
    assert {ex.meta["template"] for ex in text} == {"value"} and stage_pool("multimodal", train, only) is train
    assert stage_pool("reading", train, only) is train  # reading shows the tool output, not the call
    with pytest.raises(ConfigError, match=r"call_templates.*fewer than one batch"):
        stage_pool("text", train, ZooSFTConfig(call_templates=["no_such_template"]))


def test_decoy_share_demonstrates_calls_on_the_named_distractor(small_world):
    """A demonstrator that copies either named row: a `decoy_share` of its calling demonstrations
    follow a path on the distractor (useless for the question) and answer what it shows; at 0 the
    batches are the ones drawn before the option existed, and questions without a distractor are
    never touched."""
    from iapo.tools import ToolSession, parse_turn
    from iapo.tools.session import CallClass
    from iapo.tools.syntax import format_tool_call
    from iapo.world.generate import WorldConfig, generate_example

    world = WorldConfig(templates=["value_pair", "value_pair_later"], in_dist={"table_rows": [5, 6]})
    train = [generate_example(world, "train", i).example for i in range(200)]
    cfg = ZooSFTConfig(batch_size=len(train), no_tools_share=0.0, shortest_path_share=1.0)
    assert plan_step("multimodal", train, random.Random(1), cfg) == plan_step(
        "multimodal", train, random.Random(1), cfg.model_copy(update={"decoy_share": 0.0})
    )
    plans = plan_step("multimodal", train, random.Random(1), cfg.model_copy(update={"decoy_share": 0.5}))
    decoys = [(ex, path) for ex, _, path in plans if ex.answer != next(e for e in train if e.id == ex.id).answer]
    later = sum(ex.meta["template"] == "value_pair_later" for ex, _, _ in plans)
    assert all(ex.meta["template"] == "value_pair_later" for ex, _ in decoys)
    assert 0.35 * later < len(decoys) < 0.65 * later
    for ex, path in decoys:
        original = next(e for e in train if e.id == ex.id)
        assert ex.answer == ex.meta["decoy"]["answer"] and path in ex.meta["decoy"]["paths"]
        s = ToolSession(None, original.layout, frozenset(original.evidence), frozenset(original.context), 2)
        first = s.step(parse_turn(format_tool_call(path[0]["name"], path[0]["arguments"])))
        assert len(path) == 1 and first.cls == CallClass.VALID_USELESS  # it runs, on another row than meant


def test_short_reading_episode_is_the_tool_output_and_question_only(tiny_models, small_world):
    _, proc = tiny_models["student"]
    ex = next(e for e in small_world.load("train") if e.valid_paths)
    full = reading_segments(ex, random.Random(0), shortest_share=1.0)
    short = reading_segments(ex, random.Random(0), shortest_share=1.0, context="short")
    assert [s.kind for s in short] == ["image", "question", "assistant"]
    assert np.array_equal(np.asarray(short[0].images[0]), np.asarray(full[3].images[0]))  # the same tool output
    enc_full, enc_short = encode(full, proc), encode(short, proc)
    assert len(enc_short.input_ids) < len(enc_full.input_ids) / 2
    start, end = enc_short.spans[-1]
    assert enc_short.assistant_mask().sum() == end - start
    assert proc.tokenizer.decode(enc_short.input_ids[start:end]) == proc.tokenizer.decode(
        enc_full.input_ids[slice(*enc_full.spans[-1])]
    )
