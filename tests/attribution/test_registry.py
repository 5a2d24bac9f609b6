"""The estimator registry dispatches: an estimator is one scoring function and one entry, and
every path (configs, the reward's components and regions, labels, the cost model) takes it."""

from __future__ import annotations

import json
import math

import pytest
import torch

from iapo.attribution import ESTIMATORS, AttributionSettings, EstimatorSpec, component_scores, describe, token_level
from iapo.rewards.alignment import AttributionRewardConfig
from iapo.rewards.method import MethodConfig, make_rewards
from iapo.rl.grpo import GRPOSettings, train_grpo
from iapo.rollout.loop import RolloutConfig


@pytest.fixture()
def toy(monkeypatch):
    """A token-level toy estimator, registered for the test only: |x - x'| per token."""
    calls: list[tuple[int, int]] = []

    def norm(model, eb, base, comp, s):
        tok = (eb.inputs_embeds - base).norm(dim=-1).detach().cpu() * (comp >= 0)  # (B, T)
        calls.append(tuple(tok.shape))
        return component_scores(tok.double(), comp), torch.full((tok.shape[0],), math.nan), tok

    spec = EstimatorSpec(norm, game=False, complete=False, rows=lambda s: 1, cost=lambda s: 0.1)
    monkeypatch.setitem(ESTIMATORS, "toy_norm", spec)
    return calls


def test_a_registered_estimator_trains_a_grpo_step(toy, tiny_models, small_world, tmp_path):
    import copy

    model, proc = tiny_models["student"]
    model = copy.deepcopy(model)
    attr = AttributionRewardConfig(estimator="toy_norm", target="random", regions=1.0, region_estimator="toy_norm")
    rewards = make_rewards(MethodConfig(attribution=attr), tmp_path, None, seed=0)
    rollout = RolloutConfig(max_calls=1, max_new_tokens=8, batch_size=8, temperature=1.0)
    cfg = GRPOSettings(steps=1, questions_per_step=2, group_size=2, rollout=rollout, beta=0.0)
    train_grpo(model, None, proc, small_world.load("train")[:10], rewards, cfg, tmp_path / "run")
    row = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()][-1]
    assert toy and math.isfinite(row["reward/attribution"]) and row["guard/skipped_steps"] == 0.0
    assert "toy_norm" in token_level() and describe(attr.settings()) == "toy_norm"
    parts = [f"time/reward/attribution/{p}_s" for p in ("student", "component_targets", "region_targets")]
    assert all(row[k] >= 0 for k in parts)  # where the term's time goes, in the report's cost table


def test_an_unregistered_estimator_is_one_clear_error():
    with pytest.raises(ValueError, match=r"'nope' is not a registered estimator \(ig, shapley, occlusion"):
        AttributionSettings(estimator="nope")
    with pytest.raises(ValueError, match="not a registered token-level estimator"):
        AttributionRewardConfig(regions=1.0, region_estimator="occlusion")  # a component game has no tokens
