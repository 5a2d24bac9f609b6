"""On-policy distillation as a reward: the teacher scores the student's own tokens.

The student samples its multi-turn episode (its calls, the tool outputs they produce, its
answer); the frozen teacher reads that same episode teacher-forced. The reward of an episode is

    r = (1 / T) * sum_t [log p_teacher(y_t | y_<t) - log p_student(y_t | y_<t)]

over the T tokens the student generated (tool outputs and the prompt are context only): minus a
one-sample estimate of the per-token reverse KL(student || teacher) on the student's own
rollout, the quantity on-policy distillation minimises (GKD, Agarwal et al. 2024, with student
samples only; TRL's GKDTrainer at lmbda = 1 and beta = 1).

Two forms. `per_token=False` (the default, and all versions <= 0.4): one number per episode
beside the outcome reward, through the group baseline like every other reward: the signal is
averaged over an episode's tokens. `per_token=True`, the published recipe: each generated token
t gets its own value log p_teacher(y_t) - log p_student(y_t) (a token-level reward; the method
gives it `Credit(advantage="raw")`, so it is that token's advantage beside the outcome's): the
teacher's disagreement lands on the token it disagrees with, e.g. the row a call names.

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
    """r = mean over the student's generated tokens of log p_teacher - log p_student, or
    (`per_token`) each token's own log p_teacher - log p_student."""

    __name__ = "distill"

    def __init__(self, teacher, batch_size: int = 8, per_token: bool = False):
        self.teacher = teacher  # (model, processor), frozen
        self.batch_size = batch_size
        self.level = "token" if per_token else "episode"
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

    def __call__(self, prompts: list[str], completions: list[str], episodes: list[Episode], **_) -> list:
        if self.policy is None:
            raise RuntimeError("Distillation.bind_policy(model, processor) was not called")
        keys = [e.key for e in episodes]
        uniq, _ = distinct(keys)  # a group's copies are scored once
        per: dict = {}  # key -> (teacher, student) log-probs of its generated tokens, (L,) each
        for j in range(0, len(uniq), self.batch_size):
            part = [episodes[i] for i in uniq[j : j + self.batch_size]]
            s = self._token_logps(*self.policy, part)
            t = self._token_logps(*self.teacher, part)
            for ep, ls, lt in zip(part, s, t, strict=True):
                if len(ls) != len(lt):
                    raise ValueError(
                        f"{ep.example.id}: {len(ls)} generated tokens for the student, {len(lt)} for the teacher"
                    )
                per[ep.key] = (lt, ls)
        diff = {k: lt - ls for k, (lt, ls) in per.items()}
        means = [float(diff[k].mean()) if len(diff[k]) else None for k in keys]
        n_tok = max(1, sum(len(lt) for lt, _ in per.values()))
        self.last = {
            "distill/log_ratio": _mean([x for x in means if x is not None]),
            "distill/teacher_logp": sum(float(lt.sum()) for lt, _ in per.values()) / n_tok,
            "distill/student_logp": sum(float(ls.sum()) for _, ls in per.values()) / n_tok,
        }
        if self.level == "token":
            return [diff[k] if len(diff[k]) else None for k in keys]
        return means

    def metrics(self) -> dict[str, float]:
        return dict(self.last)

    @torch.no_grad()
    def _token_logps(self, model, processor, episodes: list[Episode]) -> list[torch.Tensor]:
        """Per episode (L,) float64 log p of its generated tokens, in order, under `model`."""
        batch = collate([encode(e.segments, processor) for e in episodes], processor.pad_token_id).to(model.device)
        lp, _ = token_logprobs(model, batch)  # (B, T-1), 0 off the generated tokens
        mask = batch.completion_mask[:, 1:].bool()
        return [lp[i][mask[i]].double().cpu() for i in range(len(episodes))]


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan
