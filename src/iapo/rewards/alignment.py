"""The IAPO term: -D(p_student, p_target) on the student's own rollout, weighted by lambda in
the method's reward sum (as TRL's `reward_weights`; `iapo.rewards.method`).

p_student is the policy's component attribution of its final turn (`iapo.attribution`: the
method defines it with Integrated Gradients; the default estimator is occlusion, leave one
component out, exact for its own definition). p_target is one of (`target`):

- `teacher_own` (cached, `iapo.rewards.targets`): the teacher's shares on its own episodes of
  the question, averaged over its correct ones;
- `teacher_forced`: a frozen teacher's attribution of the same rollout, teacher-forced with the
  teacher's own tokenizer and processor (computed in every step);
- `evidence` and `random`: controls without a teacher.

No gradient flows through the term: it is a reward. Each call also logs what the term does
(`attr/*`): its divergence, split by kind of episode, and its rank correlation within groups
with correctness, with making a call and with a useful call.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field, field_validator, model_validator
from scipy.stats import spearmanr

from iapo.attribution import (
    ESTIMATORS,
    OTHER,
    AttributionSettings,
    components_and_regions,
    mean_shares,
    regions_of,
)
from iapo.attribution.episodes import registered
from iapo.attribution.regions import PATCHES, move_regions
from iapo.attribution.regions import l1 as region_l1
from iapo.data.example import Example
from iapo.rewards.contract import Reward
from iapo.rewards.targets import (
    TargetCache,
    checkpoint_fingerprint,
    derangement,
    evidence_regions,
    evidence_target,
    fill_cache,
    question_key,
)
from iapo.rollout.episode import COMPONENTS
from iapo.rollout.loop import Episode, RolloutConfig, distinct

Target = Literal["teacher_own", "teacher_forced", "random", "evidence"]
TEACHER_TARGETS = ("teacher_own", "teacher_forced")


class AttributionRewardConfig(AttributionSettings):
    """The term's settings; how attribution is computed (estimator, m, rule, baseline, chunk,
    completeness) is inherited from `AttributionSettings`, the one home of those defaults."""

    lam: float = Field(0.5, ge=0, description="lambda: weight of the divergence penalty")
    divergence: Literal["l1", "js"] = Field("l1", description="D: L1 in [0, 2], or Jensen-Shannon in nats")
    turns: Literal["final", "all"] = Field("final", description="scored turns: the final answer turn, or all")
    target: Target = Field(
        "teacher_own",
        description="what p_student is compared with (module docstring). teacher_own: the only target never "
        "below outcome GRPO on val in the two measured worlds, and the only one that helps in the sparse-reward "
        "regime; teacher_forced is better on the quickstart's world (research/iapo_targets/README.md)",
    )
    teacher_samples: int = Field(1, ge=1, description="teacher_own: episodes per question (1 = greedy)")
    permute: bool = Field(
        False,
        description="teacher_own: each question takes the target of another question of its template (a seeded "
        "derangement of the run's questions; regions carried over by position): the control that keeps the "
        "incentive's shape and removes the teacher's knowledge of the question",
    )
    evidence_share: float = Field(0.8, gt=0, le=1, description="evidence: share on the evidence component")
    teacher_device: str | None = Field(
        None, description="where the frozen teacher runs, e.g. cuda:1 (default: the policy's device)"
    )
    max_relative_error: float | None = Field(
        None, gt=0, description="also drop the term when the completeness error exceeds this (default: only NaN/inf)"
    )
    components: float = Field(1.0, ge=0, description="weight of the component-level divergence in D")
    regions: float = Field(
        1.0,
        ge=0,
        description="weight of the region-level divergence in D: where inside the images (the original's cells or "
        "chart values, mapped through each tool's geometry) the attribution falls (iapo.attribution.regions); "
        "0 = components only. Default 1 (components + regions) since 0.3.1: the highest mean final val accuracy "
        "over six zoos of the three teacher_own settings of issue 40's grid (research/decisive/README.md)",
    )
    region_estimator: str = Field(
        "grad_x_delta",
        description="the token-level estimator (`attribution.token_level()`) whose attribution region shares sum "
        "(ig: n_steps nodes of rule)",
    )
    patches: int = Field(PATCHES, ge=1, description="regions of an image without unit boxes: a patches x patches grid")
    well_formed_only: bool = Field(
        False,
        description="score only well-formed episodes (every turn parsed, an answer given); the others get the "
        "term's least value, -D_max. Without it a student whose calls rarely parse can earn the term with "
        "malformed calls (research/distractor: calls until the limit, never an answer)",
    )
    center: Literal["none", "support"] = Field(
        "none",
        description="support: subtract the mean D of the episodes of the same question with as many input "
        "components: with teacher_forced the uncentred term carries an offset between episodes with and "
        "without a call, whose sign depends on the teacher (docs/method.md)",
    )

    @model_validator(mode="after")
    def _some_divergence(self) -> AttributionRewardConfig:
        if self.components == 0 and self.regions == 0:
            raise ValueError("components and regions are both 0: the term would measure nothing")
        if self.permute and self.target != "teacher_own":
            raise ValueError(f"permute: permutes teacher_own targets; set target: teacher_own (not {self.target})")
        return self

    @field_validator("region_estimator")
    @classmethod
    def _token_level(cls, v: str) -> str:
        return registered(v, token=True)

    @field_validator("target", mode="before")
    @classmethod
    def _old_name(cls, v: str) -> str:
        return "teacher_forced" if v == "teacher" else v  # the name of versions <= 0.1

    def settings(self) -> AttributionSettings:
        """The attribution part of this config."""
        return AttributionSettings(**{k: getattr(self, k) for k in AttributionSettings.model_fields})

    def region_settings(self) -> AttributionSettings | None:
        """The token-level attribution behind region shares (None when regions are off)."""
        if not self.regions:
            return None
        update = {"estimator": self.region_estimator, "completeness": False, "tokens": "images"}
        return self.settings().model_copy(update=update)

    def cache_key(self) -> dict:
        """What a teacher_own target depends on (besides the teacher and the rollout)."""
        key = self.settings().model_dump(exclude={"chunk", "completeness", "tokens"})
        if self.regions:  # component-only caches keep their key
            key["regions"] = {"estimator": self.region_estimator, "patches": self.patches}
            key["regions"].update({k: getattr(self, k) for k in ESTIMATORS[self.region_estimator].reads})
        return key


def divergence(p: torch.Tensor, q: torch.Tensor, kind: str) -> float:
    """L1 in [0, 2], or Jensen-Shannon in nats, in [0, ln 2]."""
    if kind == "l1":
        return float((p - q).abs().sum())
    m = (p + q) / 2

    def kl(a: torch.Tensor, b: torch.Tensor) -> float:
        nz = a > 0
        return float((a[nz] * (a[nz] / b[nz]).log()).sum())

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


class AttributionReward(Reward):
    """-D per episode, None where dropped (the `Reward` contract); lambda is its weight.

    `bind_policy` gives it the live policy; `prepare(questions)` fills the teacher_own cache
    before RL; `last` holds per-episode shares of the latest call, `metrics()` its `attr/*`."""

    __name__ = "attribution"

    def __init__(
        self,
        cfg: AttributionRewardConfig,
        teacher=None,
        seed: int = 0,
        cache_dir: Path | None = None,
        teacher_dir: Path | None = None,
        rollout_cfg: RolloutConfig | None = None,
    ):
        if cfg.target in TEACHER_TARGETS and teacher is None:
            raise ValueError(f"target {cfg.target!r} needs a teacher (model, processor)")
        self.cfg, self.teacher = cfg, teacher
        self.policy = None
        self.gen = torch.Generator().manual_seed(seed)
        self.seed = seed
        self.partners: dict[str, Example] | None = None  # permute: question key -> whose target it takes
        self.last: dict = {}
        self.unique_share = 1.0
        self.cache: TargetCache | None = None
        self.rollout_cfg = rollout_cfg or RolloutConfig()
        if cfg.target == "teacher_own":
            settings = {
                **cfg.cache_key(),
                "samples": cfg.teacher_samples,
                "rollout": self.rollout_cfg.model_dump(exclude={"batch_size", "greedy"}),
            }
            fp = checkpoint_fingerprint(teacher_dir, teacher[0])
            self.cache = TargetCache(cache_dir or Path(".iapo_targets"), fp, settings)

    def bind_policy(self, model, processor) -> None:
        """The live policy; a teacher without a device of its own joins the policy's device."""
        self.policy = (model, processor)
        if self.teacher is not None:
            self.teacher[0].to(self.cfg.teacher_device or model.device)

    def prepare(self, questions: list[Example], progress=None) -> int:
        """teacher_own: compute (or load) the target of every question RL will draw. Returns how
        many were computed now."""
        if self.cache is None:
            return 0
        if self.cfg.permute and self.partners is None and questions:  # fixed at the first call: before RL
            self.partners = derangement(questions, self.seed)
        return fill_cache(
            self.cache, *self.teacher, questions, self.rollout_cfg, self.cfg.teacher_samples,
            self.cfg.settings(), progress=progress, regions=self.cfg.region_settings(), patches=self.cfg.patches,
        )  # fmt: skip

    def _source(self, ex: Example) -> Example | None:
        """The question whose teacher_own target `ex` is compared with: itself, or its partner."""
        if not self.cfg.permute:
            return ex
        return (self.partners or {}).get(question_key(ex))

    def _own_target(self, ex: Example) -> torch.Tensor | None:
        src = self._source(ex)
        return None if src is None else self.cache.get(src)

    def _own_regions(self, ex: Example) -> dict[str, float] | None:
        src = self._source(ex)
        shares = None if src is None else self.cache.get_regions(src)
        if shares is None or src is ex:
            return shares
        return move_regions(shares, src.layout, ex.layout, self.cfg.patches)

    def metrics(self) -> dict[str, float]:
        return {k: v for k, v in self.last.items() if isinstance(v, float)}

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        if "gen" in state:
            self.gen.set_state(state["gen"])

    def _unique(self, episodes: list[Episode], fn):
        """fn over the distinct episodes only, mapped back to all: a group's samples often
        coincide (same example, same turns), and attribution is the reward's whole cost."""
        keys = [e.key for e in episodes]
        uniq, _ = distinct(keys)
        vals = dict(zip((keys[i] for i in uniq), fn([episodes[i] for i in uniq]), strict=True))
        self.unique_share = len(uniq) / max(1, len(episodes))
        return [vals[k] for k in keys]

    def _attribute(self, model, processor, episodes: list[Episode], keep_ids: bool) -> tuple[list, list, list]:
        """Per episode: component shares, their worst completeness error and region shares (None
        where the part's weight is 0), from one call on the distinct episodes (both parts share
        its batches: `attribution.components_and_regions`)."""
        c, n = self.cfg, len(episodes)

        def both(eps: list[Episode]) -> list[tuple]:
            turns, regions = components_and_regions(
                model, processor, [(e.segments, e.example.layout) for e in eps], c.turns,
                c.settings() if c.components else None, c.region_settings(), c.patches, keep_ids,
            )  # fmt: skip
            return list(zip(turns or [None] * len(eps), regions or [None] * len(eps), strict=True))

        turns, regions = zip(*self._unique(episodes, both), strict=True) if n else ((), ())
        p = [None if ts is None else mean_shares(ts) for ts in turns]
        rel = [math.nan if ts is None else max((t.relative_error for t in ts), default=math.nan) for ts in turns]
        return p, rel, list(regions)

    def _region_targets(self, episodes: list[Episode], teacher: tuple | None) -> list[dict[str, float] | None]:
        t = self.cfg.target
        if t == "teacher_forced":
            return teacher[2]
        if t == "random":
            return [self._random_regions(e.example) for e in episodes]
        if t == "evidence":
            return [evidence_regions(e.example, self.cfg.patches) for e in episodes]
        return [self._own_regions(e.example) for e in episodes]

    def _random_regions(self, ex: Example) -> dict[str, float]:
        names = [*regions_of(ex.layout, self.cfg.patches), OTHER]
        draw = -torch.log(torch.rand(len(names), generator=self.gen))  # normalised: Dirichlet(1)
        return dict(zip(names, (draw / draw.sum()).tolist(), strict=True))

    def _random_target(self, p_student: torch.Tensor) -> torch.Tensor:
        present = p_student > 0
        draw = -torch.log(torch.rand(int(present.sum()), generator=self.gen))  # normalised: Dirichlet(1)
        q = torch.zeros_like(p_student)
        q[present] = draw / draw.sum()
        return q

    def _targets(self, episodes: list[Episode], p_s: list, teacher: tuple | None) -> tuple[list, list[float]]:
        t = self.cfg.target
        if t == "teacher_forced":
            return teacher[0], teacher[1]
        zeros = [0.0] * len(episodes)
        if t == "random":
            return [self._random_target(p) if p is not None else None for p in p_s], zeros
        if t == "evidence":
            return [evidence_target(e.example, self.cfg.evidence_share) for e in episodes], zeros
        return [self._own_target(e.example) for e in episodes], zeros

    def max_divergence(self) -> float:
        """D_max: the largest D the term can give (L1 is at most 2, Jensen-Shannon ln 2)."""
        c = self.cfg
        return c.components * (2.0 if c.divergence == "l1" else math.log(2)) + c.regions * 2.0

    def __call__(self, prompts: list[str], completions: list[str], episodes: list[Episode], **_) -> list[float | None]:
        if self.policy is None:
            raise RuntimeError("AttributionReward.bind_policy(model, processor) was not called")
        if not self.cfg.well_formed_only:
            return self._score(episodes)
        keep = [i for i, e in enumerate(episodes) if e.well_formed]
        out: list[float | None] = [-self.max_divergence()] * len(episodes)
        for i, v in zip(keep, self._score([episodes[i] for i in keep]), strict=True):
            out[i] = v
        self.last["attr/ill_formed"] = float(len(episodes) - len(keep))
        return out

    def _score(self, episodes: list[Episode]) -> list[float | None]:
        """-D of each episode (None where dropped); fills `last` with the term's diagnostics."""
        self.computed_now = 0
        c, n = self.cfg, len(episodes)
        if not n:
            self.last = {}
            return []
        if c.target == "teacher_own":
            self.computed_now = self.prepare([e.example for e in episodes])  # normally all cached already
        p_s, p_t, err_s, err_t = [None] * n, [None] * n, [math.nan] * n, [math.nan] * n
        d_c: list[float | None] = [0.0] * n  # component divergence per episode, None where dropped
        clock = _Clock("time/reward/attribution/")  # where the term's time goes (the report's cost table)
        p_s, err_s, r_s = clock("student", lambda: self._attribute(*self.policy, episodes, keep_ids=True))
        teacher = None  # teacher_forced: the frozen teacher's attribution of the same episodes
        if c.target == "teacher_forced":
            teacher = clock("teacher", lambda: self._attribute(*self.teacher, episodes, keep_ids=False))
        if c.components:
            p_t, err_t = clock("component_targets", lambda: self._targets(episodes, p_s, teacher))
            limit = c.max_relative_error if c.max_relative_error and c.estimator == "ig" else math.inf
            d_c = [divergence(ps, pt, c.divergence) if ps is not None and pt is not None
                   and not (es > limit or et > limit) else None  # NaN > x is False
                   for ps, pt, es, et in zip(p_s, p_t, err_s, err_t, strict=True)]  # fmt: skip
        d_r: list[float | None] = [0.0] * n
        if c.regions:
            r_t = clock("region_targets", lambda: self._region_targets(episodes, teacher))
            d_r = [region_l1(a, b) if a is not None and b is not None else None for a, b in zip(r_s, r_t, strict=True)]
        per_ep = [None if a is None or b is None else c.components * a + c.regions * b
                  for a, b in zip(d_c, d_r, strict=True)]  # fmt: skip
        raw = list(per_ep)
        if self.cfg.center == "support":
            per_ep = center_by_support(per_ep, [e.example.id for e in episodes], p_s)
        # a dropped term is None: it stays out of its group's statistics (`iapo.rl.grpo.fill_dropped`)
        out = [None if d is None else -d for d in per_ep]
        self.last = {
            "p_student": p_s,
            "p_target": p_t,
            **term_diagnostics(episodes, raw, out),
            **share_means(p_s, "attr/student_share"),
            **share_means(p_t, "attr/target_share"),
            "attr/dropped": float(sum(d is None for d in raw)),
            "attr/rel_error_student": _nanmean(err_s),
            "attr/rel_error_target": _nanmean(err_t),
            "attr/unique_episodes": self.unique_share,
            "attr/targets_computed_in_step": float(self.computed_now),
            **clock.seconds,
        }
        if c.regions:
            self.last.update(term_diagnostics(episodes, d_r, out, "attr/region_divergence"))
        return out


