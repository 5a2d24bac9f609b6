"""Methods x seeds from one SFT student, same budget, same data: the comparison runner.

World (skipped if present) -> zoo (one per zoo seed with `zoo_seeds`: the zoo as a random factor,
the world fixed) -> the tool-call reward model (when a method uses it) -> the SFT student
evaluated once -> every method x seed, each a GRPO run with its final evaluation -> results.csv
and experiment.json (the resolved config with every default written out, the YAML it came from,
versions, machine, wall times). Where each lives: `iapo.store.ExperimentDir`.

A finished run (one with its result) is never recomputed; a killed grid continues from checkpoints.
Test splits are read only after a run's training is finished (`SplitGuard`); training-time
evaluation and any selection use val.
"""

from __future__ import annotations

import csv
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import Field, model_validator

from iapo.attribution import ESTIMATORS
from iapo.config import StrictModel
from iapo.errors import ConfigError
from iapo.eval.policy import EvalConfig, SplitGuard, evaluate_policy
from iapo.ledger import bind_experiment, bind_world, restore_zoo, save_run, take_zoo
from iapo.models.build import load
from iapo.provenance import atomic, record, write_json
from iapo.report.roles import ReportRoles
from iapo.rewards.method import MethodConfig, make_rewards
from iapo.rewards.trm import TRM_STEPS, save_trm, train_trm
from iapo.rl.grpo import GRPOSettings, planned_questions
from iapo.run import TrainConfig, run_one
from iapo.steps import OnProgress
from iapo.store import ExperimentDir, ZooDir, read_result
from iapo.supervised.zoo import ZooConfig, build_zoo
from iapo.world import World, WorldConfig, write_world

log = logging.getLogger(__name__)


class ZooAcceptance(StrictModel):
    """A rule a zoo must pass before any RL run uses it (decided before any result): `role`'s
    val accuracy after SFT at least `min_val` (the sparse regime needs a teacher that reads), and
    its decoy rate on val (`iapo.rollout.summary.decoy_stats`) within `decoy_rate` (the distractor
    world needs a teacher that looks where it should and a student that does not)."""

    role: str = Field("teacher", description="the zoo role the rule checks")
    min_val: float = Field(0.0, ge=0, le=1, description="its least val accuracy (greedy, the zoo's eval_examples)")
    decoy_rate: tuple[float, float] | None = Field(
        None, description="[low, high]: its share of valid calls on distractor questions that name the decoy, on val"
    )

    def failure(self, summary: dict) -> str | None:
        """Why a zoo's summary (zoo.json) fails this rule; None if it passes."""
        meta = summary["roles"].get(self.role, {})
        acc = meta.get("val_accuracy", {}).get("mean")
        if acc is None or acc < self.min_val:
            return f"{self.role} reached {acc} on val, below min_val {self.min_val}"
        if self.decoy_rate is not None:
            rate = meta.get("val_tools", {}).get("tools/decoy_rate")
            lo, hi = self.decoy_rate
            if rate is None or not lo <= rate <= hi:  # nan (no valid call on a distractor) fails too
                return f"{self.role}'s decoy rate on val is {rate}, outside decoy_rate [{lo}, {hi}]"
        return None


