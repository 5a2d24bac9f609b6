"""IAPO targets: the teacher_own cache and its keys, the evidence target, missing components, the
tool bonus, and the term's diagnostics."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from iapo.rewards import ToolBonus
from iapo.rewards.alignment import AttributionReward, AttributionRewardConfig, divergence, term_diagnostics
from iapo.rewards.targets import evidence_target, question_key
from iapo.rollout.episode import COMPONENTS, assistant_segment, prompt_segments
from iapo.rollout.loop import Episode, RolloutConfig, TurnRecord
from iapo.tools.session import CallClass
from iapo.tools.syntax import parse_turn

RCFG = RolloutConfig(max_calls=1, max_new_tokens=8, batch_size=8)


def _reward(tiny_models, tmp_path, teacher_dir=None, **cfg):
    # the component term (regions: tests/attribution/test_regions.py)
    c = AttributionRewardConfig(**{"n_steps": 2, "target": "teacher_own", "regions": 0.0, **cfg})
    r = AttributionReward(c, tiny_models["teacher_alt"], 0, tmp_path / "targets", teacher_dir, RCFG)
    r.bind_policy(*tiny_models["student"])
    return r


def test_teacher_own_cache_is_computed_once_and_reused(tiny_models, small_world, tmp_path):
    qs = small_world.load("train")[:3]
    r = _reward(tiny_models, tmp_path)
    assert r.prepare(qs + qs[:1]) == 3  # a repeated question is computed once
    assert r.prepare(qs) == 0
    again = _reward(tiny_models, tmp_path)  # a new run finds the file
    assert again.cache.path == r.cache.path and again.prepare(qs) == 0
    for ex in qs:
        p = again.cache.get(ex)
        assert p.shape == (len(COMPONENTS),) and float(p.sum()) == pytest.approx(1, abs=1e-5)
        rec = again.cache.entries[question_key(ex)]
        assert rec["averaged"] in ("correct", "all") and rec["episodes"] == 1


def test_cache_invalidated_by_teacher_data_and_attribution_settings(tiny_models, small_world, tmp_path):
    qs = small_world.load("train")[:2]
    base = _reward(tiny_models, tmp_path)
    base.prepare(qs)
    # IG settings: another file
    assert _reward(tiny_models, tmp_path, n_steps=3).cache.path != base.cache.path
    assert _reward(tiny_models, tmp_path, rule="trapezoid").cache.path != base.cache.path
    assert _reward(tiny_models, tmp_path, estimator="grad_x_delta").cache.path != base.cache.path
    assert _reward(tiny_models, tmp_path, teacher_samples=2).cache.path != base.cache.path
    # the teacher: other weights give another fingerprint
    model, _ = tiny_models["teacher_alt"]
    saved = model.lm_head.weight.detach().clone()
    with torch.no_grad():
        model.lm_head.weight.add_(1e-3)
    try:
        assert _reward(tiny_models, tmp_path).cache.path != base.cache.path
    finally:
        with torch.no_grad():
            model.lm_head.weight.copy_(saved)
    assert _reward(tiny_models, tmp_path).cache.path == base.cache.path
    # a teacher directory, by content: a copy (other file times: a git checkout, another
    # machine) finds the same file; other weights written over it do not
    import os
    import shutil

    tdir = tmp_path / "teacher"
    model.save_pretrained(tdir)
    first = _reward(tiny_models, tmp_path, teacher_dir=tdir).cache.path
    shutil.copytree(tdir, tmp_path / "copy")
    for f in (tmp_path / "copy").iterdir():
        os.utime(f, ns=(1, 1))
    assert _reward(tiny_models, tmp_path, teacher_dir=tmp_path / "copy").cache.path == first
    with torch.no_grad():
        model.lm_head.weight.add_(1e-3)
    try:
        model.save_pretrained(tdir)
        assert _reward(tiny_models, tmp_path, teacher_dir=tdir).cache.path != first
    finally:
        with torch.no_grad():
            model.lm_head.weight.copy_(saved)
    # the data: a changed question (same id) is missing, an unchanged one is not
    changed = dataclasses.replace(qs[0], question=qs[0].question + " ?")
    assert question_key(changed) != question_key(qs[0])
    assert base.cache.missing([changed, qs[1]]) == [changed]


def test_missing_component_counts_as_zero_share():
    """A student episode without a tool call (no tool_output, no history) against a target
    that puts share on the tool output: by hand, L1 = |.2-.1| + |.2-.1| + |.3-.1| + |.3-.1| + .5 + .1."""
    sys, spec, q, img = range(4)
    student = torch.zeros(6)
    student[[sys, spec, q, img]] = torch.tensor([0.2, 0.2, 0.3, 0.3])
    target = torch.tensor([0.1, 0.1, 0.1, 0.1, 0.5, 0.1])
    assert divergence(student, target, "l1") == pytest.approx(0.1 + 0.1 + 0.2 + 0.2 + 0.5 + 0.1)
    with_call = torch.tensor([0.1, 0.1, 0.1, 0.1, 0.5, 0.1])
    assert divergence(with_call, target, "l1") == pytest.approx(0.0)


def test_evidence_target_follows_the_worlds_evidence(small_world):
    exs = small_world.load("val")
    with_path = next(e for e in exs if e.valid_paths)
    q = evidence_target(with_path, 0.8)
    assert q[COMPONENTS.index("tool_output")] == pytest.approx(0.8)
    assert q[COMPONENTS.index("question")] == pytest.approx(0.2) and float(q.sum()) == pytest.approx(1)
    no_path = dataclasses.replace(with_path, valid_paths=[])
    q = evidence_target(no_path, 0.7)
    assert q[COMPONENTS.index("image")] == pytest.approx(0.7) and q[COMPONENTS.index("tool_output")] == 0


def _episode(ex, classes: list[str], answer: str | None) -> Episode:
    ep = Episode(ex, [])
    for c in classes:
        ep.turns.append(TurnRecord("", [], parse_turn("<answer>x</answer>"), CallClass(c)))
    ep.answer = answer
    return ep


def test_tool_bonus_pays_only_valid_useful_calls(small_world):
    ex = small_world.load("val")[0]
    eps = [
        _episode(ex, ["valid_useful"], ex.answer),  # useful call, right
        _episode(ex, ["valid_useful"], "wrong"),  # useful call, wrong
        _episode(ex, ["valid_useless"], ex.answer),  # useless call, right
        _episode(ex, ["invalid_arguments", "valid_useful"], ex.answer),  # a bad call, then a useful one
        _episode(ex, [], ex.answer),  # no call, right
    ]
    assert eps[0].correct and not eps[1].correct
    kw = {"prompts": [""] * 5, "completions": [""] * 5, "episodes": eps}
    assert ToolBonus(conditional=True)(**kw) == [1.0, 0.0, 0.0, 1.0, 0.0]
    assert ToolBonus(conditional=False)(**kw) == [1.0, 1.0, 0.0, 1.0, 0.0]


def test_tool_bonus_without_usefulness_labels_pays_any_call_that_runs(small_world):
    ex = small_world.load("val")[0]
    classes = [["valid_useful"], ["valid_useless"], ["valid"], ["redundant"], ["invalid_arguments"], []]
    eps = [_episode(ex, c, ex.answer) for c in classes]
    kw = {"prompts": [""] * 6, "completions": [""] * 6, "episodes": eps}
    assert ToolBonus(conditional=False, useful=False)(**kw) == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    # a benchmark's calls are `valid` (no evidence to judge them): the useful-only bonus pays nothing there
    assert ToolBonus(conditional=False)(**kw) == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    from iapo.rewards.method import MethodConfig, make_rewards

    m = MethodConfig(tool_bonus=0.5, tool_bonus_conditional=False, tool_bonus_useful=False)
    (bonus,) = [r for r in make_rewards(m, small_world.root, None, 0) if r.name == "tool_bonus"]
    assert bonus.weight == 0.5 and bonus.fn(**kw) == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]


def test_term_diagnostics_rank_correlation(small_world):
    """Within a group the term (higher = better) rises with correctness: rank correlation +1."""
    ex = small_world.load("val")[0]
    eps = [_episode(ex, ["valid_useful"], ex.answer), _episode(ex, [], "no"), _episode(ex, [], "no")]
    d = [0.1, 0.9, 0.8]
    term = [-x for x in d]
    row = term_diagnostics(eps, d, term)
    assert row["attr/rank_corr_correct"] == pytest.approx(0.866, abs=1e-3)  # ties among the wrong ones
    assert row["attr/rank_corr_call"] == pytest.approx(row["attr/rank_corr_correct"])
    assert row["attr/divergence_with_calls"] == pytest.approx(0.1)
    assert row["attr/divergence_no_calls"] == pytest.approx(0.85)
    assert row["attr/rank_corr_correct_groups"] == 1.0


def test_teacher_own_reward_uses_cached_target(tiny_models, small_world, tmp_path):
    exs = small_world.load("val")[:2]
    r = _reward(tiny_models, tmp_path)
    r.prepare(exs)
    eps = [Episode(ex, [*prompt_segments(ex), assistant_segment("<answer>1</answer>")]) for ex in exs]
    out = r(prompts=[""] * 2, completions=[""] * 2, episodes=eps)
    assert r.metrics()["attr/targets_computed_in_step"] == 0
    for o, ps, ex in zip(out, r.last["p_student"], exs, strict=True):  # -D: lambda is the term's weight
        assert o == pytest.approx(-divergence(ps, r.cache.get(ex), "l1"), abs=1e-6)


def test_lambda_is_the_weight_of_the_attribution_reward(tmp_path):
    from iapo.rewards.method import MethodConfig, make_rewards

    m = MethodConfig(attribution=AttributionRewardConfig(target="random", lam=0.3))
    (term,) = [r for r in make_rewards(m, tmp_path, None, 0) if r.name == "attribution"]
    assert term.weight == 0.3


def test_dropped_attribution_term_is_none_and_counted(tiny_models, small_world):
    """An IG term over its completeness limit is dropped: None per episode (not 0.0, the best
    value of a penalty), counted by `score` as reward/attribution_dropped."""
    import random as _random

    from iapo.rewards.alignment import AttributionReward, AttributionRewardConfig
    from iapo.rewards.contract import WeightedReward, score
    from iapo.rollout.loop import Episode
    from iapo.supervised.sft import sft_segments

    rng = _random.Random(0)
    exs = small_world.load("val")[:2]
    eps = [Episode(ex, sft_segments(ex, rng, tools=False)) for ex in exs]
    strict = AttributionRewardConfig(target="random", estimator="ig", n_steps=2, max_relative_error=1e-12)
    r = AttributionReward(strict)
    r.bind_policy(*tiny_models["student"])
    vals, dropped, row, _ = score([WeightedReward("attribution", r)], eps)
    assert dropped.all() and torch.isnan(vals).all() and row["reward/attribution_dropped"] == 2
    assert r.metrics()["attr/dropped"] == 2
    # the exact estimators have no completeness limit to fail: nothing is dropped
    ok = AttributionReward(strict.model_copy(update={"estimator": "occlusion"}))
    ok.bind_policy(*tiny_models["student"])
    vals, dropped, row, _ = score([WeightedReward("attribution", ok)], eps)
    assert (
        not dropped.any()
        and torch.isfinite(vals).all()
        and row["reward/attribution_dropped"] == 0
        and (vals <= 0).all()
    )


def _one_template(small_world, n: int):
    """n val questions of the largest template of the small world."""
    from collections import defaultdict

    from iapo.rewards.targets import template_of

    by = defaultdict(list)
    for ex in small_world.load("val"):
        by[template_of(ex)].append(ex)
    return max(by.values(), key=len)[:n]


def test_derangement_pairs_each_question_with_another_of_its_template(small_world):
    from iapo.rewards.targets import derangement, template_of

    exs = small_world.load("train")[:60]
    d = derangement(exs + exs[:5], seed=0)  # a repeated question is one question
    by_key = {question_key(e): e for e in exs}
    assert d and set(d) <= set(by_key)
    for k, partner in d.items():
        assert question_key(partner) != k and template_of(partner) == template_of(by_key[k])
    assert sorted(question_key(p) for p in d.values()) == sorted(d)  # a permutation: each target used once
    alone = [k for k, e in by_key.items() if sum(template_of(x) == template_of(e) for x in by_key.values()) == 1]
    assert not set(alone) & set(d)  # no partner where the template has one question
    same = derangement(exs, seed=0)
    assert {k: question_key(v) for k, v in same.items()} == {k: question_key(v) for k, v in d.items()}
    other = derangement(exs, seed=1)
    assert {k: question_key(v) for k, v in other.items()} != {k: question_key(v) for k, v in d.items()}


def test_permuted_teacher_own_takes_its_partners_target(tiny_models, small_world, tmp_path):
    exs = _one_template(small_world, 3)
    r = _reward(tiny_models, tmp_path, permute=True)
    assert r.prepare(exs) == 3  # the cache is the unpermuted arm's: same file, same entries
    assert r.cache.path == _reward(tiny_models, tmp_path).cache.path
    eps = [Episode(ex, [*prompt_segments(ex), assistant_segment("<answer>1</answer>")]) for ex in exs]
    out = r(prompts=[""] * 3, completions=[""] * 3, episodes=eps)
    for o, ps, ex in zip(out, r.last["p_student"], exs, strict=True):
        partner = r.partners[question_key(ex)]
        assert question_key(partner) != question_key(ex)
        assert o == pytest.approx(-divergence(ps, r.cache.get(partner), "l1"), abs=1e-6)


def test_permute_applies_to_teacher_own_only():
    with pytest.raises(ValueError, match="permute"):
        AttributionRewardConfig(target="random", permute=True)


def test_moved_regions_keep_their_mass_and_land_on_the_other_image(small_world):
    from iapo.attribution import OTHER, regions_of
    from iapo.attribution.regions import move_regions

    a, b = _one_template(small_world, 2)
    names = list(regions_of(a.layout))
    shares = {n: 0.9 / len(names) for n in names} | {OTHER: 0.1}
    assert move_regions(shares, a.layout, a.layout) == pytest.approx(shares)  # same page: nothing moves
    moved = move_regions(shares, a.layout, b.layout)
    assert sum(moved.values()) == pytest.approx(1.0) and moved[OTHER] == pytest.approx(0.1)
    assert set(moved) <= {*regions_of(b.layout), OTHER}
    first = move_regions({names[0]: 1.0}, a.layout, b.layout)  # the top-left cell goes to the top-left cell
    assert list(first) == [next(iter(regions_of(b.layout)))]
