"""The run store: the one description of an experiment's layout, its names, and how its files
are read back. Every writer and reader takes these objects (experiment, run, report, gallery,
ledger, bench); tests/test_store.py fails if a name below is spelled anywhere else in src/ or bench/.

    <experiment>/                          `ExperimentDir`
        experiment.json                    .record: the resolved config, versions, machine, wall times
        world/                             .world: the generated world (its own layout: `iapo.world`)
        trm/trm.pt, trm/trm.json           .trm, .trm_weights: the tool-call reward model, when used
        results.csv                        .results_csv: one tidy row per (method, zoo, seed, split)
        zoo/  or  zoos/seed<z>/            .zoo(z) -> `ZooDir`
            <role>/                        .role(name): a model directory (config.json, weights, processor)
            targets/                       .targets: the cached teacher_own targets
            zoo.json                       .record: sizes, budgets and val accuracy of every role
            vision/<key>/vision.pt         .vision(key).vision_weights: the pretrained vision tower, per width
            runs/<role>/<stage>/done.pt    .stage(role): the role's SFT stages, each a `RunDir` (.done)
        runs/<method>/[zoo<z>/][seed<k>/]  .run(method, z, k) -> `RunDir` (sft: no seed level)

    a run, or any training directory       `RunDir`
        run.json        .record: its resolved config, inputs (paths relative to the experiment) and environment
        metrics.jsonl   .metrics: one row per training step (both engines)
        checkpoint.pt   .checkpoint: the checkpoint of an unfinished run (`iapo.steps`)
        tb/             .tensorboard
        policy/         .policy: the trained policy
        trl/            .trl: TRL's own output directory (engine: trl)
        result.json     .result: its evaluation: a run with one is finished

    a ledger (`iapo.ledger`): experiment.json and runs/ as above, world.json (the world's hashes),
    zoos/zoo or zoos/seed<z>/ (the zoo as built) with hashes.json (its weights' hashes)

Writes are atomic (`iapo.provenance`), so a damaged file comes from outside: a result cut in half
by a full disk or an interrupted copy is named in one line and set aside (`<name>.damaged`),
never a traceback; the caller recomputes it (a run re-evaluates its saved policy) or skips it
and says how many."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iapo.errors import DataError
from iapo.provenance import write_text

log = logging.getLogger(__name__)

EXPERIMENT = "experiment.json"
RUN_RECORD = "run.json"
RESULT = "result.json"
METRICS = "metrics.jsonl"
CKPT = "checkpoint.pt"
TENSORBOARD = "tb"
POLICY = "policy"
TRL_OUTPUT = "trl"
WORLD = "world"
TRM = "trm"
TRM_WEIGHTS = "trm.pt"
TRM_REPORT = "trm.json"
RESULTS_CSV = "results.csv"
ZOO, ZOOS, RUNS = "zoo", "zoos", "runs"
ZOO_RECORD = "zoo.json"
TARGETS = "targets"
VISION = "vision"
LEDGER_WORLD = "world.json"
ZOO_HASHES = "hashes.json"
ZOO_BUILD = (RUNS, VISION)  # a zoo's training directories (not part of the built zoo)
DONE = "done.pt"  # a finished SFT stage's weights
VISION_WEIGHTS = "vision.pt"  # a pretrained vision tower and merger

LAYOUT = (EXPERIMENT, RUN_RECORD, RESULT, METRICS, CKPT, TENSORBOARD, POLICY, TRL_OUTPUT, WORLD, TRM, TRM_WEIGHTS,
          TRM_REPORT, RESULTS_CSV, ZOO, ZOOS, RUNS, ZOO_RECORD, TARGETS, VISION, ZOO_HASHES, DONE,
          VISION_WEIGHTS)  # fmt: skip
"""Every name of the layout (what the test looks for elsewhere; LEDGER_WORLD is the world's own
manifest name too, so it is not in the list)."""


def _under(*parts: str) -> property:
    """A layout object's file or folder at `parts`, below its `path` (one declaration per name)."""
    return property(lambda self: self.path.joinpath(*parts))


@dataclass(frozen=True)
class RunDir:
    """One run's directory, or any directory a trainer writes (vision pretraining, an SFT stage)."""

    path: Path

    record = _under(RUN_RECORD)
    metrics = _under(METRICS)
    checkpoint = _under(CKPT)
    tensorboard = _under(TENSORBOARD)
    policy = _under(POLICY)
    trl = _under(TRL_OUTPUT)
    result = _under(RESULT)
    done = _under(DONE)  # an SFT stage's final weights
    vision_weights = _under(VISION_WEIGHTS)  # vision pretraining's product

    def read_record(self) -> dict | None:
        return read_run_record(self.path)

    def read_result(self) -> dict | None:
        return read_result(self.result)

    def experiment(self) -> ExperimentDir | None:
        """The experiment this run's record places it in (None: a run of its own, or no record)."""
        rec = self.read_record()
        rel = (rec or {}).get("experiment")
        return None if rel is None else ExperimentDir(Path(os.path.normpath(self.path / rel)))

    def resolve(self, recorded: str | None) -> Path | None:
        """A path as the record holds it: relative to the experiment directory, or absolute."""
        if recorded is None:
            return None
        exp = self.experiment()
        return Path(recorded) if exp is None else Path(os.path.normpath(exp.path / recorded))


