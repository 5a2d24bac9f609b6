from __future__ import annotations

from iapo.eval.evaluate import evaluate
from iapo.rollout.loop import RolloutConfig


def test_summary_breaks_accuracy_down_by_family_and_question_type(tiny_models, small_world):
    model, proc = tiny_models["student"]
    exs = small_world.load("val")[:12]
    res = evaluate(model, proc, exs, RolloutConfig(greedy=True, max_calls=1, max_new_tokens=8))
    s = res.summary
    assert s["n"] == len(exs) == len(res.episodes)
    assert sum(d["n"] for d in s["families"].values()) == len(exs)
    types = s["question_types"]
    assert sum(d["n"] for d in types.values()) == len(exs)
    assert set(types) == {f"{e.family}/{e.meta['template']}" for e in exs}
    for k, d in types.items():  # each type's accuracy and calls are the means over its episodes
        eps = [ep for ep, e in zip(res.episodes, exs, strict=True) if f"{e.family}/{e.meta['template']}" == k]
        assert abs(d["accuracy"]["mean"] - sum(ep["correct"] for ep in eps) / len(eps)) < 1e-9
        assert abs(d["tools/calls_per_episode"] - sum(len(ep["calls"]) for ep in eps) / len(eps)) < 1e-9
        calls = [c for ep in eps for c in ep["calls"]]
        useless = sum(c == "valid_useless" for c in calls) / len(calls) if calls else 0.0
        assert abs(d["tools/class/valid_useless"] - useless) < 1e-9


def test_without_tools_evaluates_the_same_questions_with_none_offered(tiny_models, small_world):
    from iapo.eval.policy import EvalConfig, SplitGuard, evaluate_policy
    from iapo.rollout.loop import RolloutConfig

    guard = SplitGuard(small_world)
    guard.training = False
    split = sorted(s for s in small_world.splits if s.startswith("test"))[0]
    cfg = EvalConfig(test_limit=4, splits=[split], attribution_episodes=0, without_tools=True)
    out = evaluate_policy(*tiny_models["student"], guard, cfg, RolloutConfig(max_calls=1, max_new_tokens=8))
    full, bare = out["splits"][split], out["splits_no_tools"][split]
    assert bare["accuracy"]["n"] == full["accuracy"]["n"] == 4
    assert bare["tools/calls_per_episode"] == 0.0
    assert "splits_no_tools" not in evaluate_policy(
        *tiny_models["student"], guard, cfg.model_copy(update={"without_tools": False}), RolloutConfig(max_new_tokens=8)
    )
