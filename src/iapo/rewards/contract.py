"""The one reward contract both GRPO engines drive the same way.

A reward is called as TRL calls its `reward_funcs`: `fn(prompts, completions, episodes=...)`
-> one float per episode, or None where the reward does not apply to it (as in TRL): that
episode's value stays out of its group's statistics for this reward (`iapo.rl.grpo.fill_dropped`). A stateful reward (the attribution term, the TRM) also subclasses
`Reward` and overrides what it needs:

- `prepare(questions)`: once before RL, with every question the run will draw (cached targets);
- `bind_policy(model, processor)`: before every scoring, the live (unwrapped) policy;
- `metrics()`: floats describing the latest call, logged under the reward's own prefix;
- `state_dict()` / `load_state_dict()`: what a resumed run needs to continue identically.

Plain functions are wrapped by `WeightedReward`, so the engines never test for attributes.
`score()` is the one place rewards are called and their metrics named (`reward/<name>`).

Credit (`Credit`, `iapo.rl.credit`). A reward's `level` says what one value is: one per episode
(the default), one per policy turn (broadcast to that turn's tokens) or one per generated token.
Its `WeightedReward.credit` says how the value becomes advantage and which generated tokens it
reaches: `pooled` (the default; episode level only) sums it with the other pooled rewards into
one total normalised once per group, GRPO as published; `own` normalises it within the group on
its own (a dense value: by its group's episode means); `raw` takes weight x value as the
advantage (per-token on-policy distillation). `tokens` routes an own or raw advantage to every
generated token, to the turns that made a tool call, or to the answer turn.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
from pydantic import Field, model_validator

from iapo.config import StrictModel
from iapo.data.example import Example
from iapo.rollout.loop import Episode

Level = Literal["episode", "turn", "token"]


class Credit(StrictModel):
    """How a reward's value becomes advantage, and which generated tokens it reaches."""

    advantage: Literal["pooled", "own", "raw"] = Field(
        "pooled",
        description="pooled: summed with the other pooled rewards, normalised once per group (GRPO); own: "
        "normalised within the group on its own; raw: weight x value, no baseline (per-token distillation)",
    )
    tokens: Literal["all", "calls", "answer"] = Field(
        "all",
        description="the generated tokens the advantage reaches: all, the turns that called a tool, the answer turn",
    )

    @model_validator(mode="after")
    def _routed_alone(self) -> Credit:
        if self.advantage == "pooled" and self.tokens != "all":
            raise ValueError(f"tokens: {self.tokens}: a pooled advantage reaches every token; route advantage: own")
        return self


class Reward:
    """Base class of a stateful reward; every hook is a no-op by default."""

    __name__ = "reward"
    level: Level = "episode"  # turn: a list of values per policy turn; token: per generated token

    def __call__(self, prompts: list[str], completions: list[str], episodes: list[Episode], **kw) -> list:
        raise NotImplementedError

    def prepare(self, questions: list[Example]) -> None:
        """Per-question work done once before RL."""

    def bind_policy(self, model, processor) -> None:
        """The live policy, before each step's scoring."""

    def metrics(self) -> dict[str, float]:
        """Metrics of the latest call (full key names, e.g. `attr/divergence`)."""
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned."""


class FunctionReward(Reward):
    """A plain reward function (`outcome`, `format_reward`, a lambda) as a `Reward`."""

    def __init__(self, fn: Callable[..., list[float]]):
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", "reward")

    def __call__(self, prompts, completions, episodes, **kw) -> list[float]:
        return self.fn(prompts=prompts, completions=completions, episodes=episodes, **kw)


@dataclass
class WeightedReward:
    """A reward under its log name, with its weight in the total."""

    name: str
    fn: Reward | Callable[..., list[float]]
    weight: float = 1.0
    credit: Credit = field(default_factory=Credit)
    _reward: Reward = field(init=False, repr=False)

    def __post_init__(self):
        self._reward = self.fn if isinstance(self.fn, Reward) else FunctionReward(self.fn)
        if self._reward.level != "episode" and self.credit.advantage == "pooled":
            raise ValueError(f"{self.name}: a {self._reward.level}-level reward cannot be pooled; use own or raw")

    @property
    def pooled(self) -> bool:
        return self.credit.advantage == "pooled"

    @property
    def reward(self) -> Reward:
        return self._reward


def prepare(rewards: list[WeightedReward], questions: list[Example]) -> None:
    for r in rewards:
        r.reward.prepare(questions)


def bind_policy(rewards: list[WeightedReward], model, processor) -> None:
    for r in rewards:
        r.reward.bind_policy(model, processor)


def score(
    rewards: list[WeightedReward], episodes: list[Episode]
) -> tuple[torch.Tensor, torch.Tensor, dict[str, float], dict[int, list[torch.Tensor | None]]]:
    """(N, F) reward values of N episodes under F rewards; (N, F) True where a reward returned
    None (its value there is NaN, to be filled by `iapo.rl.grpo.fill_dropped`; a NaN a reward
    returned itself stays and trips the engines' NaN guard); the rewards' own metrics:
    `reward/<name>` is each reward's mean over the episodes it scored, `reward/<name>_dropped`
    how many it left out, `time/reward/<name>_s` its seconds; and the values of the turn- and
    token-level rewards (column -> per episode (L_i,) over its generated tokens, or None), whose
    column holds each episode's mean. The engines add `reward/total` after weighting."""
    prompts = [e.example.question for e in episodes]
    completions = ["".join(t.text for t in e.turns) for e in episodes]
    cols, drops, row, dense = [], [], {}, {}
    for f, r in enumerate(rewards):
        t0 = time.perf_counter()
        got = r.reward(prompts, completions, episodes=episodes)
        row[f"time/reward/{r.name}_s"] = time.perf_counter() - t0
        if r.reward.level != "episode":
            dense[f] = [
                None if v is None else per_token(e, v, r.reward.level, r.name)
                for e, v in zip(episodes, got, strict=True)
            ]
            got = [None if v is None else float(v.mean()) for v in dense[f]]
        vals = torch.tensor([math.nan if v is None else v for v in got], dtype=torch.float64)  # (N,)
        dropped = torch.tensor([v is None for v in got])
        cols.append(vals)
        drops.append(dropped)
        row[f"reward/{r.name}"] = float(vals[~dropped].mean()) if (~dropped).any() else math.nan
        row[f"reward/{r.name}_dropped"] = float(dropped.sum())
        row.update(r.reward.metrics())
    return torch.stack(cols, 1), torch.stack(drops, 1), row, dense


def turn_lengths(ep: Episode) -> list[int]:
    """Generated tokens of each policy turn, as the update's completion mask counts them (a turn
    cut off by the token limit is closed with one end token there)."""
    return [len(s.ids) if s.ids is not None else 0 for s in ep.segments if s.kind == "assistant"]


def per_token(ep: Episode, values, level: Level, name: str) -> torch.Tensor:
    """A turn- or token-level reward's values of one episode -> (L,) over its generated tokens."""
    lengths = turn_lengths(ep)
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    if level == "turn":
        if len(v) != len(lengths):
            raise ValueError(f"{name}: {len(v)} values for the {len(lengths)} turns of {ep.example.id}")
        return v.repeat_interleave(torch.tensor(lengths))
    if len(v) != sum(lengths):
        raise ValueError(f"{name}: {len(v)} values for the {sum(lengths)} generated tokens of {ep.example.id}")
    return v


def weights(rewards: list[WeightedReward]) -> torch.Tensor:
    return torch.tensor([r.weight for r in rewards], dtype=torch.float64)