@dataclass(frozen=True)
class ZooDir:
    """A model zoo: a model directory per role, the cached targets, the build's own stages."""

    path: Path
    seed: int | None = None

    record = _under(ZOO_RECORD)
    targets = _under(TARGETS)

    def role(self, name: str) -> Path:
        """The model directory of role `name`."""
        return self.path / name

    def vision(self, key: str) -> RunDir:
        """Where the vision tower of width `key` is pretrained (a build stage)."""
        return RunDir(self.path / VISION / key)

    def stage(self, role: str) -> Path:
        """Where role `role`'s SFT stages train (each stage a `RunDir` below it)."""
        return self.path / RUNS / role


@dataclass(frozen=True)
class ExperimentDir:
    """An experiment's (or a ledger's) directory: world, zoos, reward model and runs."""

    path: Path

    record = _under(EXPERIMENT)
    world = _under(WORLD)
    trm = _under(TRM)
    trm_weights = _under(TRM, TRM_WEIGHTS)
    results_csv = _under(RESULTS_CSV)
    world_hashes = _under(LEDGER_WORLD)

    def zoo(self, seed: int | None) -> ZooDir:
        """The zoo of zoo seed `seed` (None: the experiment's one zoo)."""
        return ZooDir(self.path / ZOO if seed is None else self.path / ZOOS / f"seed{seed}", seed)

    def ledger_zoo(self, seed: int | None) -> ZooDir:
        """A ledger's copy of a zoo (zoos/zoo for the one zoo of an experiment without zoo seeds)."""
        return ZooDir(self.path / ZOOS / (ZOO if seed is None else f"seed{seed}"), seed)

    def run(self, method: str, zoo: int | None, seed: int | None) -> RunDir:
        """One run (`seed` None: the SFT student's evaluation)."""
        d = self.path / RUNS / method if zoo is None else self.path / RUNS / method / f"zoo{zoo}"
        return RunDir(d if seed is None else d / f"seed{seed}")

    def first_zoo(self) -> ZooDir:
        """The experiment's zoo, or with several zoo seeds the lowest one."""
        if not (self.path / ZOO).is_dir() and (seeds := sorted((self.path / ZOOS).glob("seed*"))):
            return self.zoo(min(int(p.name.removeprefix("seed")) for p in seeds))
        return self.zoo(None)

    def run_files(self, name: str) -> list[tuple[str, int | None, Path]]:
        """(method, zoo seed or None, path) of every file `name` directly in a run directory."""
        found, runs = [], self.path / RUNS
        for p in sorted(runs.rglob(name)):
            parts = p.relative_to(runs).parts
            zoo = next((int(x[3:]) for x in parts[1:-1] if x.startswith("zoo") and x[3:].isdigit()), None)
            if len(parts) <= 4 and all(x.startswith(("zoo", "seed")) for x in parts[1:-1]):
                found.append((parts[0], zoo, p))
        return found

    def read_record(self) -> dict:
        """experiment.json, or {} when the directory has none."""
        return read_json(self.record) if self.record.exists() else {}

    def relative(self, path: Path | None) -> str | None:
        """`path` as a record names it: relative to this directory when it lies below it, so a
        ledger or a run directory moved elsewhere still reruns; else absolute."""
        if path is None:
            return None
        try:
            return str(Path(os.path.abspath(path)).relative_to(os.path.abspath(self.path)))
        except ValueError:
            return str(Path(os.path.abspath(path)))


def read_metrics(path: Path) -> list[dict]:
    """The rows of a metrics.jsonl (a run directory means its own)."""
    path = path / METRICS if path.is_dir() else path
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def keep_metrics(path: Path, keep) -> None:
    """Rewrite a metrics.jsonl with the rows `keep(row)` accepts (a resumed run drops the rows
    past its checkpoint, so the file holds one row per step)."""
    if path.exists():
        write_text(path, "".join(json.dumps(r) + "\n" for r in read_metrics(path) if keep(r)))


def read_run_record(run: Path) -> dict | None:
    """A run's run.json, or None for a directory without one (made before 0.2, or not a run)."""
    path = run / RUN_RECORD
    return read_json(path, required=("config",)) if path.exists() else None


class Damaged(DataError):
    """A file that exists and does not read as what it should be."""


def read_json(path: Path, expect: type = dict, shape: str = "", required: tuple[str, ...] = ()) -> Any:
    """The parsed file, an `expect` (described as `shape` in errors) with the `required` keys:
    the one JSON reader of run files and benchmark files. DataError naming the file if it is
    missing; `Damaged` if it is not JSON, not an `expect`, or lacks a key."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise Damaged(f"{path}: not JSON ({e})") from None
    except json.JSONDecodeError as e:
        raise Damaged(f"{path}: not JSON ({e.msg} at line {e.lineno}, {len(text)} bytes)") from None
    if not isinstance(data, expect):
        raise Damaged(f"{path}: expected {shape or expect.__name__}, got {type(data).__name__}")
    missing = [k for k in required if k not in data]
    if missing:
        raise Damaged(f"{path}: no {', '.join(missing)}")
    return data


def set_aside(path: Path, err: Damaged) -> Path:
    """Move a damaged file to `<name>.damaged` (kept for inspection) and log one line."""
    dest = path.with_name(path.name + ".damaged")
    path.replace(dest)
    log.warning("%s; moved to %s", err, dest.name)
    return dest


def read_result(path: Path) -> dict | None:
    """A finished run's result.json, or None when there is none or it is damaged (then set
    aside, so the run is recomputed)."""
    if not path.exists():
        return None
    try:
        return read_json(path, required=("method", "seed"))
    except Damaged as err:
        set_aside(path, err)
        return None
