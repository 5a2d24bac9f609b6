"""The IAPO term: -lambda * D(p_student, p_target) on the student's own rollout.

p_student is the policy's component attribution (Integrated Gradients, `iapo.attribution`);
p_target is a frozen teacher's attribution of the same rollout, teacher-forced with the
teacher's own tokenizer and processor, or, as a control, a random Dirichlet draw over the
components the episode has. No gradient flows through the term: it is a reward.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field

from iapo.attribution import attribute_episodes, mean_shares
from iapo.config import StrictModel
from iapo.rollout.episode import full_text
from iapo.rollout.loop import Episode


class AttributionRewardConfig(StrictModel):
    lam: float = Field(0.5, ge=0, description="lambda: weight of the divergence penalty")
    divergence: Literal["l1", "js"] = "l1"
    turns: Literal["final", "all"] = Field("final", description="scored turns (METHOD.md: the final answer turn)")
    n_steps: int = Field(8, ge=2, description="IG interpolation steps m")
    method: Literal["riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"] = "riemann_trapezoid"
    baseline: Literal["pad", "blank", "zero"] = Field(
        "pad",
        description="IG baseline embeddings. METHOD.md's default is zero; measured on our trained models, "
        "zero gives a completeness error of 43x at m=8 (RMSNorm's gradient at 0 is ~1/sqrt(eps)), pad 0.15",
    )
    target: Literal["teacher", "random"] = Field("teacher", description="random = Dirichlet control")
    chunk: int = Field(64, ge=1, description="rows per IG forward pass (memory)")
    teacher_device: str | None = Field(
        None, description="where the frozen teacher runs, e.g. cuda:1 (default: the policy's device)"
    )
    max_relative_error: float | None = Field(
        None, gt=0, description="also drop the term when the completeness error exceeds this (default: only NaN/inf)"
    )
    center: Literal["none", "support"] = Field(
        "none",
        description="support: subtract the mean D of the episodes of the same question with as many input "
        "components; D over fewer components is smaller whatever the target, so uncentred the term pays an "
        "episode for skipping tools (no tool output, no history; docs/reading.md section 8)",
    )


def divergence(p: torch.Tensor, q: torch.Tensor, kind: str) -> float:
    """L1 in [0, 2], or Jensen-Shannon in nats, in [0, ln 2]."""
    if kind == "l1":
        return float((p - q).abs().sum())
    m = (p + q) / 2

    def kl(a: torch.Tensor, b: torch.Tensor) -> float:
        nz = a > 0
        return float((a[nz] * (a[nz] / b[nz]).log()).sum())

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


class AttributionReward:
    """Reward function (TRL convention) returning -lambda * D per episode, 0 where dropped.

    `bind_policy` gives it the live policy; `last` holds per-episode shares and counters of
    the latest call for logging and the report."""

    __name__ = "attribution"

    def __init__(self, cfg: AttributionRewardConfig, teacher=None, seed: int = 0):
        if cfg.target == "teacher" and teacher is None:
            raise ValueError("target 'teacher' needs a teacher (model, processor)")
        self.cfg, self.teacher = cfg, teacher
        self.policy = None
        self.gen = torch.Generator().manual_seed(seed)
        self.last: dict = {}
        self.unique_share = 1.0

    def bind_policy(self, model, processor) -> None:
        """The live policy; a teacher without a device of its own joins the policy's device."""
        self.policy = (model, processor)
        if self.teacher is not None:
            self.teacher[0].to(self.cfg.teacher_device or model.device)

    def _shares(self, model, processor, episodes: list[Episode], keep_ids: bool):
        """Shares per episode. Identical episodes (same example, same turns: a group's samples
        often coincide) are attributed once: exact, and IG is the reward's whole cost."""
        c = self.cfg
        first: dict[tuple[str, str], int] = {}
        keys = [(e.example.id, full_text(e.segments)) for e in episodes]
        for i, k in enumerate(keys):
            first.setdefault(k, i)
        uniq = list(first.values())
        turns = attribute_episodes(
            model,
            processor,
            [episodes[i].segments for i in uniq],
            c.turns,
            c.n_steps,
            c.method,
            c.baseline,
            keep_ids,
            c.chunk,
        )
        pos = {i: j for j, i in enumerate(uniq)}
        turns = [turns[pos[first[k]]] for k in keys]
        self.unique_share = len(uniq) / max(1, len(episodes))
        rel = [max((t.relative_error for t in ts), default=math.nan) for ts in turns]
        return [mean_shares(ts) for ts in turns], rel

    def _random_target(self, p_student: torch.Tensor) -> torch.Tensor:
        present = p_student > 0
        draw = -torch.log(torch.rand(int(present.sum()), generator=self.gen))  # normalised: Dirichlet(1)
        q = torch.zeros_like(p_student)
        q[present] = draw / draw.sum()
        return q

    def __call__(self, prompts: list[str], completions: list[str], episodes: list[Episode], **_) -> list[float]:
        if self.policy is None:
            raise RuntimeError("AttributionReward.bind_policy(model, processor) was not called")
        p_s, err_s = self._shares(*self.policy, episodes, keep_ids=True)
        if self.cfg.target == "teacher":
            p_t, err_t = self._shares(*self.teacher, episodes, keep_ids=False)
        else:
            p_t = [self._random_target(p) if p is not None else None for p in p_s]
            err_t = [0.0] * len(episodes)
        dropped, dists = 0, []
        per_ep: list[float | None] = []  # D per episode, None where dropped
        by_tools: dict[bool, list[float]] = {True: [], False: []}  # does the term favour skipping tools?
        for ep, ps, pt, es, et in zip(episodes, p_s, p_t, err_s, err_t, strict=True):
            ok = (
                ps is not None
                and pt is not None
                and all(math.isfinite(e) and e <= (self.cfg.max_relative_error or math.inf) for e in (es, et))
            )
            if not ok:
                dropped += 1
                per_ep.append(None)
                continue
            d = divergence(ps, pt, self.cfg.divergence)
            dists.append(d)
            by_tools[bool(ep.calls)].append(d)
            per_ep.append(d)
        if self.cfg.center == "support":
            per_ep = center_by_support(per_ep, [e.example.id for e in episodes], p_s)
        out = [0.0 if d is None else -self.cfg.lam * d for d in per_ep]
        self.last = {
            "p_student": p_s,
            "p_target": p_t,
            "attr/divergence": sum(dists) / len(dists) if dists else math.nan,
            "attr/divergence_with_calls": _nanmean(by_tools[True]),
            "attr/divergence_no_calls": _nanmean(by_tools[False]),
            "attr/dropped": float(dropped),
            "attr/rel_error_student": _nanmean(err_s),
            "attr/rel_error_target": _nanmean(err_t),
            "attr/unique_episodes": self.unique_share,
        }
        return out


def center_by_support(d: list[float | None], questions: list[str], p: list[torch.Tensor | None]) -> list[float | None]:
    """D minus the mean D of the episodes of the same question whose attribution covers as many
    input components: the term then ranks episodes of one kind against each other and no longer
    carries an offset between kinds (a lone episode of its kind gets 0)."""
    cells: dict[tuple[str, int], list[float]] = {}
    keys = [(q, int((x > 0).sum())) if x is not None else None for q, x in zip(questions, p, strict=True)]
    for k, v in zip(keys, d, strict=True):
        if k is not None and v is not None:
            cells.setdefault(k, []).append(v)
    return [None if v is None else v - sum(cells[k]) / len(cells[k]) for k, v in zip(keys, d, strict=True)]


def _nanmean(xs: list[float]) -> float:
    v = [x for x in xs if math.isfinite(x)]
    return sum(v) / len(v) if v else math.nan
