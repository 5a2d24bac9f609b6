"""The term's passes at the price of fewer tokens (issue 51): one call for components and regions,
the prefix's coalitions on top of the full coalition's cache, the region pass's tokens before the
first image without gradient. Each gives the values of the plain computation, up to float rounding."""

from __future__ import annotations

import random

import pytest
import torch

from iapo.attribution import (
    AttributionSettings,
    attribute_episodes,
    attribute_passes,
    attribute_regions,
    baseline_embeddings,
    embed,
    games,
    gradient_times_delta,
)
from iapo.attribution.regions import l1
from iapo.rewards.alignment import AttributionReward, AttributionRewardConfig, divergence
from iapo.rewards.targets import evidence_regions, evidence_target
from iapo.rollout.episode import COMPONENTS, assistant_segment, collate, encode
from iapo.rollout.loop import Episode
from iapo.supervised.sft import sft_segments
from iapo.tools.syntax import format_answer

OCCLUSION = AttributionSettings(estimator="occlusion")
REGIONS = AttributionSettings(estimator="grad_x_delta", completeness=False, tokens="images")


@pytest.fixture(scope="module")
def group(tiny_models, small_world):
    """A GRPO group as a trained policy makes one: a question's episodes with the same call and
    different answers, and one that answers at once (one prompt, so the games share its prefix)."""
    ex = small_world.load("val")[0]
    demo = sft_segments(ex, random.Random(0), tools=True)
    segs = [[*demo[:-1], assistant_segment(format_answer(a))] for a in (ex.answer, "7", "no")]
    first_call = next(i for i, sg in enumerate(demo) if sg.kind == "assistant")
    segs.append([*demo[:first_call], assistant_segment(format_answer(ex.answer))])
    return ex, segs


def _image_positions(turn) -> torch.Tensor:
    return turn.encoded.mm_token_type_ids.bool()


def test_one_call_gives_what_separate_calls_give_without_the_full_coalition(tiny_models, group, monkeypatch):
    """Occlusion's scores and the region pass's image-token attributions equal those of separate
    calls; the games never run the full coalition (the region pass has f(x)), and the region
    pass attributes nothing before the first image."""
    model, proc = tiny_models["student"]
    _, segs = group
    ran = []
    values = games._values
    monkeypatch.setattr(games, "_values", lambda *a: ran.extend(m for _, m in a[4]) or values(*a))
    comps, regs = attribute_passes(model, proc, segs, "final", [OCCLUSION, REGIONS])
    full = [sum(1 << c for c in games.players(torch.as_tensor(t[0].encoded.component_ids(t[0].turn)))) for t in comps]
    assert ran and not set(full) & set(ran)
    monkeypatch.setattr(games, "_values", values)
    alone = attribute_episodes(model, proc, segs, "final", OCCLUSION)
    whole = attribute_episodes(model, proc, segs, "final", REGIONS.model_copy(update={"tokens": "all"}))
    for a, b, r, w in zip(comps, alone, regs, whole, strict=True):
        assert torch.allclose(a[0].scores, b[0].scores, atol=1e-4), (a[0].scores, b[0].scores)
        img = _image_positions(r[0])
        first = int((r[0].encoded.component_ids(r[0].turn) == COMPONENTS.index("image")).nonzero()[0])
        assert torch.allclose(r[0].token_attr[img], w[0].token_attr[img], atol=1e-5)
        assert (r[0].token_attr[:first] == 0).all() and (w[0].token_attr[:first] != 0).any()


@pytest.mark.parametrize("game", ["occlusion", "shapley"])
def test_the_prefix_coalitions_built_on_the_full_one_equal_each_run_from_scratch(tiny_models, group, monkeypatch, game):
    """`games.prefix_caches` runs a coalition from its first left-out token on the full coalition's
    cache; with no shared prefix every (row, coalition) runs whole: the same values."""
    model, proc = tiny_models["student"]
    _, segs = group
    s = AttributionSettings(estimator=game)
    calls = []
    caches = games.prefix_caches
    monkeypatch.setattr(games, "prefix_caches", lambda *a: calls.append(a[4]) or caches(*a))
    tree = attribute_episodes(model, proc, segs, "final", s)
    assert calls and calls[0] > 0  # the shared prefix was used
    monkeypatch.setattr(games, "shared_prefix", lambda *a, **k: 0)
    flat = attribute_episodes(model, proc, segs, "final", s)
    for a, b in zip(tree, flat, strict=True):
        assert torch.allclose(a[0].scores, b[0].scores, atol=1e-4), (a[0].scores, b[0].scores)


def test_grad_x_delta_from_a_start_is_the_whole_pass_after_it(tiny_models, group):
    model, proc = tiny_models["student"]
    _, segs = group
    encs = [encode(s, proc) for s in segs]
    batch = collate(encs, proc.pad_token_id, [e.assistant_mask(only=sum(k == "assistant" for k in e.kinds) - 1)
                                              for e in encs])  # fmt: skip
    eb = embed(model, batch, batch.completion_mask)
    base = baseline_embeddings(model, proc, batch, eb, "pad")
    start = int(batch.mm_token_type_ids[0].nonzero()[0])
    whole, cut = gradient_times_delta(model, eb, base), gradient_times_delta(model, eb, base, start=start)
    assert torch.allclose(cut.attributions[:, start:], whole.attributions[:, start:], atol=1e-5)
    assert (cut.attributions[:, :start] == 0).all()
    assert torch.allclose(cut.f_x, whole.f_x, atol=1e-5) and torch.allclose(cut.f_base, whole.f_base, atol=1e-5)


def test_ig_takes_f_of_x_from_the_pass_before_it(tiny_models, group):
    """Gauss-Legendre has no end points: its completeness check needs f(x), which the region pass
    on the same batch has; the error equals a separate call's."""
    model, proc = tiny_models["student"]
    _, segs = group
    ig = AttributionSettings(estimator="ig", n_steps=4)
    together, _ = attribute_passes(model, proc, segs, "final", [ig, REGIONS])
    alone = attribute_episodes(model, proc, segs, "final", ig)
    for a, b in zip(together, alone, strict=True):
        assert a[0].relative_error == pytest.approx(b[0].relative_error, rel=1e-3, abs=1e-5)
        assert torch.allclose(a[0].scores, b[0].scores, atol=1e-5)


def test_the_default_term_equals_its_separate_parts(tiny_models, group, tmp_path):
    """The library default (occlusion components + grad_x_delta regions), computed in one call,
    gives -(D_components + D_regions) of the two parts computed alone (evidence target: no teacher)."""
    model, proc = tiny_models["student"]
    ex, segs = group
    term = AttributionReward(AttributionRewardConfig(target="evidence"), None, 0, tmp_path / "targets")
    term.bind_policy(model, proc)
    eps = [Episode(example=ex, segments=s) for s in segs]
    got = term([""] * len(eps), [""] * len(eps), episodes=eps)
    comps = attribute_episodes(model, proc, segs, "final", OCCLUSION)
    regs = attribute_regions(model, proc, [(s, ex.layout) for s in segs], REGIONS.model_copy(update={"tokens": "all"}))
    want = [-(divergence(c[0].p, evidence_target(ex, 0.8), "l1") + l1(r, evidence_regions(ex)))
            for c, r in zip(comps, regs, strict=True)]  # fmt: skip
    assert got == pytest.approx(want, abs=1e-4)
