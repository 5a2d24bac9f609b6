"""Methods x seeds from one SFT student, same budget, same data: the comparison runner.

    out/world/                   the generated world (skipped if present)
    out/zoo/                     tokenizers, vision tower, SFT'd teacher(s) and student
    out/trm/                     the tool-call reward model (when a method uses it)
    out/runs/sft/result.json     the SFT student itself, evaluated once
    out/runs/<method>/seed<k>/   GRPO checkpoints, metrics.jsonl, tb/, result.json
    out/results.csv              one tidy row per (method, seed, split)
    out/experiment.json          the resolved config, versions, wall times

A run with `result.json` is never recomputed; a killed grid continues from checkpoints.
Test splits are read only after a run's training is finished (`SplitGuard`); training-time
evaluation and any selection use val.
"""

from __future__ import annotations

import copy
import csv
import json
import logging
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field, model_validator

from iapo.attribution import attribute_episodes, mean_shares
from iapo.config import StrictModel
from iapo.data.benchmarks import BenchmarkSource, DataConfig
from iapo.data.example import Example
from iapo.errors import ConfigError
from iapo.eval.evaluate import episode_record
from iapo.models.build import META, load, save
from iapo.models.processor import VLProcessor
from iapo.rewards import ToolBonus, exact_match, format_reward, outcome
from iapo.rewards.attribution import TEACHER_TARGETS, AttributionReward, AttributionRewardConfig
from iapo.rewards.protocol import WeightedReward
from iapo.rewards.trm import TRMReward, load_trm, save_trm, train_trm
from iapo.rl.grpo import GRPOConfig, planned_questions, train_grpo
from iapo.rollout.episode import COMPONENTS
from iapo.rollout.loop import Episode, RolloutConfig, rollout
from iapo.rollout.stats import summarize
from iapo.train.common import CKPT
from iapo.train.zoo import ZooConfig, build_zoo
from iapo.world import World, WorldConfig, write_world

log = logging.getLogger(__name__)


class MethodConfig(StrictModel):
    """One method = reward weights (+ the attribution term); everything else is shared."""

    outcome: float = 1.0
    format: float = 0.2
    exact_match: float = 0.0
    trm: float = 0.0
    attribution: AttributionRewardConfig | None = None
    teacher: str = Field("teacher", description="zoo role (or model directory) whose attribution is the target")
    tool_bonus: float = Field(0.0, ge=0, description="b: reward for an episode with a valid, useful tool call")
    tool_bonus_conditional: bool = Field(True, description="pay the tool bonus only when the answer is right")

    @property
    def needs_teacher(self) -> bool:
        return self.attribution is not None and self.attribution.target in TEACHER_TARGETS


class EvalConfig(StrictModel):
    val_examples: int = Field(96, ge=1, description="val examples for the curve during training")
    eval_every: int = Field(10, ge=0, description="val evaluation every N GRPO steps (0 = never)")
    test_limit: int | None = Field(None, ge=1, description="examples per test split (None = all)")
    splits: list[str] | None = Field(None, description="test splits (default: every test_* split and ood)")
    attribution_episodes: int = Field(48, ge=0, description="test episodes whose attribution shares are recorded")


class ReportRoles(StrictModel):
    """Which methods the report compares: every method against `baseline`, the verdict and the
    ablation column against `proposed`."""

    baseline: str = "outcome"
    proposed: str = "iapo"


class ExperimentConfig(StrictModel):
    world: WorldConfig = Field(default_factory=WorldConfig)
    zoo: ZooConfig = Field(default_factory=ZooConfig)
    grpo: GRPOConfig = Field(default_factory=GRPOConfig)
    methods: dict[str, MethodConfig]
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    eval: EvalConfig = Field(default_factory=EvalConfig)
    student: str = "student"
    report: ReportRoles = Field(default_factory=ReportRoles)
    trm_steps: int = 600
    threads: int | None = None
    workers: int = Field(
        1,
        ge=1,
        description="GRPO runs trained at once, each in its own process with cores/workers threads "
        "(tiny models use cores better as parallel runs than as threads of one run)",
    )

    @model_validator(mode="after")
    def _check(self) -> ExperimentConfig:
        if not self.methods:
            raise ValueError("methods: define at least one method")
        if "sft" in self.methods:
            raise ValueError("methods: 'sft' is reserved for the SFT student baseline")
        for role, name in self.report.model_dump().items():
            if name not in self.methods:
                raise ValueError(f"report.{role}: {name!r} is not one of the methods ({', '.join(self.methods)})")
        for name, m in self.methods.items():
            if m.needs_teacher and m.teacher not in self.zoo.roles and not Path(m.teacher).exists():
                raise ValueError(f"methods.{name}.teacher: {m.teacher!r} is neither a zoo role nor a directory")
        return self


