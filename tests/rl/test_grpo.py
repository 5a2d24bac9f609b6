"""GRPO math against hand-computed values, the loss mask, NaN guard and exact resume."""

from __future__ import annotations

import json
import math

import pytest
import torch

from iapo.rewards import format_reward, outcome
from iapo.rewards.contract import WeightedReward
from iapo.rl.credit import fill_dropped, group_advantages
from iapo.rl.grpo import GRPOSettings, grpo_loss, kl_k3, policy_batches, train_grpo
from iapo.rollout.episode import encode
from iapo.rollout.loop import RolloutConfig, rollout


def test_group_advantages_by_hand():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    adv = group_advantages(r, 4)
    std = math.sqrt(4 * 0.25 / 3)  # unbiased std of (1, 0, 0, 1)
    expect = [0.5 / (std + 1e-4), -0.5 / (std + 1e-4)] * 2
    assert torch.allclose(adv[:4], torch.tensor([expect[0], expect[1], expect[1], expect[0]]), atol=1e-6)
    assert torch.equal(adv[4:], torch.zeros(4))  # all-equal group: zero, no NaN
    assert torch.allclose(group_advantages(r, 4, scale=False)[:4], torch.tensor([0.5, -0.5, -0.5, 0.5]))


def test_dropped_term_stays_out_of_its_group():
    """Outcome + a penalty term that was dropped (NaN) for episode 1 of group 0. The dropped
    episode gets the group's mean term (-0.4), not 0.0, which would be the best value in the group:
    its advantage then comes from its outcome alone; a group with no scored term gets 0."""
    outcome_col = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    term = torch.tensor([-0.2, math.nan, -0.6, math.nan, math.nan, math.nan])
    filled = fill_dropped(torch.stack([outcome_col, term], 1), torch.stack([outcome_col < 0, term.isnan()], 1), 3)
    assert torch.allclose(filled[:, 1], torch.tensor([-0.2, -0.4, -0.6, 0.0, 0.0, 0.0]))
    assert torch.equal(filled[:, 0], outcome_col)
    total = filled @ torch.tensor([1.0, 1.0])
    adv = group_advantages(total, 3, scale=False)
    # episodes 0 and 1 are both right; 1's term is left out, so it sits between 0 (-0.2) and a 0.0 fill
    assert adv[1] < adv[0] and adv[1] == pytest.approx((1.0 - 0.4) - float(total[:3].mean()))
    naive = group_advantages(torch.nan_to_num(torch.stack([outcome_col, term], 1)) @ torch.tensor([1.0, 1.0]), 3)
    assert naive[1] > naive[0]  # what the old 0.0 did: the dropped episode ranked first


def test_clipped_objective_by_hand():
    logp = torch.tensor([[-1.0, -2.0], [-0.5, -0.7]])
    old = torch.tensor([[-1.1, -2.0], [-0.5 - math.log(1.3), -0.7]])
    adv = torch.tensor([2.0, -1.0])
    mask = torch.tensor([[1, 1], [1, 0]])
    loss, st = grpo_loss(logp, old, adv, mask, clip_eps=0.2)
    # row 0: ratios e^0.1 and 1 (inside the clip) -> -2 e^0.1, -2
    # row 1: ratio 1.3, A < 0 -> min(-1.3, -1.2) = -1.3 -> +1.3; second token masked
    expect = (-2 * math.exp(0.1) - 2 + 1.3) / 3
    assert loss.item() == pytest.approx(expect, abs=1e-6)
    assert st["clip_frac"] == pytest.approx(1 / 3)
    # grpo loss type: per-sequence means, then the mean over sequences
    loss_g, _ = grpo_loss(logp, old, adv, mask, clip_eps=0.2, loss_type="grpo")
    assert loss_g.item() == pytest.approx(((-2 * math.exp(0.1) - 2) / 2 + 1.3) / 2, abs=1e-6)


def test_kl_k3_by_hand():
    assert kl_k3(torch.tensor(-1.0), torch.tensor(-1.5)).item() == pytest.approx(math.exp(-0.5) + 0.5 - 1, abs=1e-7)
    assert kl_k3(torch.tensor(-1.0), torch.tensor(-1.0)).item() == 0.0
    logp, ref = torch.tensor([[-1.0]]), torch.tensor([[-1.5]])
    loss, _st = grpo_loss(logp, logp, torch.tensor([0.0]), torch.ones(1, 1), 0.2, beta=0.5, ref_logp=ref)
    assert loss.item() == pytest.approx(0.5 * (math.exp(-0.5) - 0.5), abs=1e-7)


RCFG = RolloutConfig(max_calls=1, max_new_tokens=6, temperature=1.0, batch_size=16)