class ExperimentConfig(StrictModel):
    world: WorldConfig = Field(
        default_factory=WorldConfig, description="the generated world, shared by every zoo and run"
    )
    zoo: ZooConfig = Field(default_factory=ZooConfig, description="the model zoo recipe (zoo_seeds: one zoo per seed)")
    grpo: GRPOSettings = Field(
        default_factory=GRPOSettings, description="the GRPO budget and settings every method shares"
    )
    methods: dict[str, MethodConfig] = Field(description="method name -> its rewards (everything else is shared)")
    seeds: list[int] = Field(
        default_factory=lambda: [0, 1, 2], description="RL seeds of every method (method_seeds overrides per method)"
    )
    zoo_accept: ZooAcceptance | list[ZooAcceptance] | None = Field(
        None, description="refuse to run on a zoo that fails any of these rules on val (list another zoo seed)"
    )
    method_seeds: dict[str, list[int]] = Field(
        default_factory=dict,
        description="RL seeds of a method other than `seeds` (e.g. 8 for the main comparison, 4 for controls)",
    )
    zoo_seeds: list[int] | None = Field(
        None,
        description="one zoo per seed (the world stays fixed): every method x seed runs on each, and the report "
        "treats the zoo as a random factor (intervals and tests resample zoos). None: the one zoo of zoo.seed",
    )
    eval: EvalConfig = Field(
        default_factory=EvalConfig, description="val curves during training and the final test evaluation"
    )
    student: str = Field("student", description="the zoo role RL starts from")
    report: ReportRoles = Field(
        default_factory=ReportRoles, description="which comparisons the report makes and which one is the verdict"
    )
    trm_steps: int = Field(TRM_STEPS, ge=1, description="optimisation steps of the TRM baseline's reward model")
    threads: int | None = Field(None, description="torch threads of the main process (default: torch's)")
    workers: int = Field(
        1,
        ge=1,
        description="GRPO runs trained at once, each in its own process with cores/workers threads "
        "(tiny models use cores better as parallel runs than as threads of one run); with several zoos, the "
        "next zoo builds in the same pool while the runs of the zoos ready so far train",
    )

    @model_validator(mode="after")
    def _check(self) -> ExperimentConfig:
        if not self.methods:
            raise ValueError("methods: define at least one method")
        if "sft" in self.methods:
            raise ValueError("methods: 'sft' is reserved for the SFT student baseline")
        for role, name in self.report.named().items():
            if name not in self.methods and not (role.startswith(("primary", "secondary")) and name == "sft"):
                raise ValueError(f"report.{role}: {name!r} is not one of the methods ({', '.join(self.methods)})")
        if self.report.primary and self.report.primary[0] == self.report.primary[1]:
            raise ValueError("report.primary: compare two different methods, e.g. [iapo, outcome]")
        if self.grpo.seed != 0:
            raise ValueError("grpo.seed: runs take their seeds from `seeds` (and `method_seeds`); remove grpo.seed")
        if self.student not in self.zoo.roles:
            raise ValueError(f"student: {self.student!r} is not a zoo role ({', '.join(self.zoo.roles)})")
        for rule in self.accept_rules:
            if rule.role not in self.zoo.roles:
                raise ValueError(f"zoo_accept.role: {rule.role!r} is not a zoo role")
        for name in self.method_seeds:
            if name not in self.methods:
                raise ValueError(f"method_seeds.{name}: not one of the methods ({', '.join(self.methods)})")
        for name, m in self.methods.items():
            if m.needs_teacher and m.teacher not in self.zoo.roles and not Path(m.teacher).exists():
                raise ValueError(f"methods.{name}.teacher: {m.teacher!r} is neither a zoo role nor a directory")
        return self

    @property
    def accept_rules(self) -> list[ZooAcceptance]:
        z = self.zoo_accept
        return [] if z is None else [z] if isinstance(z, ZooAcceptance) else list(z)


def check_zoo(cfg: ExperimentConfig, zoo: int | None, summary: dict) -> None:
    """Enforce `zoo_accept` on a built zoo (its zoo.json summary)."""
    for rule in cfg.accept_rules:
        if (why := rule.failure(summary)) is not None:
            raise ConfigError(f"zoo seed {zoo}: {why}; record it as rejected and list another seed in zoo_seeds")


def build_zoos(
    cfg: ExperimentConfig, out: Path, progress: OnProgress | None = None, ledger: Path | None = None
) -> list[dict]:
    """Build (or resume) the world and every zoo of `zoo_seeds`, one after the other, and judge each
    by `zoo_accept`, without any run: the zoo table of a grid whose zoos are chosen by a rule
    stated before they were built. Every seed tried is a row of out/zoos.csv (accepted or why
    not); the grid then lists the accepted seeds. With a `ledger` (`iapo.ledger`) each zoo is
    kept there as built (and taken from there when it has it), with the table: the grid run with
    the same ledger starts from these zoos on any machine. Returns the rows."""
    exp = ExperimentDir(out)
    out.mkdir(parents=True, exist_ok=True)
    if not World.exists(exp.world):
        write_world(
            cfg.world, exp.world, progress=(lambda sp, s, n: progress(f"world:{sp}", s, n, {})) if progress else None
        )
    world = World(exp.world)
    if ledger is not None:
        bind_world(ledger, world.root)
    rows = []
    for z, zc in zoo_configs(cfg):
        t0 = time.perf_counter()
        if ledger is not None:
            take_zoo(ledger, exp.zoo(z).path, z)
        summary = build_zoo(world, zc, exp.zoo(z), None, progress)
        if ledger is not None:
            restore_zoo(ledger, out, exp.zoo(z).path, z, sorted(summary["roles"]))
        why = [w for rule in cfg.accept_rules if (w := rule.failure(summary)) is not None]
        row: dict = {"zoo": z, "accepted": not why, "why": "; ".join(why)}
        for role, meta in sorted(summary["roles"].items()):
            row[f"{role}_val"] = meta["val_accuracy"]["mean"]
            row[f"{role}_decoy_rate"] = meta.get("val_tools", {}).get("tools/decoy_rate", math.nan)
            row[f"{role}_minutes"] = meta["seconds"] / 60
        row["minutes_this_call"] = (time.perf_counter() - t0) / 60
        rows.append(row)
        with atomic(out / "zoos.csv") as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
            w.writeheader()
            w.writerows(rows)
        if ledger is not None:
            shutil.copyfile(out / "zoos.csv", ledger / "zoos.csv")
    return rows


