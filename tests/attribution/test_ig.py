"""Our batched IG against captum, completeness, and cross-tokenizer component alignment."""

from __future__ import annotations

import random

import pytest
import torch
from captum.attr import IntegratedGradients

from iapo.attribution import (
    RULES,
    AttributionSettings,
    attribute_episodes,
    component_scores,
    embed,
    integrated_gradients,
    quadrature,
    sequence_logprob,
    shares,
)
from iapo.rollout.episode import COMPONENTS, assistant_segment, collate, encode, prompt_segments, tool_output_segment
from iapo.tools.registry import run_tool
from iapo.tools.syntax import format_answer, format_tool_call


def _episode(ex, rng):
    """The prompt, the first valid path's calls with real tool outputs, then the answer."""
    segs = prompt_segments(ex)
    image, layout = segs[2].images[0], ex.layout
    for call in ex.valid_paths[0] if ex.valid_paths else []:
        segs.append(assistant_segment(format_tool_call(call["name"], call["arguments"])))
        image, layout = run_tool(image, layout, call["name"], call["arguments"])
        segs.append(tool_output_segment(image, "ok"))
    segs.append(assistant_segment(format_answer(ex.answer)))
    return segs


@pytest.fixture(scope="module")
def episodes(small_world):
    rng = random.Random(0)
    exs = [e for e in small_world.load("val") if e.valid_paths][:3]
    return [_episode(e, rng) for e in exs]


def _final_turn_batch(episodes, proc):
    encs = [encode(s, proc) for s in episodes]
    masks = [e.assistant_mask(only=sum(k == "assistant" for k in e.kinds) - 1) for e in encs]
    return collate(encs, proc.pad_token_id, masks)


CAPTUM_RULES = [r for r in RULES if r != "trapezoid"]  # captum has all but the composite trapezoid


@pytest.mark.parametrize("method", CAPTUM_RULES)
def test_matches_captum(tiny_models, episodes, method):
    model, proc = tiny_models["student"]
    model.eval()
    batch = _final_turn_batch(episodes, proc)
    eb = embed(model, batch, batch.completion_mask)
    ours = integrated_gradients(model, eb, n_steps=8, rule=method, chunk=7)  # chunk forces several passes
    ig = IntegratedGradients(lambda e: sequence_logprob(model, eb, e))
    ref = ig.attribute(eb.inputs_embeds, baselines=torch.zeros_like(eb.inputs_embeds), n_steps=8, method=method)
    scale = ref.abs().max()
    assert scale > 0
    assert (ours.attributions - ref).abs().max() / scale < 1e-4


@pytest.mark.parametrize("method", CAPTUM_RULES)
def test_quadrature_matches_captum(method):
    from captum.attr._utils.approximation_methods import approximation_parameters

    for m in (2, 5, 8):
        sizes, alphas = approximation_parameters(method)
        w, a = quadrature(m, method)
        assert torch.allclose(w, torch.tensor(sizes(m), dtype=torch.float64))
        assert torch.allclose(a, torch.tensor(alphas(m), dtype=torch.float64))


@pytest.mark.parametrize("method", RULES)
def test_quadrature_integrates(method):
    """Weights sum to 1 (captum's riemann_trapezoid: (m-1)/m), and Gauss-Legendre is exact for
    a polynomial of degree 2m-1 where the trapezoid is not."""
    m = 4
    w, a = quadrature(m, method)
    expected = (m - 1) / m if method == "riemann_trapezoid" else 1.0
    assert float(w.sum()) == pytest.approx(expected)
    exact = 1 / 8  # integral of a^7 over [0, 1]
    err = abs(float((w * a**7).sum()) - exact)
    assert (err < 1e-12) == (method == "gausslegendre")


def test_trapezoid_by_hand():
    w, a = quadrature(3, "trapezoid")
    assert w.tolist() == pytest.approx([0.25, 0.5, 0.25]) and a.tolist() == pytest.approx([0.0, 0.5, 1.0])


def test_endpoint_free_rule_reports_completeness(tiny_models, episodes):
    """Gauss-Legendre has no node at alpha 0 or 1: f(x), f(x') come from one extra forward and
    agree with a direct evaluation; without completeness they are NaN."""
    model, proc = tiny_models["student"]
    model.eval()
    batch = _final_turn_batch(episodes, proc)
    eb = embed(model, batch, batch.completion_mask)
    res = integrated_gradients(model, eb, n_steps=4, rule="gausslegendre")
    with torch.no_grad():
        f_x = sequence_logprob(model, eb, eb.inputs_embeds)
    assert torch.allclose(res.f_x, f_x, atol=1e-5)
    assert torch.isfinite(res.relative_error).all()
    off = integrated_gradients(model, eb, n_steps=4, rule="gausslegendre", completeness=False)
    assert torch.isnan(off.delta).all() and torch.equal(off.attributions, res.attributions)


@pytest.mark.parametrize("baseline", ["zero", "pad"])
def test_completeness_improves_with_steps(tiny_models, episodes, baseline):
    model, proc = tiny_models["student"]
    model.eval()
    batch = _final_turn_batch(episodes, proc)
    eb = embed(model, batch, batch.completion_mask)
    base = None
    if baseline == "pad":
        base = (
            model.get_input_embeddings().weight[proc.pad_token_id].detach().view(1, 1, -1).expand_as(eb.inputs_embeds)
        )
    errs = [
        integrated_gradients(model, eb, base, m, "riemann_trapezoid").relative_error.mean().item() for m in (4, 16, 64)
    ]
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 0.05