class SplitGuard:
    """Refuses test/ood splits until training is over: tuning and curves use val only."""

    def __init__(self, world: World | BenchmarkSource):
        self.world, self.training = world, True

    def load(self, split: str) -> list[Example]:
        if self.training and (split.startswith("test") or split == "ood"):
            raise RuntimeError(f"split {split!r} requested during training: test splits are for the final evaluation")
        return self.world.load(split)


Progress = Callable[[str, int, int, dict], None]


def final_splits(world: World | BenchmarkSource, cfg: EvalConfig) -> list[str]:
    return cfg.splits or sorted(s for s in world.splits if s.startswith("test") or s == "ood")


def evaluate_policy(model, processor, guard: SplitGuard, cfg: EvalConfig, rcfg: RolloutConfig) -> dict:
    """Greedy multi-turn eval on every test split; attribution shares of a few episodes."""
    out: dict = {"splits": {}, "episodes": {}}
    all_eps: list[Episode] = []
    for split in final_splits(guard.world, cfg):
        exs = guard.load(split)[: cfg.test_limit]
        eps = rollout(model, processor, exs, rcfg.model_copy(update={"greedy": True}))
        out["splits"][split] = summarize(eps)
        out["episodes"][split] = [episode_record(e, e.correct) for e in eps]
        all_eps.extend(eps)
    out["attribution"] = attribution_profile(model, processor, spread(all_eps, cfg.attribution_episodes))
    return out


