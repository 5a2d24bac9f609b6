"""The forward-only component estimators (Shapley, occlusion) and the one-backward gradient x
delta, against hand-computed games and captum's ShapleyValues / FeatureAblation / InputXGradient."""

from __future__ import annotations

import random

import pytest
import torch
from captum.attr import FeatureAblation, InputXGradient, ShapleyValues

from iapo.attribution import (
    AttributionSettings,
    attribute_episodes,
    baseline_embeddings,
    component_game,
    embed,
    games,
    gradient_times_delta,
    sequence_logprob,
    shapley_from_values,
)
from iapo.attribution.games import coalitions, context_clusters, shared_prefix
from iapo.rollout.episode import COMPONENTS, assistant_segment, collate, encode
from iapo.supervised.sft import sft_segments
from iapo.tools.syntax import format_answer


def test_shapley_of_a_two_player_game_by_hand():
    """v({}) = 0, v({a}) = 1, v({b}) = 2, v({a, b}) = 5: phi_a = (1 + 3) / 2, phi_b = (2 + 4) / 2."""
    a, b = 0, 3  # players are component indices; coalitions are bitmasks over them
    v = {0: 0.0, 1 << a: 1.0, 1 << b: 2.0, (1 << a) | (1 << b): 5.0}
    assert shapley_from_values(v, [a, b]) == pytest.approx({a: 2.0, b: 3.0})


def test_shapley_of_three_players_is_efficient_and_symmetric():
    """v(S) = |S|^2: symmetric players share v(N) = 9 equally."""
    ps = [0, 2, 5]
    v = {m: float(m.bit_count() ** 2) for m in coalitions(ps, "shapley", True)}
    assert len(v) == 8
    assert shapley_from_values(v, ps) == pytest.approx({0: 3.0, 2: 3.0, 5: 3.0})


@pytest.fixture(scope="module")
def no_call_batch(tiny_models, small_world):
    """Two val demonstrations that answer without a call (4 players: a small exact game)."""
    model, proc = tiny_models["student"]
    model.eval()
    rng = random.Random(0)
    segs = [sft_segments(ex, rng, tools=False) for ex in small_world.load("val")[:2]]
    encs = [encode(s, proc) for s in segs]
    last = [sum(k == "assistant" for k in e.kinds) - 1 for e in encs]
    batch = collate(encs, proc.pad_token_id, [e.assistant_mask(only=t) for e, t in zip(encs, last, strict=True)])
    eb = embed(model, batch, batch.completion_mask)
    comp = torch.full(batch.input_ids.shape, -1, dtype=torch.long)
    for j, (e, t) in enumerate(zip(encs, last, strict=True)):
        comp[j, : len(e)] = e.component_ids(t)
    base = baseline_embeddings(model, proc, batch, eb, "pad")
    return model, eb, base, comp


def _captum(method_cls, model, eb, base, comp, row: int, **kw) -> torch.Tensor:
    """captum's attribution of one row with the components as feature groups; the target turn
    and padding form one more group that the forward function never perturbs (a dummy player)."""
    sl = slice(row, row + 1)
    keep = comp[sl] < 0  # (1, T)
    x = eb.inputs_embeds[sl]

    def f(emb):  # (R, T, D) -> (R,)
        emb = torch.where(keep.unsqueeze(-1), x, emb)
        rows = torch.full((emb.shape[0],), row, dtype=torch.long)
        return sequence_logprob(model, eb, emb, rows)

    groups = torch.where(comp[sl] < 0, len(COMPONENTS), comp[sl]).unsqueeze(-1).expand_as(x).contiguous()
    with torch.no_grad():
        a = method_cls(f).attribute(x, baselines=base[sl], feature_mask=groups, **kw)  # (1, T, D)
    # every element of a group carries the group's value: read one per component
    return torch.tensor([float(a[0, comp[row] == c][0, 0]) if (comp[row] == c).any() else 0.0
                         for c in range(len(COMPONENTS))], dtype=torch.float64)  # fmt: skip


def test_shapley_matches_captum_and_splits_f_completely(no_call_batch):
    model, eb, base, comp = no_call_batch
    res = component_game(model, eb, base, comp, "shapley")
    assert res.relative_error.max() < 1e-5  # efficiency: sum phi = f(x) - f(x')
    for row in range(2):
        ref = _captum(ShapleyValues, model, eb, base, comp, row, perturbations_per_eval=32)
        assert torch.allclose(res.scores[row], ref, atol=1e-4), (res.scores[row], ref)


def test_occlusion_matches_captum_feature_ablation(no_call_batch):
    model, eb, base, comp = no_call_batch
    res = component_game(model, eb, base, comp, "occlusion")
    for row in range(2):
        ref = _captum(FeatureAblation, model, eb, base, comp, row, perturbations_per_eval=8)
        assert torch.allclose(res.scores[row], ref, atol=1e-4), (res.scores[row], ref)
    # a component an episode lacks scores exactly zero
    assert (res.scores[:, COMPONENTS.index("tool_output")] == 0).all()


