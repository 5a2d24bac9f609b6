"""The attribution term's gate on well-formed episodes (`well_formed_only`)."""

from __future__ import annotations

import math

import pytest

from iapo.rewards.alignment import AttributionReward, AttributionRewardConfig
from iapo.rollout.loop import RolloutConfig, rollout
from tests.rl.test_trl_engine import scripted


def _term(tiny_models, tmp_path, **cfg) -> AttributionReward:
    r = AttributionReward(AttributionRewardConfig(target="evidence", **cfg), None, 0, tmp_path / "targets")
    r.bind_policy(*tiny_models["student"])
    return r


def test_the_gate_scores_well_formed_episodes_alone_and_gives_the_rest_the_least_value(
    tiny_models, small_world, tmp_path
):
    """Well-formed episodes keep the score the ungated term gives them; the others get -D_max,
    below anything a scored episode can get, so malformed calls cannot earn the term."""
    model, proc = tiny_models["student"]
    exs = [ex for ex in small_world.load("train") if ex.valid_paths][:2]
    cut_off = rollout(model, proc, exs, RolloutConfig(max_calls=1, max_new_tokens=3, batch_size=8))
    eps = [*scripted(exs, proc), *cut_off]
    formed = [e.well_formed for e in eps]
    assert formed[:2] == [True, True] and not any(formed[2:])

    gated = _term(tiny_models, tmp_path, well_formed_only=True)
    out = gated([""] * len(eps), [""] * len(eps), episodes=eps)
    alone = _term(tiny_models, tmp_path)(["", ""], ["", ""], episodes=eps[:2])
    assert out[:2] == pytest.approx(alone)
    assert out[2:] == [-4.0, -4.0] == [-gated.max_divergence()] * 2  # components + regions, L1: 2 + 2
    assert all(v is None or v > -4.0 for v in alone)
    assert gated.metrics()["attr/ill_formed"] == 2.0


def test_the_least_value_follows_the_divergence_and_weights():
    js = AttributionReward(AttributionRewardConfig(target="evidence", divergence="js", regions=0.5))
    assert js.max_divergence() == pytest.approx(math.log(2) + 1.0)
