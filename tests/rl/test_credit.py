"""Credit per token (`iapo.rl.credit`): the published scalar is one case of it, exactly, and a
routed advantage reaches only the tokens it names."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from iapo.errors import ConfigError
from iapo.rewards.contract import Credit, Reward, WeightedReward, score, turn_lengths
from iapo.rl.credit import decision_stats, decision_token, group_advantages, route, token_advantages, token_grid
from iapo.rl.grpo import GRPOSettings, _update, grpo_loss, policy_optimizer
from iapo.rollout.loop import RolloutConfig, new_episode, rollout, step_episode
from iapo.world.generate import WorldConfig, generate_example

RCFG = RolloutConfig(max_calls=1, max_new_tokens=6, temperature=1.0, batch_size=16)
G = 4


def _value(e) -> float:
    return sum(e.turns[0].ids) % 7 / 7  # varies between episodes, fixed per episode


class PerToken(Reward):
    """The same value as `_value`, on every generated token of the episode."""

    level = "token"

    def __call__(self, prompts, completions, episodes, **_):
        return [[_value(e)] * sum(turn_lengths(e)) for e in episodes]


class PerTurn(Reward):
    level = "turn"

    def __call__(self, prompts, completions, episodes, **_):
        return [[float(k) for k in range(len(e.turns))] for e in episodes]


@pytest.fixture(scope="module")
def episodes(tiny_models, small_world):
    model, proc = tiny_models["student"]
    torch.manual_seed(0)
    exs = small_world.load("train")[:3]
    return rollout(model, proc, [ex for ex in exs for _ in range(G)], RCFG)


def _scripted(ex, proc, turns: list[str]):
    """An episode of `ex` whose turns are `turns`, run through the rollout's own step."""
    cfg = RolloutConfig(max_calls=2)
    ep, sess = new_episode(ex, cfg)
    for text in turns:
        step_episode(ep, sess, [*proc.tokenizer.encode(text), proc.eos_token_id], False, proc, cfg)
    return ep


def _call(row: str) -> str:
    args = {"name": "focus_on_rows_with_highlight", "arguments": {"rows": [row]}}
    return "<tool_call>" + json.dumps(args) + "</tool_call>"


@pytest.fixture(scope="module")
def scripted(tiny_models):
    """A group of four distractor-question episodes: a useful call, a decoy call, an unparseable
    call (each then answers), a direct answer."""
    _, proc = tiny_models["student"]
    cfg = WorldConfig(templates=["value_pair_later"], in_dist={"table_rows": [5, 6], "table_cols": [5, 6]})
    ex = generate_example(cfg, "train", 0).example
    named = ex.question.split('"')[1:4:2]
    turns = [[_call(max(named)), f"<answer>{ex.answer}</answer>"], [_call(min(named)), "<answer>0</answer>"],
             ["<tool_call>{</tool_call>", "<answer>1</answer>"], ["<answer>2</answer>"]]  # fmt: skip
    return ex, [_scripted(ex, proc, t) for t in turns]


def test_a_per_token_sequence_advantage_is_the_per_sequence_one_exactly():
    torch.manual_seed(0)
    B, T = 3, 7
    logp = torch.randn(B, T, requires_grad=True)
    old, ref, adv = logp.detach() + 0.1 * torch.randn(B, T), torch.randn(B, T), torch.randn(B)
    mask = (torch.rand(B, T) > 0.3).long()
    for loss_type in ("dapo", "grpo"):
        grads = []
        for a in (adv, adv.unsqueeze(1).expand(B, T)):
            logp.grad = None
            loss, _ = grpo_loss(logp, old, a, mask, 0.2, 0.1, ref, loss_type)
            loss.backward()
            grads.append((loss.detach(), logp.grad.clone()))
        assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])


def test_a_token_level_term_constant_over_episodes_equals_todays_scalar_path(episodes, tiny_models):
    """One pooled episode reward (GRPO as published) and the same value given per token with its
    own group normalisation: the same advantages, the same loss and the same gradient step."""
    scalar = [WeightedReward("r", lambda episodes, **_: [_value(e) for e in episodes], 1.0)]
    dense = [WeightedReward("r", PerToken(), 1.0, Credit(advantage="own"))]
    advs = []
    for rewards in (scalar, dense):
        values, dropped, _, d = score(rewards, episodes)
        advs.append(token_advantages(episodes, rewards, values, dropped, d, G)[0])
    published = group_advantages(torch.tensor([_value(e) for e in episodes], dtype=torch.float64), G)
    for a, b, p, e in zip(*advs, published, episodes, strict=True):
        assert len(a) == sum(turn_lengths(e)) and torch.equal(a, b)
        assert torch.allclose(a, torch.full_like(a, float(p)), atol=1e-12)
    base, proc = tiny_models["student"]
    cfg = GRPOSettings(questions_per_step=3, group_size=G, beta=0.1)
    after = []
    for a in advs:
        m = copy.deepcopy(base)
        opt = policy_optimizer(m, cfg)
        _update(m, copy.deepcopy(base), proc, opt, episodes, [x.float() for x in a], cfg, row := {})
        after.append((row["losses/policy"], [p.detach().clone() for p in m.parameters()]))
    assert after[0][0] == after[1][0]
    assert all(torch.equal(p, q) for p, q in zip(after[0][1], after[1][1], strict=True))