def test_shared_prefix_is_computed_once_and_changes_nothing(no_call_batch, monkeypatch):
    """The system prompt and tool spec open both rows: their KV cache is shared (so the captum
    comparisons above run through it), and values equal those of full passes per row."""
    model, eb, base, comp = no_call_batch
    P = shared_prefix(eb, base, comp)
    spec_end = int((comp[0] == COMPONENTS.index("tool_spec")).nonzero().max()) + 1
    assert spec_end <= P
    assert (comp[0, :P] == comp[1, :P]).all() and not eb.target[:, : P + 1].any()
    cached = component_game(model, eb, base, comp, "shapley")
    monkeypatch.setattr(games, "shared_prefix", lambda *a, **k: 0)
    full = component_game(model, eb, base, comp, "shapley")
    assert torch.allclose(cached.scores, full.scores, atol=1e-4)
    assert torch.allclose(cached.f_base, full.f_base, atol=1e-4)


def test_rows_with_one_call_and_tool_output_run_it_once_and_change_nothing(tiny_models, small_world, monkeypatch):
    """Four episodes of a group make the same call, see the same tool output and differ in their
    answers (a fifth answers at once): the call and tool output run once per coalition for the
    four (`context_clusters`), and every value equals that of the rows run from the prompt on."""
    model, proc = tiny_models["student"]
    ex = small_world.load("val")[0]
    demo = sft_segments(ex, random.Random(0), tools=True)
    assert any(sg.kind == "tool_output" for sg in demo)
    segs = [[*demo[:-1], assistant_segment(format_answer(a))] for a in (ex.answer, "7", "no", ex.answer + "1")]
    first_call = next(i for i, sg in enumerate(demo) if sg.kind == "assistant")
    segs.append([*demo[:first_call], assistant_segment(format_answer(ex.answer))])  # answers at once
    s = AttributionSettings(estimator="occlusion")
    found = []
    monkeypatch.setattr(games, "context_clusters", lambda *a, **k: found.append(context_clusters(*a, **k)) or found[-1])
    tree = attribute_episodes(model, proc, segs, "final", s)
    assert [len(rows) for rows, _ in found[0]] == [4]  # the four rows with the call
    monkeypatch.setattr(games, "context_clusters", lambda *a, **k: [])
    flat = attribute_episodes(model, proc, segs, "final", s)
    for a, b in zip(tree, flat, strict=True):
        assert torch.allclose(a[0].scores, b[0].scores, atol=1e-4), (a[0].scores, b[0].scores)


def test_occlusion_skips_f_of_the_baseline_unless_asked(tiny_models, small_world):
    """completeness defaults to what checks the estimator: occlusion need not add up, so f(x') is
    not computed (NaN error) and the turn still counts as finite; asked for, it is computed."""
    model, proc = tiny_models["student"]
    segs = [sft_segments(ex, random.Random(2), tools=False) for ex in small_world.load("val")[:2]]
    (off,), _ = attribute_episodes(model, proc, segs, "final", AttributionSettings(estimator="occlusion"))
    assert off.finite and off.relative_error != off.relative_error  # NaN
    (on,), _ = attribute_episodes(
        model, proc, segs, "final", AttributionSettings(estimator="occlusion", completeness=True)
    )
    assert on.finite and on.relative_error >= 0 and torch.allclose(on.p, off.p)
    assert (
        AttributionSettings(estimator="ig").checks_completeness
        and AttributionSettings(estimator="shapley").checks_completeness
    )


def test_gradient_times_delta_is_captum_input_x_gradient_at_a_zero_baseline(no_call_batch):
    model, eb, _, _ = no_call_batch
    ours = gradient_times_delta(model, eb, None).attributions
    x = eb.inputs_embeds.detach().clone().requires_grad_(True)
    ref = InputXGradient(lambda e: sequence_logprob(model, eb, e)).attribute(x)
    assert torch.allclose(ours, ref, atol=1e-5)


@pytest.mark.parametrize("estimator", ["shapley", "occlusion", "grad_x_delta"])
def test_batched_episodes_equal_one_by_one(tiny_models, small_world, estimator):
    """Padding and batching change nothing: the estimator's own reference in the fidelity bench."""
    model, proc = tiny_models["student"]
    rng = random.Random(1)
    segs = [sft_segments(ex, rng, tools=True) for ex in small_world.load("val")[:3]]
    s = AttributionSettings(estimator=estimator, chunk=16)
    batched = attribute_episodes(model, proc, segs, "final", s)
    for seg, b in zip(segs, batched, strict=True):
        (alone,) = attribute_episodes(model, proc, [seg], "final", s)
        assert torch.allclose(alone[0].p, b[0].p, atol=1e-4)
        assert alone[0].finite and abs(float(b[0].p.sum()) - 1) < 1e-5


def test_old_method_key_still_reads_as_rule():
    with pytest.warns(DeprecationWarning, match="rule"):
        s = AttributionSettings(method="trapezoid")
    assert s.rule == "trapezoid"


def test_component_games_take_one_prompt_per_batch():
    """Two groups in one batch would share only the system prompt and tool spec: the games batch
    each prompt apart (up to the size cap); the gradient estimators fill batches across prompts."""
    from iapo.attribution.episodes import _batches

    prompts = ["q1", "q2", "q3"]
    rows = [(0, 0, None)] * 3 + [(1, 0, None)] * 5 + [(2, 0, None)]
    games_batches = _batches(rows, prompts, 4, by_prompt=True)
    assert [len(b) for b in games_batches] == [3, 4, 1, 1]
    assert all(len({prompts[r[0]] for r in b}) == 1 for b in games_batches)
    assert [len(b) for b in _batches(rows, prompts, 4, by_prompt=False)] == [4, 4, 1]