def spread(items: list, n: int) -> list:
    """Up to n items evenly spaced over the list (every split gets its share)."""
    return items[:: max(1, len(items) // max(1, n))][:n] if n else []


def attribution_profile(model, processor, episodes: list[Episode]) -> dict:
    """Mean component shares of the final turn, for correct and for incorrect episodes."""
    if not episodes:
        return {}
    turns = attribute_episodes(model, processor, [e.segments for e in episodes], "final", 8)
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


def make_rewards(
    method: MethodConfig,
    zoo_dir: Path,
    trm_dir: Path | None,
    seed: int,
    dtype: torch.dtype = torch.float32,
    rollout_cfg: RolloutConfig | None = None,
) -> list[WeightedReward]:
    """The method's weighted rewards. teacher_own targets are cached under zoo_dir/targets/,
    shared by every run and seed that uses the same teacher and settings."""
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
        rewards.append(WeightedReward("tool_bonus", ToolBonus(method.tool_bonus_conditional), method.tool_bonus))
    if method.attribution is not None:
        teacher, tdir = None, None
        if method.needs_teacher:
            tdir = zoo_dir / method.teacher if (zoo_dir / method.teacher).exists() else Path(method.teacher)
            tm, tp = load(tdir, dtype=dtype)
            teacher = (tm.requires_grad_(False), tp)
        term = AttributionReward(method.attribution, teacher, seed, zoo_dir / "targets", tdir, rollout_cfg)
        # lambda is applied inside the term; its weight here is 1
        rewards.append(WeightedReward("attribution", term, 1.0))
    return rewards


class ModelConfig(StrictModel):
    """Where the policy comes from and where it runs (a real checkpoint directory works as is)."""

    student: str | None = Field(None, description="zoo role or checkpoint directory (default: --student)")
    dtype: Literal["float32", "bfloat16"] = "float32"
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when available")


class TrainConfig(StrictModel):
    """`iapo train --config`: one method, one seed."""

    method: MethodConfig = Field(default_factory=MethodConfig)
    grpo: GRPOConfig = Field(default_factory=GRPOConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig | None = Field(None, description="benchmark files instead of the world")
    engine: Literal["own", "trl"] = Field(
        "own", description="own: the compact loop of iapo.rl.grpo; trl: TRL's GRPOTrainer (iapo.rl.trl_engine)"
    )
    seed: int = 0


def make_accelerator(cfg: ModelConfig):
    """An `accelerate.Accelerator` when launched on several processes (`accelerate launch`) or
    asked to run on a GPU; None for the plain single-process CPU run (no wrapping at all)."""
    import os

    want_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if int(os.environ.get("WORLD_SIZE", "1")) == 1 and not want_cuda:
        return None
    from accelerate import Accelerator

    return Accelerator(cpu=not want_cuda)


def run_one(
    name: str, cfg: TrainConfig, student: Path, zoo_dir: Path, trm_dir: Path | None, world: World, run_dir: Path,
    progress: Progress | None = None,
) -> dict:  # fmt: skip
    """GRPO from the SFT student with `cfg.method`'s rewards, then the final test evaluation.
    A run with result.json is returned as is; an interrupted one resumes from its checkpoint."""
    done = run_dir / "result.json"
    if done.exists():
        return json.loads(done.read_text())
    acc = make_accelerator(cfg.model)
    guard = SplitGuard(world)
    if cfg.engine == "own":
        model, processor = load(student, dtype=getattr(torch, cfg.model.dtype))
        model.to(acc.device if acc is not None else "cpu")
        ref = copy.deepcopy(model)
    else:  # TRL loads the policy and its reference from the directory itself
        processor = VLProcessor.from_pretrained(student)
    train = guard.load("train")
    val = guard.load("val")[: cfg.eval.val_examples]
    rcfg = cfg.grpo.rollout

    def on_eval(step: int) -> dict:
        s = summarize(rollout(model, processor, val, rcfg.model_copy(update={"greedy": True})))
        return {"val/accuracy": s["accuracy"]["mean"], "val/calls_per_episode": s["tools/calls_per_episode"]}

    gcfg = cfg.grpo.model_copy(update={"seed": cfg.seed})
    rewards = make_rewards(cfg.method, zoo_dir, trm_dir, cfg.seed, getattr(torch, cfg.model.dtype), rcfg)
    t0 = time.perf_counter()
    meta = {"method": name, "seed": cfg.seed, "engine": cfg.engine, "grpo": gcfg.model_dump()}
    if cfg.engine == "trl":
        main = _train_trl(cfg, gcfg, student, processor, train, rewards, run_dir, acc, meta)
        train_s = time.perf_counter() - t0
        if not main:
            return {}
        model, processor = load(run_dir / "policy", dtype=getattr(torch, cfg.model.dtype))
        model.to(acc.device if acc is not None else "cpu")
    else:
        train_grpo(
            model, ref, processor, train, rewards, gcfg, run_dir,
            (lambda s, n, row: progress(f"{name}/seed{cfg.seed}", s, n, row)) if progress else None,
            on_eval, cfg.eval.eval_every, acc,
        )  # fmt: skip
        train_s = time.perf_counter() - t0
        if acc is not None and not acc.is_main_process:
            return {}  # the main process evaluates and writes the result
        save(model, processor, run_dir / "policy", meta)
    guard.training = False
    result = {"method": name, "seed": cfg.seed, "engine": cfg.engine, "train_seconds": round(train_s, 1)}
    result.update(evaluate_policy(model, processor, guard, cfg.eval, rcfg))
    tmp = done.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(done)
    (run_dir / CKPT).unlink(missing_ok=True)  # finished: the policy/ directory is what remains
    return result


def _train_trl(
    cfg: TrainConfig, gcfg: GRPOConfig, student: Path, processor, train, rewards, run_dir: Path, acc, meta: dict
) -> bool:
    """GRPO on TRL's GRPOTrainer (under `accelerate launch` for several processes or GPUs); the
    policy is saved to run_dir/policy by every process together (ZeRO-3 gathers its shards).
    Returns whether this is the main process."""
    from iapo.rl import trl_engine

    n = acc.num_processes if acc is not None else 1
    use_cpu = acc is None or acc.device.type == "cpu"
    args = trl_engine.grpo_args(gcfg, run_dir / "trl", n, use_cpu, bf16=cfg.model.dtype == "bfloat16")
    trainer = trl_engine.IAPOGRPOTrainer(student, processor, train, rewards, gcfg, args)
    trl_engine.train(trainer)
    trainer.save_model(str(run_dir / "policy"))
    main = trainer.accelerator.is_main_process
    if main:
        processor.save_pretrained(run_dir / "policy")
        (run_dir / "policy" / META).write_text(json.dumps(meta, indent=2))
    trainer.accelerator.wait_for_everyone()
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    unset_hf_deepspeed_config()  # else from_pretrained would partition the evaluated policy (ZeRO-3)
    return main


def run_sft_baseline(cfg: ExperimentConfig, world: World, out: Path) -> dict:
    done = out / "runs" / "sft" / "result.json"
    if done.exists():
        return json.loads(done.read_text())
    model, processor = load(out / "zoo" / cfg.student)
    guard = SplitGuard(world)
    guard.training = False  # no training happens here
    result = {"method": "sft", "seed": None, "train_seconds": 0.0}
    result.update(evaluate_policy(model, processor, guard, cfg.eval, cfg.grpo.rollout))
    done.parent.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps(result))
    return result


RESULT_FIELDS = [
    "method", "seed", "split", "n", "accuracy", "calls_per_episode", "episodes_with_call",
    "useful_rate", "misuse_rate", "well_formed", "train_seconds",
]  # fmt: skip


def tidy_rows(results: list[dict]) -> list[dict]:
    rows = []
    for r in results:
        for split, s in r["splits"].items():
            rows.append({
                "method": r["method"], "seed": r["seed"], "split": split, "n": s["n"],
                "accuracy": s["accuracy"]["mean"], "calls_per_episode": s["tools/calls_per_episode"],
                "episodes_with_call": s["tools/episodes_with_call"], "useful_rate": s["tools/useful_rate"],
                "misuse_rate": s["tools/misuse_rate"], "well_formed": s["format/well_formed"],
                "train_seconds": r["train_seconds"],
            })  # fmt: skip
    return rows


def write_csv(rows: list[dict], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=RESULT_FIELDS)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def versions() -> dict:
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__}


def _worker_init(threads: int) -> None:
    torch.set_num_threads(threads)


def _run_in_worker(name: str, tc: TrainConfig, student: Path, zoo: Path, trm: Path | None, world: Path, run_dir: Path):
    return run_one(name, tc, student, zoo, trm, World(world), run_dir)


def _cost(tc: TrainConfig) -> float:
    """Relative cost of a run: the attribution term adds m IG passes per step per model."""
    a = tc.method.attribution
    return tc.grpo.steps * (1.0 + (0.0 if a is None else a.n_steps * (2 if a.target == "teacher_forced" else 1) / 4))


def _run_parallel(jobs: list, args: tuple, world: Path, workers: int, progress: Progress | None) -> list[dict]:
    """Every (method, seed) run in a pool of `workers` processes, longest first (so no core idles
    at the end on one long run); results in job order. Each run is independent and seeded, so its
    result does not depend on which worker trains it."""
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init, initargs=(threads,)) as pool:
        order = sorted(range(len(jobs)), key=lambda i: -_cost(jobs[i][1]))
        futures = {pool.submit(_run_in_worker, jobs[i][0], jobs[i][1], *args, world, jobs[i][2]): i for i in order}
        results: list[dict | None] = [None] * len(jobs)
        for done, fut in enumerate(as_completed(futures), 1):
            results[futures[fut]] = fut.result()
            if progress:
                progress(f"GRPO runs ({workers} workers)", done, len(jobs), {})
    return results  # type: ignore[return-value]


