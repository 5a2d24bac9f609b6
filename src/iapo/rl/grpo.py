"""GRPO for multi-turn image-tool agents, CleanRL style: one file, the math in small functions.

Per step: Q questions x G rollouts (`iapo.rollout`) -> weighted rewards (TRL reward-function
convention) -> group-relative advantages, per generated token (`iapo.rl.credit`: the published
scalar unless a reward routes its own) -> clipped policy-ratio loss on the policy's own tokens
only (never prompt, image or tool-output tokens) + k3 KL to the frozen reference (SFT) policy.

This is the CPU default engine. The scale-out engine is TRL's `GRPOTrainer`
(`iapo.rl.trl_engine`); both use this module's rollout shards, advantages and step metrics,
and drive rewards through `iapo.rewards.contract` (docs/grpo.md).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field

from iapo.config import StrictModel
from iapo.data.example import Example
from iapo.models.processor import VLProcessor
from iapo.provenance import record
from iapo.rewards.contract import WeightedReward, bind_policy, prepare, score
from iapo.rl.credit import decision_stats, token_advantages, token_grid
from iapo.rollout.episode import Batch, Encoded, collate, encode
from iapo.rollout.logprobs import shared_prompt_length, token_logprobs
from iapo.rollout.loop import Episode, RolloutConfig, distinct, rollout
from iapo.rollout.summary import tool_stats
from iapo.steps import MetricLog, load_checkpoint, save_checkpoint, seed_everything, timed_eval

log = logging.getLogger(__name__)


class GRPOSettings(StrictModel):
    steps: int = Field(30, ge=1, description="GRPO steps (one rollout and one update each)")
    questions_per_step: int = Field(8, ge=1, description="Q distinct questions per step")
    group_size: int = Field(8, ge=2, description="G rollouts per question")
    lr: float = Field(5e-4, gt=0, description="AdamW learning rate of the policy")
    beta: float = Field(0.02, ge=0, description="KL coefficient to the reference (SFT) policy; 0 = no reference")
    clip_eps: float = Field(0.2, gt=0, description="PPO clip range of the ratio")
    epochs: int = Field(1, ge=1, description="policy updates per rollout batch (mu)")
    loss_type: Literal["grpo", "dapo"] = Field(
        "dapo", description="grpo: mean over each sequence, then over sequences; dapo: mean over all tokens"
    )
    scale_rewards: bool = Field(True, description="divide advantages by the group's reward std")
    max_grad_norm: float = Field(1.0, gt=0, description="gradient norm clip")
    micro_batch: int = Field(32, ge=1, description="episodes per forward/backward (memory)")
    shared_prompt: bool = Field(
        True,
        description="the update runs each GRPO group's shared prompt once for its episodes (rollout.logprobs; the same "
        "loss, float rounding differs); False: every episode in full",
    )
    batch_by_length: bool = Field(
        True,
        description="without shared_prompt: cut the update's micro-batches by episode length (less padding); "
        "False: episodes in rollout order",
    )
    checkpoint_every: int = Field(10, ge=1, description="steps between checkpoints (a run resumes from the last)")
    rollout_shards: int = Field(
        1,
        ge=1,
        description="seeded rollout shards per step; a multiple of the process count makes N-process "
        "runs reproduce 1-process ones (1 = one unseeded rollout, the CPU default)",
    )
    seed: int = Field(0, description="question draws and seeded rollouts; a run sets it from its own seed")
    rollout: RolloutConfig = Field(
        default_factory=lambda: RolloutConfig(temperature=1.0), description="how episodes are sampled"
    )


# --- the math --------------------------------------------------------------------------------------


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token unbiased, non-negative KL(pi || ref) estimate: exp(ref - lp) - (ref - lp) - 1."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1


def grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    adv: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float,
    beta: float = 0.0,
    ref_logp: torch.Tensor | None = None,
    loss_type: str = "dapo",
    n_tokens: float | None = None,
    n_seqs: float | None = None,
    weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped surrogate + beta * KL, averaged over masked tokens.

    logp, old_logp, ref_logp, mask: (B, T); adv: (B,), one per sequence, or (B, T), one per
    token (`iapo.rl.credit`; equal to (B,) where constant along a row). `n_tokens` / `n_seqs` normalise over
    the whole batch when it is split into micro-batches (default: this micro-batch). `weight`
    (B,): the episodes each row stands for (default 1)."""
    w = torch.ones(logp.shape[0], dtype=logp.dtype, device=logp.device) if weight is None else weight.to(logp.dtype)
    mask = mask.to(logp.dtype)
    ratio = torch.exp(logp - old_logp)
    a = adv.unsqueeze(1) if adv.dim() == 1 else adv  # (B, 1) or (B, T)
    per_token = -torch.min(ratio * a, torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * a)
    kl = torch.zeros_like(logp)
    if beta > 0 and ref_logp is not None:
        kl = kl_k3(logp, ref_logp)
        per_token = per_token + beta * kl
    wmask = mask * w.unsqueeze(1)  # (B, T): each row's tokens count once per episode it stands for
    if loss_type == "dapo":
        loss = (per_token * wmask).sum() / (n_tokens or wmask.sum().clamp(min=1))
    else:
        per_seq = (per_token * mask).sum(1) / mask.sum(1).clamp(min=1)
        loss = (per_seq * w).sum() / (n_seqs or w.sum())
    with torch.no_grad():
        m = wmask.sum().clamp(min=1)
        clipped = ((ratio - 1).abs() > clip_eps).to(logp.dtype)
        stats = {"kl": float((kl * wmask).sum() / m), "clip_frac": float((clipped * wmask).sum() / m)}
    return loss, stats