def test_a_term_routed_to_call_turns_has_no_gradient_elsewhere(scripted, tiny_models):
    _, proc = tiny_models["student"]
    _, episodes = scripted
    rewards = [WeightedReward("r", lambda episodes, **_: [3.0, 1.0, 0.0, 2.0], 1.0, Credit(advantage="own", tokens="calls"))]  # fmt: skip
    values, dropped, _, d = score(rewards, episodes)
    advs, _ = token_advantages(episodes, rewards, values, dropped, d, G)
    calls = [route(e, "calls") for e in episodes]
    assert any(c.any() for c in calls) and any((c == 0).any() for c in calls)  # both kinds of token present
    from iapo.rl.grpo import policy_batches

    (mb,) = policy_batches(episodes, proc, 64)
    mask = mb.batch.completion_mask[:, 1:]
    grid = token_grid([advs[i] for i in mb.rows], mask)
    on_call = token_grid([calls[i] for i in mb.rows], mask).bool()
    logp = torch.zeros(mask.shape, requires_grad=True)
    loss, _ = grpo_loss(logp, logp.detach(), grid, mask, 0.2)
    loss.backward()
    assert (logp.grad[~on_call] == 0).all()
    assert (logp.grad[on_call & (grid != 0)] != 0).any()


def test_turn_values_are_broadcast_to_their_turns_and_raw_has_no_baseline(episodes):
    rewards = [WeightedReward("t", PerTurn(), 2.0, Credit(advantage="raw"))]
    values, dropped, _, d = score(rewards, episodes)
    advs, _total = token_advantages(episodes, rewards, values, dropped, d, G)
    for a, e in zip(advs, episodes, strict=True):
        want = torch.cat([torch.full((n,), 2.0 * k) for k, n in enumerate(turn_lengths(e))])
        assert torch.equal(a, want.double())


def test_misconfigured_credit_is_one_clear_error(episodes):
    with pytest.raises(ValueError, match="pooled"):
        Credit(advantage="pooled", tokens="calls")
    with pytest.raises(ValueError, match="cannot be pooled"):
        WeightedReward("t", PerToken())

    class Short(PerToken):
        def __call__(self, prompts, completions, episodes, **_):
            return [[0.0] for _ in episodes]

    with pytest.raises(ValueError, match="generated tokens"):
        score([WeightedReward("s", Short(), 1.0, Credit(advantage="raw"))], episodes)


def test_the_trl_engine_refuses_per_token_credit():
    pytest.importorskip("trl")
    from iapo.rl.trl_engine import refuse_credit

    refuse_credit([WeightedReward("r", lambda episodes, **_: [0.0] * len(episodes))])
    with pytest.raises(ConfigError, match="CPU engine"):
        refuse_credit([WeightedReward("r", lambda episodes, **_: [], 1.0, Credit(advantage="own", tokens="calls"))])


def test_decision_token_and_its_advantage_for_useful_and_decoy_calls(tiny_models):
    _, proc = tiny_models["student"]
    cfg = WorldConfig(templates=["value_pair_later"], in_dist={"table_rows": [5, 6], "table_cols": [5, 6]})
    ex = generate_example(cfg, "train", 0).example
    named = ex.question.split('"')[1:4:2]

    def call(row: str) -> str:
        return (
            "<tool_call>"
            + json.dumps({"name": "focus_on_rows_with_highlight", "arguments": {"rows": [row]}})
            + "</tool_call>"
        )

    useful = _scripted(ex, proc, [call(max(named)), f"<answer>{ex.answer}</answer>"])
    decoy = _scripted(ex, proc, [call(min(named)), "<answer>0</answer>"])
    assert useful.turns[0].call_class == "valid_useful" and decoy.turns[0].decoy
    k = decision_token(useful, 0, proc.tokenizer)
    ids = useful.turns[0].ids
    before = proc.tokenizer.decode(ids[:k])
    assert before.endswith('"rows": ["') and proc.tokenizer.decode(ids[k:]).startswith(max(named)[0])
    eps = [useful, decoy]
    rewards = [WeightedReward("r", lambda episodes, **_: [1.0, 0.0], 1.0, Credit(advantage="own", tokens="calls"))]
    values, dropped, _, d = score(rewards, eps)
    advs, _ = token_advantages(eps, rewards, values, dropped, d, 2)
    st = decision_stats(eps, advs, values, rewards, proc.tokenizer)
    assert st["credit/row_token_adv/useful"] > 0 > st["credit/row_token_adv/decoy"]
    assert (st["credit/r/useful"], st["credit/r/decoy"]) == (1.0, 0.0)
