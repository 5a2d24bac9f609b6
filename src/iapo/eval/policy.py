"""A trained policy's final evaluation, as a run records it: greedy multi-turn rollouts on every
test split (accuracy with its tool statistics, every episode), and the attribution shares of a
few episodes computed as the run's reward computes them. Test splits are refused while a run
trains (`SplitGuard`): training-time curves and any selection use val."""

from __future__ import annotations

import torch
from pydantic import Field

from iapo.attribution import AttributionSettings, attribute_episodes, mean_shares
from iapo.config import StrictModel
from iapo.data.benchmarks import BenchmarkSource
from iapo.data.example import Example
from iapo.eval.evaluate import episode_record
from iapo.rollout.episode import COMPONENTS
from iapo.rollout.loop import Episode, RolloutConfig, rollout
from iapo.rollout.summary import summarize
from iapo.world import World


class EvalConfig(StrictModel):
    val_examples: int = Field(96, ge=1, description="val examples for the curve during training")
    eval_every: int = Field(10, ge=0, description="val evaluation every N GRPO steps (0 = never)")
    test_limit: int | None = Field(None, ge=1, description="examples per test split (None = all)")
    splits: list[str] | None = Field(None, description="test splits (default: every test_* split and ood)")
    attribution_episodes: int = Field(48, ge=0, description="test episodes whose attribution shares are recorded")
    without_tools: bool = Field(
        False,
        description="also evaluate every test split with no tools offered (the policy answers at once): "
        "accuracy with and without tools separates learning to use tools from what RL changed in the answer",
    )


class SplitGuard:
    """Refuses test/ood splits until training is over: tuning and curves use val only."""

    def __init__(self, world: World | BenchmarkSource):
        self.world, self.training = world, True

    def load(self, split: str) -> list[Example]:
        if self.training and (split.startswith("test") or split == "ood"):
            raise RuntimeError(f"split {split!r} requested during training: test splits are for the final evaluation")
        return self.world.load(split)


def final_splits(world: World | BenchmarkSource, cfg: EvalConfig) -> list[str]:
    return cfg.splits or sorted(s for s in world.splits if s.startswith("test") or s == "ood")


def evaluate_policy(
    model, processor, guard: SplitGuard, cfg: EvalConfig, rcfg: RolloutConfig, attr: AttributionSettings | None = None
) -> dict:
    """Greedy multi-turn eval on every test split (`splits`; with `without_tools` the same questions
    with no tools offered too, `splits_no_tools`); attribution shares of a few episodes, computed
    as the run's reward computes them (`attr`; the defaults for a run without the term)."""
    out: dict = {"splits": {}, "episodes": {}}
    all_eps: list[Episode] = []
    for split in final_splits(guard.world, cfg):
        exs = guard.load(split)[: cfg.test_limit]
        eps = rollout(model, processor, exs, rcfg.model_copy(update={"greedy": True}))
        out["splits"][split] = summarize(eps)
        out["episodes"][split] = [episode_record(e, e.correct) for e in eps]
        all_eps.extend(eps)
        if cfg.without_tools:
            bare = rollout(model, processor, exs, rcfg.model_copy(update={"greedy": True, "tools": False}))
            out.setdefault("splits_no_tools", {})[split] = summarize(bare)
    out["attribution"] = attribution_profile(model, processor, spread(all_eps, cfg.attribution_episodes), attr)
    return out


def spread(items: list, n: int) -> list:
    """Up to n items evenly spaced over the list (every split gets its share)."""
    return items[:: max(1, len(items) // max(1, n))][:n] if n else []


def attribution_profile(model, processor, episodes: list[Episode], attr: AttributionSettings | None = None) -> dict:
    """Mean component shares of the final turn, for correct and for incorrect episodes."""
    if not episodes:
        return {}
    turns = attribute_episodes(model, processor, [e.segments for e in episodes], "final", attr)
    groups: dict[str, list[torch.Tensor]] = {"correct": [], "incorrect": []}
    for ep, ts in zip(episodes, turns, strict=True):
        p = mean_shares(ts)
        if p is not None:
            groups["correct" if ep.correct else "incorrect"].append(p)
    return {
        k: {
            "n": len(v),
            **({c: float(x) for c, x in zip(COMPONENTS, torch.stack(v).mean(0), strict=True)} if v else {}),
        }
        for k, v in groups.items()
    }
