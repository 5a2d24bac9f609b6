"""The run store: where an experiment's files live and how they are read back.

    OUT/experiment.json                     the experiment's record (`iapo.provenance.record`)
    OUT/world/                              the generated world
    OUT/zoo/ or OUT/zoos/seed<z>/           the model zoo (one per zoo seed)
    OUT/trm/                                the tool-call reward model (when a method uses it)
    OUT/runs/<method>/[zoo<z>/][seed<k>/]   one run (`sft` has no seed level):
        run.json       its resolved config, inputs and environment (written first)
        metrics.jsonl  one row per training step (both engines)
        checkpoint.pt  the checkpoint of an unfinished run (`iapo.steps`)
        policy/        the trained policy
        trl/           TRL's own output directory (engine: trl)
        result.json    its evaluation: a run with one is finished

Every writer and reader of that layout goes through here (experiment, run, report, gallery,
bench). Writes are atomic (`iapo.provenance`), so a damaged file comes from outside: a result cut
in half by a full disk or an interrupted copy is named in one line and set aside
(`<name>.damaged`), never a traceback; the caller recomputes it (a run re-evaluates its saved
policy) or skips it and says how many."""

from __future__ import annotations

import json
import logging
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
POLICY = "policy"
TRL_OUTPUT = "trl"


def zoo_dir(out: Path, zoo: int | None) -> Path:
    """The zoo of zoo seed `zoo` (None: the experiment's one zoo)."""
    return out / "zoo" if zoo is None else out / "zoos" / f"seed{zoo}"


def run_dir(out: Path, method: str, zoo: int | None, seed: int | None) -> Path:
    """The directory of one run (`seed` None: the SFT student's evaluation)."""
    d = out / "runs" / method if zoo is None else out / "runs" / method / f"zoo{zoo}"
    return d if seed is None else d / f"seed{seed}"


def first_zoo(out: Path) -> tuple[Path, int | None]:
    """The experiment's zoo, or with several zoo seeds the lowest one, and its seed."""
    if not (out / "zoo").is_dir() and (seeds := sorted((out / "zoos").glob("seed*"))):
        z = min(int(p.name.removeprefix("seed")) for p in seeds)
        return zoo_dir(out, z), z
    return zoo_dir(out, None), None


def run_files(out: Path, name: str) -> list[tuple[str, int | None, Path]]:
    """(method, zoo seed or None, path) of every file `name` directly in a run directory."""
    found = []
    for p in sorted((out / "runs").rglob(name)):
        parts = p.relative_to(out / "runs").parts
        zoo = next((int(x[3:]) for x in parts[1:-1] if x.startswith("zoo") and x[3:].isdigit()), None)
        if len(parts) <= 4 and all(x.startswith(("zoo", "seed")) for x in parts[1:-1]):
            found.append((parts[0], zoo, p))
    return found


def read_metrics(path: Path) -> list[dict]:
    """The rows of a metrics.jsonl (a run directory means its own)."""
    path = path / METRICS if path.is_dir() else path
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def keep_metrics(path: Path, keep) -> None:
    """Rewrite a metrics.jsonl with the rows `keep(row)` accepts (a resumed run drops the rows
    past its checkpoint, so the file holds one row per step)."""
    if path.exists():
        write_text(path, "".join(json.dumps(r) + "\n" for r in read_metrics(path) if keep(r)))


def read_experiment(out: Path) -> dict:
    """An experiment's record (experiment.json), or {} when the directory has none."""
    path = out / EXPERIMENT
    return read_json(path) if path.exists() else {}


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