def zoo_configs(cfg: ExperimentConfig) -> list[tuple[int | None, ZooConfig]]:
    """(zoo seed or None, its config) for every zoo of the experiment."""
    return [(None, cfg.zoo)] if cfg.zoo_seeds is None else [(z, cfg.zoo.with_seed(z)) for z in cfg.zoo_seeds]


def run_sft_baseline(cfg: ExperimentConfig, world: World, out: Path, zoo: int | None = None) -> dict:
    exp = ExperimentDir(out)
    done = exp.run("sft", zoo, None).result
    if (prior := read_result(done)) is not None:
        return prior
    model, processor = load(exp.zoo(zoo).role(cfg.student))
    guard = SplitGuard(world)
    guard.training = False  # no training happens here
    result = {"method": "sft", "seed": None, "zoo": zoo, "train_seconds": 0.0}
    result.update(evaluate_policy(model, processor, guard, cfg.eval, cfg.grpo.rollout))
    write_json(done, result)
    return result


RESULT_FIELDS = [
    "method", "zoo", "seed", "split", "n", "accuracy", "calls_per_episode", "episodes_with_call",
    "useful_rate", "misuse_rate", "well_formed", "decoy_rate", "train_seconds",
]  # fmt: skip


def tidy_rows(results: list[dict]) -> list[dict]:
    rows = []
    for r in results:
        for split, s in r["splits"].items():
            rows.append({
                "method": r["method"], "zoo": r.get("zoo"), "seed": r["seed"], "split": split, "n": s["n"],
                "accuracy": s["accuracy"]["mean"], "calls_per_episode": s["tools/calls_per_episode"],
                "episodes_with_call": s["tools/episodes_with_call"], "useful_rate": s["tools/useful_rate"],
                "misuse_rate": s["tools/misuse_rate"], "well_formed": s["format/well_formed"],
                "decoy_rate": s.get("tools/decoy_rate", ""), "train_seconds": r["train_seconds"],
            })  # fmt: skip
    return rows


def write_csv(rows: list[dict], path: Path) -> None:
    with atomic(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=RESULT_FIELDS)
        w.writeheader()
        w.writerows(rows)


def _worker_init(threads: int) -> None:
    torch.set_num_threads(threads)


@dataclass
class Job:
    """One GRPO run of the grid: a method and RL seed on one zoo."""

    name: str
    cfg: TrainConfig
    exp: ExperimentDir
    zoo: int | None
    student: str
    ledger: Path | None = None  # where a finished run's records go (`iapo.ledger`)

    @property
    def label(self) -> str:
        zoo = "" if self.zoo is None else f"/zoo{self.zoo}"
        return f"{self.name}{zoo}/seed{self.cfg.seed}"

    def run(self, trm: Path | None, world: World, progress: OnProgress | None = None) -> dict:
        run, zoo = self.exp.run(self.name, self.zoo, self.cfg.seed), self.exp.zoo(self.zoo)
        r = run_one(self.name, self.cfg, zoo.role(self.student), zoo, trm, world, run.path, progress, self.exp)
        if r and self.ledger is not None:
            save_run(self.ledger, self.exp.path, run.path)
        return {**r, "zoo": self.zoo} if r else r


def _cost(tc: TrainConfig) -> float:
    """Relative cost of a run: the attribution term adds forward/backward passes per step per
    model (measured per episode on the quickstart models, in units of one IG node: docs/method.md)."""
    a = tc.method.attribution
    if a is None:
        return float(tc.grpo.steps)
    passes = ESTIMATORS[a.estimator].cost(a) * bool(a.components)
    passes += ESTIMATORS[a.region_estimator].cost(a) if a.regions else 0.0
    return tc.grpo.steps * (1.0 + passes * (2 if a.target == "teacher_forced" else 1) / 4)