def prepare_targets(cfg: ExperimentConfig, world: World, zoo: Path, progress: Progress | None = None) -> None:
    """Fill the teacher_own cache for every question any seed will draw, once, before the runs
    (so parallel runs neither race nor repeat the teacher's work)."""
    train = world.load("train")
    for name, m in cfg.methods.items():
        if m.attribution is None or m.attribution.target != "teacher_own":
            continue
        [(_, reward)] = [(r.name, r.reward) for r in make_rewards(m, zoo, None, 0, rollout_cfg=cfg.grpo.rollout)
                         if r.name == "attribution"]  # fmt: skip
        questions = [q for s in cfg.seeds for q in planned_questions(train, cfg.grpo.model_copy(update={"seed": s}))]
        reward.prepare(questions, (lambda i, n, k=name: progress(f"targets:{k}", i, n, {})) if progress else None)


def run_experiment(
    cfg: ExperimentConfig, out: Path, progress: Progress | None = None, raw_config: dict | None = None
) -> list[dict]:
    """World -> zoo -> (TRM) -> SFT baseline -> every method x seed. Resumable at every level."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    if not (out / "world" / "world.json").exists():
        write_world(
            cfg.world,
            out / "world",
            progress=(lambda sp, s, n: progress(f"world:{sp}", s, n, {})) if progress else None,
        )
    world = World(out / "world")
    timings["world_s"] = time.perf_counter() - t_start
    t = time.perf_counter()
    roles = sorted(
        {cfg.student} | {m.teacher for m in cfg.methods.values() if m.attribution and m.teacher in cfg.zoo.roles}
    )
    build_zoo(world, cfg.zoo, out / "zoo", roles, progress)
    timings["zoo_s"] = time.perf_counter() - t
    if any(m.trm for m in cfg.methods.values()) and not (out / "trm" / "trm.pt").exists():
        model, report = train_trm(world.load("train"), world.load("val"), cfg.trm_steps)
        save_trm(model, report, out / "trm")
    t = time.perf_counter()
    results = [run_sft_baseline(cfg, world, out)]
    trm_dir = out / "trm" if (out / "trm" / "trm.pt").exists() else None
    jobs = [
        (name, TrainConfig(method=method, grpo=cfg.grpo, eval=cfg.eval, seed=seed), out / "runs" / name / f"seed{seed}")
        for name, method in cfg.methods.items()
        for seed in cfg.seeds
    ]
    args = (out / "zoo" / cfg.student, out / "zoo", trm_dir)
    prepare_targets(cfg, world, out / "zoo", progress)
    if cfg.workers == 1:
        results += [run_one(name, tc, *args, world, run_dir, progress) for name, tc, run_dir in jobs]
    else:
        results += _run_parallel(jobs, args, world.root, cfg.workers, progress)
    timings["rl_and_eval_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t_start
    write_csv(tidy_rows(results), out / "results.csv")
    meta = {"config": raw_config or cfg.model_dump(), "versions": versions(), "timings": timings}
    (out / "experiment.json").write_text(json.dumps(meta, indent=1))
    return results
