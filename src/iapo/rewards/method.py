"""A method's rewards: the weights of outcome, format, exact-match, TRM, tool-bonus, curiosity
and distillation rewards and the attribution term, built into `WeightedReward`s (`make_rewards`)."""

from __future__ import annotations

from pathlib import Path

import torch
from pydantic import Field

from iapo.config import StrictModel
from iapo.errors import ConfigError
from iapo.models.build import fast_patch_embed, load
from iapo.rewards import CallPenalty, Curiosity, ToolBonus, exact_match, format_reward, outcome
from iapo.rewards.alignment import TEACHER_TARGETS, AttributionReward, AttributionRewardConfig
from iapo.rewards.contract import Credit, WeightedReward
from iapo.rewards.distill import Distillation
from iapo.rewards.trm import TRMReward, load_trm
from iapo.rollout.loop import RolloutConfig
from iapo.store import ZooDir


class MethodConfig(StrictModel):
    """One method = reward weights (+ the attribution term); everything else is shared."""

    outcome: float = Field(1.0, description="weight of the outcome reward (1 if the final answer is right)")
    format: float = Field(0.2, description="weight of the format reward (every turn parsed, an answer given)")
    exact_match: float = Field(0.0, description="weight of the ToolRL-style match with one reference tool trajectory")
    trm: float = Field(0.0, description="weight of the tool-call reward model's score (--trm)")
    attribution: AttributionRewardConfig | None = Field(None, description="the IAPO term (None: no term)")
    teacher: str = Field(
        "teacher", description="zoo role (or model directory) whose attribution is the target, or who distils"
    )
    distill: float = Field(
        0.0,
        ge=0,
        description="weight of on-policy distillation from `teacher`: the mean over the student's generated "
        "tokens of log p_teacher - log p_student (iapo.rewards.distill)",
    )
    distill_per_token: bool = Field(
        False,
        description="distillation in its anchor's form: each generated token's own log p_teacher - log p_student "
        "is that token's advantage (credit raw); False: its episode mean, one reward among the others",
    )
    credit: dict[str, Credit] = Field(
        default_factory=dict,
        description="reward name -> how its value becomes advantage and which tokens it reaches (iapo.rl.credit), "
        "e.g. {attribution: {advantage: own, tokens: calls}}: IAPO with its credit on the call; default pooled",
    )
    tool_bonus: float = Field(0.0, ge=0, description="b: reward for an episode with a valid, useful tool call")
    tool_bonus_conditional: bool = Field(True, description="pay the tool bonus only when the answer is right")
    tool_bonus_useful: bool = Field(
        True,
        description="pay only calls the world judges useful (they keep the evidence); false: any call that runs "
        "and changes the view, what a benchmark without evidence labels allows",
    )
    curiosity: float = Field(
        0.0, ge=0, description="alpha: Pixel Reasoner's curiosity bonus max(H - RaPR, 0) for an episode with a call"
    )
    curiosity_rate: float = Field(
        0.3, ge=0, le=1, description="H: the call rate of a question above which calls stop paying"
    )
    call_penalty: float = Field(0.0, ge=0, description="beta: weight of min(N - calls, 0), Pixel Reasoner's penalty")
    call_penalty_max_calls: int = Field(1, ge=0, description="N: calls an episode may make before the penalty")

    @property
    def needs_teacher(self) -> bool:
        return bool(self.distill) or (self.attribution is not None and self.attribution.target in TEACHER_TARGETS)


def make_rewards(
    method: MethodConfig,
    zoo_dir: ZooDir | Path,
    trm_dir: Path | None,
    seed: int,
    dtype: torch.dtype = torch.float32,
    rollout_cfg: RolloutConfig | None = None,
) -> list[WeightedReward]:
    """The method's weighted rewards. teacher_own targets are cached in the zoo (`ZooDir.targets`),
    shared by every run and seed that uses the same teacher and settings."""
    zoo = zoo_dir if isinstance(zoo_dir, ZooDir) else ZooDir(zoo_dir)
    rewards = [
        WeightedReward("outcome", outcome, method.outcome),
        WeightedReward("format", format_reward, method.format),
    ]
    if method.exact_match:
        rewards.append(WeightedReward("exact_match", exact_match, method.exact_match))
    if method.trm:
        if trm_dir is None:
            raise ConfigError("method uses trm but no tool-call reward model directory was given (--trm)")
        rewards.append(WeightedReward("trm", TRMReward(load_trm(trm_dir)), method.trm))
    if method.tool_bonus:
        rewards.append(
            WeightedReward(
                "tool_bonus", ToolBonus(method.tool_bonus_conditional, method.tool_bonus_useful), method.tool_bonus
            )
        )
    if method.curiosity:
        rewards.append(WeightedReward("curiosity", Curiosity(method.curiosity_rate), method.curiosity))
    if method.call_penalty:
        rewards.append(WeightedReward("call_penalty", CallPenalty(method.call_penalty_max_calls), method.call_penalty))
    teacher, tdir = None, None
    if method.needs_teacher:
        tdir = zoo.role(method.teacher) if zoo.role(method.teacher).exists() else Path(method.teacher)
        tm, tp = load(tdir, dtype=dtype)
        teacher = (fast_patch_embed(tm).requires_grad_(False), tp)
    if method.distill:
        per_token = method.distill_per_token  # the published form: each token's log ratio is its advantage
        credit = Credit(advantage="raw") if per_token else Credit()
        rewards.append(WeightedReward("distill", Distillation(teacher, per_token=per_token), method.distill, credit))
    if method.attribution is not None:
        term = AttributionReward(method.attribution, teacher, seed, zoo.targets, tdir, rollout_cfg)
        rewards.append(WeightedReward("attribution", term, method.attribution.lam))  # lambda: the term's weight
    return with_credit(rewards, method)


def with_credit(rewards: list[WeightedReward], method: MethodConfig) -> list[WeightedReward]:
    """Each reward with the method's `credit` entry for it, if any (else as built: pooled, per-token
    distillation raw). An entry naming no reward of the method is an error."""
    names = [r.name for r in rewards]
    if unknown := sorted(set(method.credit) - set(names)):
        raise ConfigError(f"credit: {', '.join(unknown)} is not a reward of this method ({', '.join(names)})")
    return [WeightedReward(r.name, r.fn, r.weight, method.credit.get(r.name, r.credit)) for r in rewards]