def _wave(jobs: list[Job], i: int) -> tuple:
    """Order of the pool: seed by seed (the k-th seed of every method, zoo after zoo), longest
    first within a wave, so a grid cut off early holds paired runs of every method, and no core
    idles at the end of a wave on one long run."""
    seeds = sorted({j.cfg.seed for j in jobs if j.name == jobs[i].name})
    return (seeds.index(jobs[i].cfg.seed), -_cost(jobs[i].cfg))


@dataclass
class ZooTask:
    """Everything a zoo needs before its runs: build (or resume, or take from the ledger) its
    roles, check the acceptance rule, fill the teacher_own targets, evaluate the SFT student."""

    cfg: ExperimentConfig
    out: Path
    zoo: int | None
    zoo_cfg: ZooConfig
    roles: list[str]
    ledger: Path | None = None  # the zoo and its finished runs, kept and restored (`iapo.ledger`)

    def run(self, world: World, progress: OnProgress | None = None) -> dict:
        zoo = ExperimentDir(self.out).zoo(self.zoo)
        if self.ledger is not None:
            take_zoo(self.ledger, zoo.path, self.zoo)  # the zoo as first built, when the ledger holds it
        summary = build_zoo(world, self.zoo_cfg, zoo, self.roles, progress)
        check_zoo(self.cfg, self.zoo, summary)
        prepare_targets(self.cfg, world, zoo, progress)
        if self.ledger is not None:
            restore_zoo(self.ledger, self.out, zoo.path, self.zoo, self.roles)
        sft = {**run_sft_baseline(self.cfg, world, self.out, self.zoo), "zoo": self.zoo}
        if self.ledger is not None:
            save_run(self.ledger, self.out, ExperimentDir(self.out).run("sft", self.zoo, None).path)
        return sft


def _in_worker(task: Job | ZooTask, trm: Path | None, world: Path) -> dict:
    return task.run(trm, World(world)) if isinstance(task, Job) else task.run(World(world))


def next_task(todo_zoos: list[int], ready: list[int], flying: list[str], order) -> tuple[str, int]:
    """The pool's next task, taken off its list: a zoo when no run is ready or no zoo is building
    (so one zoo builds beside the runs), else the ready run first in `order`."""
    if todo_zoos and (not ready or "zoo" not in flying):
        return "zoo", todo_zoos.pop(0)
    ready.sort(key=order)
    return "run", ready.pop(0)


def _run_parallel(
    zoos: list[ZooTask], jobs: list[Job], trm: Path | None, world: Path, workers: int, progress: OnProgress | None,
    first: dict,
) -> tuple[list[dict], list[dict]]:  # fmt: skip
    """Zoos after the first and every run in one pool of `workers` processes: the next zoo builds
    while the runs of the zoos ready so far train (one zoo at a time while runs wait, every
    worker on zoos when none does). Runs go in waves of seeds (`_wave`) over the zoos ready. Returns (SFT results in zoo
    order, run results in job order). Each task is seeded, so its result does not depend on the
    worker or the order; a zoo that fails its acceptance rule stops the grid once the runs in
    flight end (each is checkpointed)."""
    import multiprocessing as mp
    import os
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    threads = max(1, (os.cpu_count() or 1) // workers)
    key = {i: _wave(jobs, i) for i in range(len(jobs))}
    # the first zoo is built (`first`: its SFT result): nothing could run beside it, so it had every core
    todo_zoos = list(range(1, len(zoos)))
    ready = [j for j, job in enumerate(jobs) if job.zoo == zoos[0].zoo]  # runs whose zoo is ready
    sft: list[dict | None] = [first] + [None] * (len(zoos) - 1)
    results: list[dict | None] = [None] * len(jobs)
    flight: dict = {}  # future -> ("zoo" | "run", index)
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init, initargs=(threads,)) as pool:
        while todo_zoos or ready or flight:
            while len(flight) < workers and (todo_zoos or ready):
                kind, i = next_task(todo_zoos, ready, [k for k, _ in flight.values()], key.__getitem__)
                flight[pool.submit(_in_worker, (zoos if kind == "zoo" else jobs)[i], trm, world)] = (kind, i)
            done, _ = wait(flight, return_when=FIRST_COMPLETED)
            for fut in done:
                kind, i = flight.pop(fut)
                if kind == "zoo":
                    sft[i] = fut.result()
                    ready += [j for j, job in enumerate(jobs) if job.zoo == zoos[i].zoo]
                else:
                    results[i] = fut.result()
                if progress:
                    n_done = sum(r is not None for r in results)
                    what = f"zoo {zoos[i].zoo}" if kind == "zoo" else jobs[i].label
                    progress(f"GRPO runs ({workers} workers)", n_done, len(jobs), {"finished": what})
    return sft, results  # type: ignore[return-value]