# --- the step's metrics (both engines) ----------------------------------------------------------


def step_metrics(episodes: list[Episode], total: torch.Tensor, adv: torch.Tensor, group_size: int) -> dict[str, float]:
    """The per-step metrics both engines log under the same names: the total reward and its
    spread within groups, groups without an outcome signal, accuracy, tool use and length.
    total: (N,) in group order; adv: (N,) each episode's mean |advantage| over its tokens."""
    outcome_r = torch.tensor([e.correct for e in episodes], dtype=torch.float64).view(-1, group_size)
    return {
        "reward/total": float(total.mean()),
        "reward/group_std": float(total.view(-1, group_size).std(1).mean()),
        "reward/zero_variance_groups": float((outcome_r.std(1) == 0).double().mean()),
        "adv/abs_mean": float(adv.abs().mean()),
        "rollout/accuracy": sum(e.correct for e in episodes) / len(episodes),
        "episode/tokens": sum(sum(len(t.ids) for t in e.turns) for e in episodes) / len(episodes),
        **tool_stats(episodes),
    }


# --- the loop ---------------------------------------------------------------------------------------


@dataclass
class MicroBatch:
    """Episodes `rows` of a step, collated (`batch`, on the model's device), with their encodings,
    the length of the prompt they share (`prefix`, 0: none; `rollout.logprobs`) and how many of the
    step's episodes each row stands for (`weight` (B,): identical episodes run once)."""

    batch: Batch
    rows: torch.Tensor
    encs: list[Encoded]
    prefix: int = 0
    weight: torch.Tensor | None = None