class _Clock:
    """Times named parts of a step: `clock(name, fn)` returns fn() and keeps its seconds as
    `<prefix><name>_s` in `seconds`."""

    def __init__(self, prefix: str):
        self.prefix, self.seconds = prefix, {}

    def __call__(self, name: str, fn):
        t0 = time.perf_counter()
        out = fn()
        self.seconds[f"{self.prefix}{name}_s"] = time.perf_counter() - t0
        return out


def term_diagnostics(
    episodes: list[Episode], d: list[float | None], term: list[float | None], name: str = "attr/divergence"
) -> dict[str, float]:
    """What the term rewards. The mean divergence `d` over all, and per kind of episode (with /
    without a call, with a useful call / with calls none of which is useful, right / wrong); and,
    within each group of one question, Spearman's rank correlation of the term with correctness,
    with making a call and with a useful call, averaged over the groups where both vary (NaN when
    none does). A useful call against all others mostly measures valid against invalid calls;
    `useful_among_valid` ranks only the episodes with a valid call (where to look, not whether the
    call runs), and `decoy_calls` is the divergence of episodes that called the distractor. `name`
    prefixes the divergence keys (the region part logs its own)."""
    kinds = {
        "with_calls": [bool(e.calls) for e in episodes],
        "no_calls": [not e.calls for e in episodes],
        "useful_calls": [e.has_useful_call for e in episodes],
        "useless_calls": [bool(e.calls) and not e.has_useful_call for e in episodes],
        "decoy_calls": [any(t.decoy for t in e.calls) for e in episodes],
        "correct": [e.correct > 0 for e in episodes],
        "incorrect": [not e.correct > 0 for e in episodes],
    }
    row = {name: _nanmean([x for x in d if x is not None])}
    for k, flags in kinds.items():
        row[f"{name}_{k}"] = _nanmean([x for x, f in zip(d, flags, strict=True) if f and x is not None])
    if name != "attr/divergence":
        return row
    groups: dict[str, list[int]] = {}
    for i, e in enumerate(episodes):
        if d[i] is not None:
            groups.setdefault(e.example.id, []).append(i)
    feats = {  # name -> (feature, which episodes of a group it ranks)
        "correct": (lambda e: float(e.correct), lambda e: True),
        "call": (lambda e: float(bool(e.calls)), lambda e: True),
        "useful_call": (lambda e: float(e.has_useful_call), lambda e: True),
        "useful_among_valid": (lambda e: float(e.has_useful_call), lambda e: e.has_valid_call),
    }
    for name, (f, keep) in feats.items():
        rs = []
        for idx in groups.values():
            idx = [i for i in idx if keep(episodes[i])]
            x, y = [term[i] for i in idx], [f(episodes[i]) for i in idx]
            if len(set(x)) > 1 and len(set(y)) > 1:
                rs.append(float(spearmanr(x, y).statistic))
        row[f"attr/rank_corr_{name}"] = _nanmean(rs)
        row[f"attr/rank_corr_{name}_groups"] = float(len(rs))
    return row


def share_means(ps: list[torch.Tensor | None], prefix: str) -> dict[str, float]:
    """Mean share per component over the episodes that have one (for start-vs-end figures)."""
    v = [p for p in ps if p is not None]
    if not v:
        return {}
    m = torch.stack([p.float() for p in v]).mean(0)
    return {f"{prefix}/{c}": float(x) for c, x in zip(COMPONENTS, m, strict=True)}


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