def prepare_targets(cfg: ExperimentConfig, world: World, zoo: ZooDir, progress: OnProgress | None = None) -> None:
    """Fill the teacher_own cache for every question any seed will draw, once, before the runs
    (so parallel runs neither race nor repeat the teacher's work)."""
    train = world.load("train")
    for name, m in cfg.methods.items():
        if m.attribution is None or m.attribution.target != "teacher_own":
            continue
        [(_, reward)] = [(r.name, r.reward) for r in make_rewards(m, zoo, None, 0, rollout_cfg=cfg.grpo.rollout)
                         if r.name == "attribution"]  # fmt: skip
        seeds = cfg.method_seeds.get(name, cfg.seeds)
        questions = [q for s in seeds for q in planned_questions(train, cfg.grpo.model_copy(update={"seed": s}))]
        reward.prepare(questions, (lambda i, n, k=name: progress(f"targets:{k}", i, n, {})) if progress else None)


def run_experiment(
    cfg: ExperimentConfig,
    out: Path,
    progress: OnProgress | None = None,
    raw_config: dict | None = None,
    ledger: Path | None = None,
) -> list[dict]:
    """World -> zoo -> (TRM) -> SFT baseline -> every method x seed. Resumable at every level;
    with a `ledger` (`iapo.ledger`) also on a fresh machine: each finished run's records are kept
    there, and restored once the rebuilt world and zoo are proven the same."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    exp = ExperimentDir(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(exp.record, experiment_record(cfg, raw_config))  # from the start; timings at the end
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    if not World.exists(exp.world):
        write_world(
            cfg.world,
            exp.world,
            progress=(lambda sp, s, n: progress(f"world:{sp}", s, n, {})) if progress else None,
        )
    world = World(exp.world)
    if ledger is not None:
        bind_experiment(ledger, experiment_record(cfg, raw_config), world.root)
    timings["world_s"] = time.perf_counter() - t_start
    roles = sorted(
        {cfg.student} | {m.teacher for m in cfg.methods.values() if m.needs_teacher and m.teacher in cfg.zoo.roles}
    )
    if any(m.trm for m in cfg.methods.values()) and not exp.trm_weights.exists():
        model, report = train_trm(world.load("train"), world.load("val"), cfg.trm_steps)
        save_trm(model, report, exp.trm)
    trm_dir = exp.trm if exp.trm_weights.exists() else None
    zoos = [ZooTask(cfg, out, z, zc, roles, ledger) for z, zc in zoo_configs(cfg)]
    jobs = [
        Job(name, TrainConfig(method=method, grpo=cfg.grpo, eval=cfg.eval, seed=seed), exp, z, cfg.student, ledger)
        for z, _ in zoo_configs(cfg)
        for name, method in cfg.methods.items()
        for seed in cfg.method_seeds.get(name, cfg.seeds)
    ]  # fmt: skip
    t = time.perf_counter()
    if cfg.workers == 1:
        sft = [zoo.run(world, progress) for zoo in zoos]
        timings["zoo_s"] = time.perf_counter() - t
        runs = [job.run(trm_dir, world, progress) for job in jobs]
    else:  # zoos and runs share the pool: no separate zoo time
        first = zoos[0].run(world, progress)
        sft, runs = _run_parallel(zoos, jobs, trm_dir, world.root, cfg.workers, progress, first)
    results = sft + runs
    timings["zoo_rl_and_eval_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t_start
    write_csv(tidy_rows(results), exp.results_csv)
    final = {**experiment_record(cfg, raw_config), "timings": timings}
    write_json(exp.record, final)
    if ledger is not None:
        bind_experiment(ledger, final, world.root)
    return results


def experiment_record(cfg: ExperimentConfig, source: dict | None) -> dict:
    """The experiment's provenance: its resolved config, the YAML and overrides it came from."""
    return record(cfg, source=source)
