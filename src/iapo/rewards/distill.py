"""On-policy distillation as a reward: the teacher scores the student's own tokens.

The student samples its multi-turn episode (its calls, the tool outputs they produce, its
answer); the frozen teacher reads that same episode teacher-forced. The reward of an episode is

    r = (1 / T) * sum_t [log p_teacher(y_t | y_<t) - log p_student(y_t | y_<t)]

over the T tokens the student generated (tool outputs and the prompt are context only): minus a
one-sample estimate of the per-token reverse KL(student || teacher) on the student's own
rollout, the quantity on-policy distillation minimises (GKD, Agarwal et al. 2024, with student
samples only; TRL's GKDTrainer at lmbda = 1 and beta = 1). It goes through the reward contract
as one number per episode beside the outcome reward, so the GRPO update, its KL to the
reference and the group baseline are those of every other method: the dense teacher signal is
averaged over an episode's tokens rather than given per token (a per-token advantage would
change the update itself).

Teacher and student must share a tokenizer (the zoo's roles do); their vision towers may differ:
each reads the episode with its own processor, and the generated tokens are the same ids in
both encodings.
"""

from __future__ import annotations

import math

import torch

from iapo.rewards.contract import Reward
from iapo.rollout.episode import collate, encode
from iapo.rollout.logprobs import token_logprobs
from iapo.rollout.loop import Episode, distinct


class Distillation(Reward):
    """r = mean over the student's generated tokens of log p_teacher - log p_student."""

    __name__ = "distill"

    def __init__(self, teacher, batch_size: int = 8):
        self.teacher = teacher  # (model, processor), frozen
        self.batch_size = batch_size
        self.policy = None
        self.checked = None  # the student processor whose vocabulary was compared with the teacher's
        self.last: dict[str, float] = {}

    def bind_policy(self, model, processor) -> None:
        """Called before every step's scoring: the vocabularies are compared once per processor."""
        if processor is not self.checked:
            if processor.tokenizer.get_vocab() != self.teacher[1].tokenizer.get_vocab():
                raise ValueError("distillation needs a teacher with the student's tokenizer (same vocabulary)")
            self.checked = processor
        self.policy = (model, processor)
        self.teacher[0].to(model.device)

    def __call__(self, prompts: list[str], completions: list[str], episodes: list[Episode], **_) -> list[float | None]:
        if self.policy is None:
            raise RuntimeError("Distillation.bind_policy(model, processor) was not called")
        keys = [e.key for e in episodes]
        uniq, _ = distinct(keys)  # a group's copies are scored once
        sums: dict = {}
        for j in range(0, len(uniq), self.batch_size):
            part = [episodes[i] for i in uniq[j : j + self.batch_size]]
            s = self._logp_sums(*self.policy, part)
            t = self._logp_sums(*self.teacher, part)
            for ep, (ls, n), (lt, nt) in zip(part, s, t, strict=True):
                if n != nt:
                    raise ValueError(f"{ep.example.id}: {n} generated tokens for the student, {nt} for the teacher")
                sums[ep.key] = (lt, ls, n)
        out = [(sums[k][0] - sums[k][1]) / sums[k][2] if sums[k][2] else None for k in keys]
        n_tok = sum(v[2] for v in sums.values())
        self.last = {
            "distill/log_ratio": _mean([x for x in out if x is not None]),
            "distill/teacher_logp": sum(v[0] for v in sums.values()) / max(1, n_tok),
            "distill/student_logp": sum(v[1] for v in sums.values()) / max(1, n_tok),
        }
        return out

    def metrics(self) -> dict[str, float]:
        return dict(self.last)

    @torch.no_grad()
    def _logp_sums(self, model, processor, episodes: list[Episode]) -> list[tuple[float, int]]:
        """(sum of log p of the generated tokens, their number) per episode, under `model`."""
        batch = collate([encode(e.segments, processor) for e in episodes], processor.pad_token_id).to(model.device)
        lp, _ = token_logprobs(model, batch)  # (B, T-1), 0 off the generated tokens
        n = batch.completion_mask[:, 1:].sum(1)  # (B,)
        return [(float(a), int(b)) for a, b in zip(lp.sum(1), n, strict=True)]


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan
