"""One GRPO run: from a student checkpoint, with one method's rewards, on either engine, then the
final evaluation of its test splits (read only after training: `SplitGuard`). `iapo train`, each
run of `iapo experiment` and the quickstart's runs all go through `run_one`, which first writes
`run.json` (the resolved config, its inputs and the environment: `iapo.provenance`); `iapo train
--config <run dir>` reruns a run from that record."""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field, model_validator

from iapo.config import StrictModel, build, changed_keys, load_yaml, set_dotted
from iapo.data.benchmarks import BenchmarkSource, DataConfig
from iapo.errors import ConfigError
from iapo.eval.policy import EvalConfig, SplitGuard, evaluate_policy
from iapo.models.build import META, fast_patch_embed, load, load_meta, save
from iapo.models.processor import VLProcessor
from iapo.provenance import record, write_json
from iapo.rewards.method import MethodConfig, make_rewards
from iapo.rl.grpo import GRPOSettings, train_grpo
from iapo.rollout.loop import rollout
from iapo.rollout.summary import summarize
from iapo.steps import OnProgress
from iapo.store import (
    METRICS,
    POLICY,
    RUN_RECORD,
    TRL_OUTPUT,
    ExperimentDir,
    RunDir,
    ZooDir,
    read_run_record,
)
from iapo.world import World

log = logging.getLogger(__name__)


class ModelConfig(StrictModel):
    """Where the policy comes from and where it runs (a real checkpoint directory works as is)."""

    student: str | None = Field(None, description="zoo role or checkpoint directory (default: --student)")
    dtype: Literal["float32", "bfloat16"] = Field("float32", description="the policy's parameter dtype")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when available")


class TrainConfig(StrictModel):
    """`iapo train --config`: one method, one seed."""

    method: MethodConfig = Field(default_factory=MethodConfig, description="the method's rewards")
    grpo: GRPOSettings = Field(default_factory=GRPOSettings, description="GRPO settings")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="val curves and the final test evaluation")
    model: ModelConfig = Field(default_factory=ModelConfig, description="where the policy comes from and runs")
    data: DataConfig | None = Field(None, description="benchmark files instead of the world")
    engine: Literal["own", "trl"] = Field(
        "own", description="own: the compact loop of iapo.rl.grpo; trl: TRL's GRPOTrainer (iapo.rl.trl_engine)"
    )
    seed: int = Field(0, description="the run's one seed: questions, rollouts, rewards (grpo.seed follows it)")

    @model_validator(mode="before")
    @classmethod
    def _one_seed(cls, data):
        """grpo.seed follows the run's seed (a record written before 0.2.2 holds 0 there); one
        set apart from it is refused rather than silently replaced."""
        if not isinstance(data, dict) or data.get("grpo") is None:
            return data
        seed, grpo = data.get("seed", 0), data["grpo"]
        g = grpo.get("seed", 0) if isinstance(grpo, dict) else grpo.seed
        if g not in (0, seed):
            raise ValueError(f"grpo.seed ({g}) would be overwritten: set seed: {g} instead")
        grpo = {**grpo, "seed": seed} if isinstance(grpo, dict) else grpo.model_copy(update={"seed": seed})
        return {**data, "grpo": grpo}


def make_accelerator(cfg: ModelConfig):
    """An `accelerate.Accelerator` when launched on several processes (`accelerate launch`) or
    asked to run on a GPU; None for the plain single-process CPU run (no wrapping at all)."""
    import os

    want_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if int(os.environ.get("WORLD_SIZE", "1")) == 1 and not want_cuda:
        return None
    from accelerate import Accelerator

    return Accelerator(cpu=not want_cuda)


def claim_run_dir(run_dir: Path, rec: dict) -> None:
    """Write the run's record; a directory holds one config, so resuming it under another config
    is an error naming the keys that differ. A key added since the run started counts at its
    default (a default keeps the earlier behaviour), so a run resumes under a newer version."""
    path = run_dir / RUN_RECORD
    if not path.exists():
        write_json(path, rec)
        return
    old = _with_defaults(read_run_record(run_dir)["config"])
    if old != rec["config"]:
        keys = ", ".join(changed_keys(old, rec["config"])[:6])
        raise ConfigError(
            f"{path}: this run was started with another config ({keys} differ); rerun it with its own "
            f"(`iapo train --config {run_dir} --out NEW_DIR`) or train into another directory"
        )


def _with_defaults(config: dict) -> dict:
    """A recorded config with the keys this version added, at their defaults (as recorded when
    it does not validate: the comparison then names what differs)."""
    try:
        return TrainConfig.model_validate(config).model_dump(mode="json")
    except ValueError:
        return config


def load_run_record(run_dir: Path) -> tuple[dict, TrainConfig]:
    """A run's record and its config, for `iapo train --config <run dir>`."""
    rec = read_run_record(run_dir)
    if rec is None:
        raise ConfigError(f"{run_dir}: no {RUN_RECORD} (not a run directory, or made before version 0.2)")
    return rec, build(TrainConfig, rec["config"], str(run_dir / RUN_RECORD))


def resolve_run(
    config: Path, overrides: dict, world: Path | None, zoo: Path | None, student: str | None, trm: Path | None
) -> tuple[str, TrainConfig, Path, Path, Path | None, World | BenchmarkSource]:
    """`iapo train`'s inputs: (name, config, student directory, zoo, TRM, data source) from a
    method YAML and the options given, or from a run directory's record (its config, student,
    zoo, TRM and world; options given here override)."""
    name = config.stem
    if config.is_dir():  # rerun a run from its record
        rec, cfg = load_run_record(config)
        data = cfg.model_dump(mode="json")
        for k, v in overrides.items():
            set_dotted(data, k, v)
        cfg = build(TrainConfig, data, str(config / RUN_RECORD))
        name = rec["name"]
        run = RunDir(config)  # its record names its inputs relative to its experiment, or absolute
        zoo = zoo or run.resolve(rec["zoo"])
        student = student or str(run.resolve(rec["student"]))
        trm = trm or run.resolve(rec.get("trm"))
        world = world or run.resolve(rec.get("world"))
    else:
        cfg = load_yaml(config, TrainConfig, overrides or None)
    zoo = zoo or Path("zoo")
    student = cfg.model.student or student or "student"
    sdir = zoo / student if (zoo / student).exists() else Path(student)
    if cfg.data is not None:
        source = BenchmarkSource(cfg.data)
    elif world is None:
        raise ConfigError("--world is required (or a data: section in the config)")
    else:
        source = World(world)
    return name, cfg, sdir, zoo, trm, source


def run_one(
    name: str, cfg: TrainConfig, student: Path, zoo_dir: ZooDir | Path, trm_dir: Path | None, world: World,
    run_dir: Path, progress: OnProgress | None = None, exp: ExperimentDir | None = None,
) -> dict:  # fmt: skip
    """GRPO from the SFT student with `cfg.method`'s rewards, then the final test evaluation.
    A run with result.json is returned as is; an interrupted one resumes from its checkpoint; a
    finished one whose result.json is damaged (`iapo.store`) re-evaluates its saved policy.
    `exp`: the experiment the run belongs to; its record then names its inputs relative to it."""
    run = RunDir(run_dir)
    if (prior := run.read_result()) is not None:
        return prior
    if not run.checkpoint.exists() and (run.policy / META).exists():
        return _evaluate_saved(name, cfg, world, run_dir)
    acc = make_accelerator(cfg.model)
    rec = record(cfg, name=name, **inputs(exp, student, zoo_dir, trm_dir, getattr(world, "root", None), run_dir))
    if acc is None or acc.is_main_process:
        claim_run_dir(run_dir, rec)
    guard = SplitGuard(world)
    if cfg.engine == "own":
        model, processor = load(student, dtype=getattr(torch, cfg.model.dtype))
        model = fast_patch_embed(model).to(acc.device if acc is not None else "cpu")
        ref = copy.deepcopy(model)
    else:  # TRL loads the policy and its reference from the directory itself
        processor = VLProcessor.from_pretrained(student)
    train = guard.load("train")
    val = guard.load("val")[: cfg.eval.val_examples]
    rcfg = cfg.grpo.rollout

    def on_eval(step: int) -> dict:
        s = summarize(rollout(model, processor, val, rcfg.model_copy(update={"greedy": True})))
        row = {"val/accuracy": s["accuracy"]["mean"], "val/calls_per_episode": s["tools/calls_per_episode"]}
        if "tools/decoy_rate" in s:  # a world with distractors: where the valid calls go, and accuracy per template
            row["val/decoy_rate"] = s["tools/decoy_rate"]
            row.update(
                {f"val/accuracy/{k.split('/')[-1]}": v["accuracy"]["mean"] for k, v in s["question_types"].items()}
            )
        return row

    gcfg = cfg.grpo.model_copy(update={"seed": cfg.seed})
    rewards = make_rewards(cfg.method, zoo_dir, trm_dir, cfg.seed, getattr(torch, cfg.model.dtype), rcfg)
    t0 = time.perf_counter()
    meta = {"method": name, "seed": cfg.seed, "engine": cfg.engine, "provenance": rec}
    if cfg.engine == "trl":
        main = _train_trl(cfg, gcfg, student, processor, train, rewards, run_dir, acc, meta)
        train_s = time.perf_counter() - t0
        if not main:
            return {}
        model, processor = load(run.policy, dtype=getattr(torch, cfg.model.dtype))
        model.to(acc.device if acc is not None else "cpu")
    else:
        train_grpo(
            model, ref, processor, train, rewards, gcfg, run_dir,
            (lambda s, n, row: progress(f"{name}/seed{cfg.seed}", s, n, row)) if progress else None,
            on_eval, cfg.eval.eval_every, acc, rec,
        )  # fmt: skip
        train_s = time.perf_counter() - t0
        if acc is not None and not acc.is_main_process:
            return {}  # the main process evaluates and writes the result
        save(model, processor, run.policy, {**meta, "train_seconds": round(train_s, 1)})
    guard.training = False
    return _finish(name, cfg, model, processor, guard, run_dir, train_s)


def inputs(exp: ExperimentDir | None, student: Path, zoo: ZooDir | Path, trm: Path | None, world: Path | None,
           run_dir: Path) -> dict:  # fmt: skip
    """A run record's inputs: relative to the experiment directory (named relative to the run) when
    the run has one, so a ledger or run directory moved elsewhere still reruns; else absolute."""
    zoo = zoo.path if isinstance(zoo, ZooDir) else zoo
    if exp is None:
        return {"student": student, "zoo": zoo, "trm": trm, "world": world}
    return {"experiment": os.path.relpath(exp.path, run_dir), "student": exp.relative(student),
            "zoo": exp.relative(zoo), "trm": exp.relative(trm), "world": exp.relative(world)}  # fmt: skip


def _finish(name: str, cfg: TrainConfig, model, processor, guard: SplitGuard, run_dir: Path, train_s: float) -> dict:
    """The trained policy's evaluation, written to result.json; the checkpoint goes (the policy/
    directory is what remains of a finished run)."""
    result = {"method": name, "seed": cfg.seed, "engine": cfg.engine, "train_seconds": round(train_s, 1)}
    attr = cfg.method.attribution.settings() if cfg.method.attribution else None
    t0 = time.perf_counter()
    result.update(evaluate_policy(model, processor, guard, cfg.eval, cfg.grpo.rollout, attr))
    result["test_eval_seconds"] = round(time.perf_counter() - t0, 1)
    write_json(RunDir(run_dir).result, result)
    RunDir(run_dir).checkpoint.unlink(missing_ok=True)
    return result


def _evaluate_saved(name: str, cfg: TrainConfig, world: World, run_dir: Path) -> dict:
    """A finished run whose result was lost: its saved policy evaluated again (no training)."""
    model, processor = load(run_dir / POLICY, dtype=getattr(torch, cfg.model.dtype))
    guard = SplitGuard(world)
    guard.training = False
    train_s = float(load_meta(run_dir / POLICY).get("train_seconds", math.nan))
    log.warning("%s: finished run without a readable result.json; evaluating its saved policy again", run_dir)
    return _finish(name, cfg, model, processor, guard, run_dir, train_s)


def _train_trl(
    cfg: TrainConfig, gcfg: GRPOSettings, student: Path, processor, train, rewards, run_dir: Path, acc, meta: dict
) -> bool:
    """GRPO on TRL's GRPOTrainer (under `accelerate launch` for several processes or GPUs); the
    policy is saved to run_dir/policy by every process together (ZeRO-3 gathers its shards).
    Returns whether this is the main process."""
    from iapo.rl import trl_engine

    n = acc.num_processes if acc is not None else 1
    use_cpu = acc is None or acc.device.type == "cpu"
    args = trl_engine.grpo_args(gcfg, run_dir / TRL_OUTPUT, n, use_cpu, bf16=cfg.model.dtype == "bfloat16")
    trainer = trl_engine.IAPOGRPOTrainer(student, processor, train, rewards, gcfg, args, metrics=run_dir / METRICS)
    trl_engine.train(trainer)
    trainer.save_model(str(run_dir / POLICY))
    main = trainer.accelerator.is_main_process
    if main:
        processor.save_pretrained(run_dir / POLICY)
        (run_dir / POLICY / META).write_text(json.dumps(meta, indent=2))
    trainer.accelerator.wait_for_everyone()
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    unset_hf_deepspeed_config()  # else from_pretrained would partition the evaluated policy (ZeRO-3)
    return main