def test_loss_mask_is_the_policy_tokens_only(tiny_models, small_world):
    model, proc = tiny_models["student"]
    exs = small_world.load("train")[:2]
    eps = rollout(model, proc, exs, RCFG)
    (mb,) = policy_batches(eps, proc, 8)
    batch = mb.batch
    for i, ep in enumerate(eps):
        gen = [tok for t in ep.turns for tok in (t.ids if not t.truncated else [*t.ids, proc.eos_token_id])]
        masked = batch.input_ids[i][batch.completion_mask[i].bool()].tolist()
        assert masked == gen  # exactly the generated ids, nothing from prompt, image or tool output
    # the loss has no gradient on any other position
    logp = torch.zeros(batch.input_ids[:, 1:].shape, requires_grad=True)
    loss, _ = grpo_loss(logp, logp.detach(), torch.ones(len(eps)), batch.completion_mask[:, 1:], 0.2)
    loss.backward()
    assert (logp.grad[batch.completion_mask[:, 1:] == 0] == 0).all()
    assert (logp.grad[batch.completion_mask[:, 1:] == 1] != 0).all()


def _cfg(**kw) -> GRPOSettings:
    return GRPOSettings(steps=4, questions_per_step=2, group_size=2, checkpoint_every=2, rollout=RCFG, beta=0.1, **kw)


def _rows(run_dir):
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]


def test_resume_gives_the_same_metrics(tiny_models, small_world, tmp_path):
    import copy

    base, proc = tiny_models["student"]
    train = small_world.load("train")[:20]
    rewards = [WeightedReward("outcome", outcome), WeightedReward("format", format_reward, 0.5)]
    # the random policy rarely gets reward; give every episode a varied reward so updates happen
    rewards.append(WeightedReward("ids", lambda episodes, **_: [sum(e.turns[0].ids) % 7 / 7 for e in episodes]))

    straight = copy.deepcopy(base)
    train_grpo(straight, copy.deepcopy(base), proc, train, rewards, _cfg(), tmp_path / "a")

    class Killed(Exception):
        pass

    def kill_at_3(step, total, row):
        if step == 3:
            raise Killed

    resumed = copy.deepcopy(base)
    with pytest.raises(Killed):
        train_grpo(resumed, copy.deepcopy(base), proc, train, rewards, _cfg(), tmp_path / "b", progress=kill_at_3)
    resumed = copy.deepcopy(base)  # a fresh process: weights come from the checkpoint
    train_grpo(resumed, copy.deepcopy(base), proc, train, rewards, _cfg(), tmp_path / "b")
    a, b = _rows(tmp_path / "a"), _rows(tmp_path / "b")
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    assert a == b
    assert any(r["optim/grad_norm"] > 0 for r in a)
    for p, q in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)


def test_nan_reward_skips_the_step(tiny_models, small_world, tmp_path):
    import copy

    base, proc = tiny_models["student"]
    model = copy.deepcopy(base)
    calls = {"n": 0}

    def flaky(episodes, **_):
        calls["n"] += 1
        return [math.nan if calls["n"] == 1 else sum(e.turns[0].ids) % 7 / 7 for e in episodes]

    cfg = GRPOSettings(steps=2, questions_per_step=2, group_size=2, rollout=RCFG, beta=0.0)
    train_grpo(model, None, proc, small_world.load("train")[:10], [WeightedReward("flaky", flaky)], cfg, tmp_path)
    rows = _rows(tmp_path)
    assert rows[0]["guard/skipped_steps"] == 1.0 and "losses/policy" not in rows[0]
    assert rows[1]["guard/skipped_steps"] == 1.0 and math.isfinite(rows[1]["losses/policy"])
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), base.parameters(), strict=True))


def test_token_logprobs_run_the_head_on_completion_rows_only_with_the_same_values(tiny_models, small_world):
    """The LM head and log-softmax run on the completion rows alone: the values are the full
    head's, bit for bit, and the policy gradient the same up to float summation order."""
    import random

    from iapo.rollout.episode import collate, encode
    from iapo.rollout.logprobs import token_logprobs
    from iapo.supervised.sft import sft_segments

    model, proc = tiny_models["student"]
    exs = small_world.load("val", limit=6)
    b = collate([encode(sft_segments(ex, random.Random(i), tools=True), proc) for i, ex in enumerate(exs)],
                proc.pad_token_id)  # fmt: skip
    sel = b.completion_mask[:, 1:].bool()
    assert 0 < sel.sum() < sel.numel() / 3  # mostly prompt and image tokens

    def full_head() -> tuple[torch.Tensor, torch.Tensor]:
        logp = torch.log_softmax(model(**b.model_inputs()).logits[:, :-1].float(), -1)
        return logp.gather(-1, b.input_ids[:, 1:].unsqueeze(-1)).squeeze(-1), -(logp.exp() * logp).sum(-1)

    lp, ent = token_logprobs(model, b, with_entropy=True)
    ref_lp, ref_ent = full_head()
    assert torch.equal(lp[sel], ref_lp[sel]) and torch.equal(ent[sel], ref_ent[sel])
    assert not lp[~sel].any() and not ent[~sel].any()
    grads = []
    for fn in (lambda: token_logprobs(model, b)[0], lambda: full_head()[0]):
        model.zero_grad()
        (fn() * sel).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    model.zero_grad()
    err = (grads[0] - grads[1]).abs().max() / grads[1].abs().max()
    assert err < 1e-4, err