def test_component_scores_sum_tokens():
    tok = torch.tensor([[1.0, -2.0, 3.0, 4.0]])
    comp = torch.tensor([[0, 0, 3, -1]])
    sc = component_scores(tok, comp)
    assert sc[0, 0] == -1.0 and sc[0, 3] == 3.0 and sc.sum() == 2.0
    p = shares(sc)
    assert torch.allclose(p[0, [0, 3]], torch.tensor([0.25, 0.75]))


def test_teacher_with_other_tokenizer_scores_student_rollout(tiny_models, episodes):
    """The teacher re-tokenizes the student's turns; components line up although the token
    counts differ."""
    (s_model, s_proc), (t_model, t_proc) = tiny_models["student"], tiny_models["teacher_alt"]
    ig = AttributionSettings(estimator="ig", n_steps=4)
    s = attribute_episodes(s_model, s_proc, episodes, which="all", settings=ig)
    t = attribute_episodes(t_model, t_proc, episodes, which="all", settings=ig, keep_ids=False)
    for se, te in zip(s, t, strict=True):
        assert len(se) == len(te) >= 1
        for a, b in zip(se, te, strict=True):
            assert a.p.shape == b.p.shape == (len(COMPONENTS),)
            assert abs(float(a.p.sum()) - 1) < 1e-5 and abs(float(b.p.sum()) - 1) < 1e-5
            # the same components are present (non-zero) for both models
            assert ((a.scores != 0) == (b.scores != 0)).all()
        assert len(se[0].encoded) != len(te[0].encoded)  # different tokenizations
    last = s[0][-1]
    present = {COMPONENTS[i] for i in torch.nonzero(last.scores).flatten().tolist()}
    assert {"system", "tool_spec", "question", "image"} <= present


def test_iapo_reward_attributes_identical_episodes_once(tiny_models, episodes, small_world):
    """Duplicate episodes (same example, same turns) get the same reward, computed once."""
    from iapo.rewards.alignment import AttributionReward, AttributionRewardConfig
    from iapo.rollout.loop import Episode

    exs = [e for e in small_world.load("val") if e.valid_paths][:3]
    eps = [Episode(ex, segs) for ex, segs in zip(exs, episodes, strict=True)]
    batch = [eps[0], eps[1], eps[0], eps[2], eps[1]]
    r = AttributionReward(AttributionRewardConfig(n_steps=2, target="teacher_forced"), tiny_models["teacher_alt"])
    r.bind_policy(*tiny_models["student"])
    out = r(prompts=[""] * 5, completions=[""] * 5, episodes=batch)
    assert r.metrics()["attr/unique_episodes"] == pytest.approx(3 / 5)
    # no episode here has a tool call: the split of the divergence by tool use says so
    assert r.metrics()["attr/divergence_no_calls"] == pytest.approx(r.metrics()["attr/divergence"])
    assert r.metrics()["attr/divergence_with_calls"] != r.metrics()["attr/divergence_with_calls"]  # NaN
    assert out[0] == out[2] and out[1] == out[4] and len({out[0], out[1], out[3]}) == 3
    alone = r(prompts=[""], completions=[""], episodes=[eps[1]])
    assert alone[0] == pytest.approx(out[1], abs=1e-5)  # float32: padding in a batch moves the 6th digit


def test_center_by_support_by_hand():
    from iapo.rewards.alignment import center_by_support

    four, six = torch.tensor([0.3, 0.2, 0.4, 0.1, 0, 0]), torch.full((6,), 1 / 6)
    d = [0.2, 0.4, 0.9, 0.5, 0.3, None]
    out = center_by_support(d, ["a", "a", "a", "a", "b", "a"], [four, four, six, six, four, None])
    assert out[:5] == pytest.approx([-0.1, 0.1, 0.2, -0.2, 0.0]) and out[5] is None


def test_centred_iapo_reward_keeps_differences_within_a_question(tiny_models, episodes, small_world):
    """center='support': same ranking of a question's episodes, zero mean, no offset between kinds."""
    from iapo.rewards.alignment import AttributionReward, AttributionRewardConfig
    from iapo.rollout.loop import Episode

    ex = next(e for e in small_world.load("val") if e.valid_paths)
    batch = [Episode(ex, segs) for segs in episodes]  # one question, three different episodes, no calls
    rewards = {}
    for center in ("none", "support"):
        r = AttributionReward(
            AttributionRewardConfig(n_steps=2, center=center, target="teacher_forced"), tiny_models["teacher_alt"]
        )
        r.bind_policy(*tiny_models["student"])
        rewards[center] = r(prompts=[""] * 3, completions=[""] * 3, episodes=batch)
    raw, cen = rewards["none"], rewards["support"]
    assert sum(cen) == pytest.approx(0, abs=1e-9) and max(map(abs, cen)) > 0
    assert [c - cen[0] for c in cen] == pytest.approx([u - raw[0] for u in raw])