def policy_batches(
    episodes: list[Episode], processor: VLProcessor, size: int, device: torch.device | str = "cpu",
    by_length: bool = False, group_size: int = 0, keys: list | None = None,
) -> list[MicroBatch]:  # fmt: skip
    """Teacher-forced micro-batches of whole episodes (completion_mask = the policy's turns), of at
    most `size` episodes. `group_size` > 1: the episodes come in GRPO groups of that size, one
    prompt each, and a micro-batch holds one group's episodes with the prompt they share run once.
    Else `by_length`: sorted by length and cut where an episode is longer than 1.25x the batch's
    shortest + 16 tokens (less padding); else in rollout order. The loss sums over episodes, so
    only float rounding depends on the cut. `keys` (one per episode): episodes with equal keys
    are one row of weight k (a trained policy repeats itself: half a group's episodes can be
    copies, and a copy's log-probs and gradient are its original's)."""
    n = len(episodes)
    if group_size > 1:  # copies are merged within a group, which stays one micro-batch
        keys = [(i // group_size, k) for i, k in enumerate(keys)] if keys is not None else None
    uniq, count = distinct(keys) if keys is not None else (list(range(n)), [1] * n)
    weight = dict(zip(uniq, count, strict=True))
    encs = {i: encode(episodes[i].segments, processor) for i in uniq}
    if group_size > 1:
        groups = [[i for i in uniq if g <= i < g + group_size] for g in range(0, n, group_size)]
        groups = [g[j : j + size] for g in groups for j in range(0, len(g), size)]
    else:
        order = sorted(uniq, key=lambda i: len(encs[i])) if by_length else uniq
        groups = []
        for i in order:
            g = groups[-1] if groups else None
            if g is None or len(g) == size or (by_length and len(encs[i]) > 1.25 * len(encs[g[0]]) + 16):
                groups.append([])
            groups[-1].append(i)
    out = []
    for g in groups:
        part = [encs[i] for i in g]
        P = shared_prompt_length(part) if group_size > 1 else 0
        w = torch.tensor([float(weight[i]) for i in g], device=device)
        out.append(MicroBatch(collate(part, processor.pad_token_id).to(device), torch.tensor(g), part, P, w))
    return out


def rollout_groups(
    model, processor, examples: list[Example], cfg: GRPOSettings, step: int, shards: range | None
) -> list[Episode]:
    """G rollouts per question. With `rollout_shards` > 1 the questions are split into that many
    shards, each sampled under its own seed (seed, step, shard): a shard's episodes then do not
    depend on which process rolls it out, so N processes reproduce a 1-process run."""
    group = [ex for ex in examples for _ in range(cfg.group_size)]
    if cfg.rollout_shards == 1:
        return rollout(model, processor, group, cfg.rollout)
    shards = shards if shards is not None else range(cfg.rollout_shards)
    per = len(group) // cfg.rollout_shards
    return seeded_rollout(model, processor, group[shards.start * per : shards.stop * per], cfg, step, shards)


def seeded_rollout(
    model, processor, group: list[Example], cfg: GRPOSettings, step: int, shards: range
) -> list[Episode]:
    """Roll `group` out as len(shards) equal consecutive shards, shard k under the seed
    (seed, step, k). Shared by this loop and the TRL engine."""
    per = len(group) // len(shards)
    episodes: list[Episode] = []
    for j, k in enumerate(shards):
        torch.manual_seed(hash((cfg.seed, step, k)) % 2**31)
        episodes += rollout(model, processor, group[j * per : (j + 1) * per], cfg.rollout)
    return episodes


def grpo_step(
    model, ref_model, processor, opt, examples: list[Example], rewards: list[WeightedReward], cfg: GRPOSettings,
    step: int = 0, acc=None,
) -> tuple[dict[str, float], bool]:  # fmt: skip
    """One rollout + update. Returns the log row and whether the update was applied.

    With an `accelerate.Accelerator` of N processes (`acc`), each process rolls out, rewards and
    back-propagates its 1/N of the questions; gradients are averaged by DDP, the loss is
    normalised by the global token count, and the row is averaged over processes."""
    rank, world = (acc.process_index, acc.num_processes) if acc is not None else (0, 1)
    policy = acc.unwrap_model(model) if acc is not None else model
    t0 = time.perf_counter()
    per_rank = cfg.rollout_shards // world
    shards = range(rank * per_rank, (rank + 1) * per_rank) if world > 1 else None
    q = len(examples) // world
    local = examples[rank * q : (rank + 1) * q] if world > 1 and cfg.rollout_shards == 1 else examples
    if world > 1 and cfg.rollout_shards > 1:
        local = examples  # rollout_groups picks this process's shards
    episodes = rollout_groups(policy, processor, local, cfg, step, shards)
    t1 = time.perf_counter()
    bind_policy(rewards, policy, processor)  # the live policy (unwrapped), on its device
    values, dropped, row, dense = score(rewards, episodes)  # (N, F) each
    advs, total = token_advantages(episodes, rewards, values, dropped, dense, cfg.group_size, cfg.scale_rewards)
    t2 = time.perf_counter()
    mean_abs = torch.stack([a.abs().mean() if len(a) else a.new_zeros(()) for a in advs])  # (N,)
    row.update(step_metrics(episodes, total, mean_abs, cfg.group_size))
    row.update(decision_stats(episodes, advs, values, rewards, processor.tokenizer))
    ok = _all_ranks(acc, all(bool(torch.isfinite(a).all()) for a in advs))
    if ok:
        ok = _update(model, ref_model, processor, opt, episodes, [a.float() for a in advs], cfg, row, acc)
    t3 = time.perf_counter()
    row.update({"time/rollout_s": t1 - t0, "time/reward_s": t2 - t1, "time/update_s": t3 - t2, "time/step_s": t3 - t0})
    return _mean_rows(acc, row), ok


def _all_ranks(acc, flag: bool) -> bool:
    """True only if `flag` holds on every process (a skipped step must be skipped everywhere)."""
    if acc is None or acc.num_processes == 1:
        return flag
    t = torch.tensor([0.0 if flag else 1.0], device=acc.device)
    return float(acc.reduce(t, "sum")) == 0.0


def _mean_rows(acc, row: dict[str, float]) -> dict[str, float]:
    if acc is None or acc.num_processes == 1:
        return row
    from accelerate.utils import gather_object

    rows = gather_object([row])
    keys = sorted({k for r in rows for k in r})
    out = {}
    for k in keys:
        vals = [r[k] for r in rows if k in r and math.isfinite(r[k])]
        out[k] = sum(vals) / len(vals) if vals else float("nan")
    return out


def _update(
    model, ref_model, processor, opt, episodes, advs: list[torch.Tensor], cfg: GRPOSettings, row: dict, acc=None
) -> bool:
    """The policy update on the step's episodes; advs: per episode (L_i,) token advantages."""
    world = acc.num_processes if acc is not None else 1
    model.train()
    device = acc.device if acc is not None else next(model.parameters()).device
    shared = cfg.group_size if cfg.shared_prompt and acc is None else 0  # a wrapped model runs rows whole
    # an episode and its copies (same question, same text, same advantages) are one weighted row
    keys = [(e.key, a.numpy().tobytes()) for e, a in zip(episodes, advs, strict=True)]
    mbs = policy_batches(episodes, processor, cfg.micro_batch, device, cfg.batch_by_length, shared, keys)
    mb_advs = [token_grid([advs[i] for i in mb.rows], mb.batch.completion_mask[:, 1:]) for mb in mbs]  # (B, T-1)
    n_local = torch.tensor([float(sum((mb.batch.completion_mask[:, 1:].sum(1) * mb.weight).sum() for mb in mbs))],
                           device=device)  # fmt: skip
    n_tokens = float(acc.reduce(n_local, "sum")) if world > 1 else float(n_local)
    n_seqs = float(len(episodes) * world)
    old_logps, ref_logps = [], []  # (B, T) each; None: the policy's own (one epoch) / no KL
    with torch.no_grad():
        for mb in mbs:
            old_logps.append(token_logprobs(model, mb.batch, False, mb.encs, mb.prefix)[0] if cfg.epochs > 1 else None)
            use_ref = cfg.beta > 0 and ref_model is not None
            ref_logps.append(token_logprobs(ref_model, mb.batch, False, mb.encs, mb.prefix)[0] if use_ref else None)
    params = [p for p in model.parameters() if p.requires_grad]
    stats = {"losses/policy": 0.0, "losses/kl": 0.0, "policy/clip_frac": 0.0, "policy/entropy": 0.0,
             "optim/grad_norm": 0.0}  # fmt: skip
    for _ in range(cfg.epochs):
        opt.zero_grad(set_to_none=True)
        for mb, mb_adv, old_logp, ref_logp in zip(mbs, mb_advs, old_logps, ref_logps, strict=True):
            logp, entropy = token_logprobs(model, mb.batch, True, mb.encs, mb.prefix)  # (B, T) each
            mask = mb.batch.completion_mask[:, 1:]
            loss, st = grpo_loss(
                logp, logp.detach() if old_logp is None else old_logp, mb_adv, mask, cfg.clip_eps, cfg.beta, ref_logp,
                cfg.loss_type, n_tokens, n_seqs, mb.weight,
            )  # fmt: skip
            if not _all_ranks(acc, bool(torch.isfinite(loss))):
                opt.zero_grad(set_to_none=True)
                return False
            # DDP averages gradients over processes; the loss is already a global mean
            (acc.backward(loss * world) if acc is not None else loss.backward())
            wmask = mask * mb.weight.unsqueeze(1)
            w = float(wmask.sum()) / n_tokens * world
            stats["losses/policy"] += loss.item() * world / cfg.epochs
            stats["losses/kl"] += st["kl"] * w / cfg.epochs
            stats["policy/clip_frac"] += st["clip_frac"] * w / cfg.epochs
            stats["policy/entropy"] += float((entropy * wmask).sum()) / n_tokens * world / cfg.epochs
        if acc is not None:
            gnorm = acc.clip_grad_norm_(params, cfg.max_grad_norm)
        else:
            gnorm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        if not _all_ranks(acc, bool(torch.isfinite(torch.as_tensor(gnorm)))):
            opt.zero_grad(set_to_none=True)
            return False
        opt.step()
        stats["optim/grad_norm"] += float(gnorm) / cfg.epochs
    row.update(stats)
    return True


def policy_optimizer(model, cfg: GRPOSettings) -> torch.optim.Optimizer:
    """The policy's optimizer: AdamW without weight decay over the trainable parameters (one
    definition for the loop and the benchmarks that time its steps)."""
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=0.0)


def question_batches(train: list[Example], cfg: GRPOSettings) -> list[list[Example]]:
    """The questions of every step, in order: one seeded draw of `questions_per_step` per step."""
    rng = random.Random(f"grpo:{cfg.seed}")
    return [rng.sample(train, cfg.questions_per_step) for _ in range(cfg.steps)]


def planned_questions(train: list[Example], cfg: GRPOSettings) -> list[Example]:
    """Every question `train_grpo` will draw (what the cached targets are prepared for)."""
    return [ex for batch in question_batches(train, cfg) for ex in batch]


def train_grpo(
    model,
    ref_model,
    processor: VLProcessor,
    train: list[Example],
    rewards: list[WeightedReward],
    cfg: GRPOSettings,
    run_dir: Path,
    progress: Callable[[int, int, dict], None] | None = None,
    on_eval: Callable[[int], dict] | None = None,
    eval_every: int = 0,
    acc=None,
    provenance: dict | None = None,
) -> None:
    """Train in place: per step, rollout -> rewards -> advantages -> update (`grpo_step`), then
    log, evaluate on val every `eval_every` steps and at the end, and checkpoint every
    `checkpoint_every` steps under `run_dir`. A killed run resumes from its last checkpoint with the
    same subsequent rollouts and metrics (RNG states are saved too). Metric rows are logged at
    step + 1: row 0 is the SFT policy's evaluation.

    `acc`: an `accelerate.Accelerator` (`accelerate launch`, DDP or DeepSpeed); every process
    runs this function, the main one logs, evaluates and checkpoints. `provenance` (the run's
    record, `iapo.provenance`) goes into every checkpoint; by default the record of `cfg`."""
    n_procs = acc.num_processes if acc is not None else 1
    if cfg.questions_per_step % n_procs or cfg.rollout_shards % n_procs:
        raise ValueError(
            f"questions_per_step ({cfg.questions_per_step}) and rollout_shards ({cfg.rollout_shards}) must be "
            f"multiples of the process count ({n_procs})"
        )
    if cfg.questions_per_step % cfg.rollout_shards:
        raise ValueError(f"questions_per_step ({cfg.questions_per_step}) must be a multiple of rollout_shards")
    main = acc is None or acc.is_main_process
    seed_everything(cfg.seed)
    if ref_model is not None:
        ref_model.eval().requires_grad_(False)
    optimizer = policy_optimizer(model, cfg)
    batches = question_batches(train, cfg)  # every step's questions, drawn up front

    # resume: weights, optimizer, reward state and the RNGs of the last checkpoint
    start, skipped = 0, 0
    if (state := load_checkpoint(run_dir)) is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["opt"])
        skipped = state["skipped"]
        for r, s in zip(rewards, state.get("rewards", []), strict=False):
            r.reward.load_state_dict(s)
        start = state["step"]
        log.info("resumed GRPO at step %d", start)
    if acc is not None:
        model, optimizer = acc.prepare(model, optimizer)
        if ref_model is not None:
            ref_model.to(acc.device)
    prepare(rewards, [ex for b in batches for ex in b])  # per-question work once, before RL (cached targets)
    provenance = provenance or record(cfg)

    metrics = MetricLog(run_dir, resume_step=start + 1 if start else 0) if main else None
    if metrics is not None and start == 0 and on_eval is not None and eval_every:
        metrics.log(0, timed_eval(on_eval, 0))  # the SFT policy, before any update
    for step in range(start, cfg.steps):
        row, applied = grpo_step(model, ref_model, processor, optimizer, batches[step], rewards, cfg, step, acc)
        skipped += not applied
        row["guard/skipped_steps"] = float(skipped)
        if metrics is None:
            continue
        if on_eval is not None and eval_every and ((step + 1) % eval_every == 0 or step + 1 == cfg.steps):
            row.update(timed_eval(on_eval, step + 1))
        metrics.log(step + 1, row)
        if progress:
            progress(step + 1, cfg.steps, row)
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            policy = acc.unwrap_model(model) if acc is not None else model
            save_checkpoint(run_dir, {
                "step": step + 1, "skipped": skipped, "model": policy.state_dict(), "opt": optimizer.state_dict(),
                "rewards": [r.reward.state_dict() for r in rewards], "provenance": provenance,
            })  # fmt: skip
    if metrics is not None:
        metrics.close()
    if acc is not None:
        acc.wait_for_everyone()