def test_a_groups_shared_prompt_runs_once_with_the_same_logprobs_and_gradient(tiny_models, small_world):
    """rollout.logprobs: the G episodes of a question share their prompt; running it once gives every
    row's completion log-probs and the policy gradient of running each row in full."""
    from iapo.rollout.logprobs import shared_prompt_length, token_logprobs

    model, proc = tiny_models["student"]
    ex = small_world.load("train")[0]
    torch.manual_seed(3)
    eps = rollout(model, proc, [ex] * 4, RolloutConfig(max_calls=2, max_new_tokens=12))
    (mb,) = policy_batches(eps, proc, 8, group_size=4)
    assert mb.prefix >= 16 and mb.prefix == shared_prompt_length(mb.encs) < min(map(len, mb.encs))
    sel = mb.batch.completion_mask[:, 1:].bool()
    results = []
    for prefix in (mb.prefix, 0):
        model.zero_grad()
        lp, ent = token_logprobs(model, mb.batch, True, mb.encs, prefix)
        (lp * sel).sum().backward()
        grad = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        results.append((lp, ent, grad))
    model.zero_grad()
    (lp, ent, grad), (ref_lp, ref_ent, ref_grad) = results
    assert torch.allclose(lp, ref_lp, atol=1e-5) and torch.allclose(ent, ref_ent, atol=1e-5)
    assert (grad - ref_grad).abs().max() / ref_grad.abs().max() < 1e-4
    # another question shares at most the tokens before its own tool spec and image
    other = rollout(model, proc, small_world.load("train")[1:2], RolloutConfig(max_calls=0, max_new_tokens=4))
    assert shared_prompt_length([mb.encs[0], encode(other[0].segments, proc)]) <= mb.encs[0].spans[2][0]


@pytest.mark.parametrize("loss_type", ["dapo", "grpo"])
def test_copies_of_an_episode_run_once_with_the_same_loss_and_gradient(tiny_models, small_world, loss_type):
    """A group's identical episodes (same text, same advantage) are one row of weight k: the loss,
    its gradient and the logged statistics are those of the rows run one by one."""
    from iapo.rollout.logprobs import token_logprobs

    model, proc = tiny_models["student"]
    ex = small_world.load("train")[0]
    torch.manual_seed(5)
    a, b = rollout(model, proc, [ex] * 2, RolloutConfig(max_calls=1, max_new_tokens=8))
    eps, adv = [a, b, a, a], torch.tensor([0.5, -1.0, 0.5, 0.5])
    keys = [(e.key, float(x)) for e, x in zip(eps, adv, strict=True)]
    out = []
    for k in (None, keys):
        mbs = policy_batches(eps, proc, 8, group_size=4, keys=k)
        n_tok = float(sum((mb.batch.completion_mask[:, 1:].sum(1) * mb.weight).sum() for mb in mbs))
        model.zero_grad()
        (mb,) = mbs
        lp, _ = token_logprobs(model, mb.batch, False, mb.encs, mb.prefix)
        loss, st = grpo_loss(lp, lp.detach(), adv[mb.rows], mb.batch.completion_mask[:, 1:], 0.2, 0.1,
                             lp.detach() - 0.1, loss_type, n_tok, 4.0, mb.weight)  # fmt: skip
        loss.backward()
        out.append((len(mb.rows), loss.item(), st, torch.cat([p.grad.flatten() for p in model.parameters()
                                                               if p.grad is not None])))  # fmt: skip
    model.zero_grad()
    (n_all, l_all, st_all, g_all), (n_one, l_one, st_one, g_one) = out
    assert (n_all, n_one) == (4, 2)
    assert l_one == pytest.approx(l_all, rel=1e-5) and st_one == pytest.approx(st_all, rel=1e-5)
    assert (g_one - g_all).abs().max() <= 1e-5 * g_all.abs().max()
