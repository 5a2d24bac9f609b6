"""The ledger: what a grid leaves behind so that a fresh machine resumes it instead of redoing it.

A run directory holds its checkpoints and policy (megabytes); the report reads three small files
of each run (its record, metrics and result). A grid longer than the life of one machine keeps
those, and the zoos its runs start from, in a ledger directory committed beside its config (its
layout: `iapo.store`): the experiment's record (a ledger holds one config), the content hashes of
the world's splits and images, each zoo as built (roles, tokenizers, its record, teacher targets;
not its training stages) with the content hash of each role's weights, and each finished run's
record files where the experiment keeps them.

The zoo travels because rebuilding it is not enough: the same recipe on another CPU class gives
other weights (zoo 0 of issue 40's grid: a teacher at 55% on val on one machine, 52% on the
next). A fresh machine takes the zoo from the ledger, and a run's records come back only to a
zoo whose weights hash as recorded; a world or zoo that differs is refused with both hashes named.
Hashes are of file contents, not names or times. With experiment.json and the run records,
`iapo report LEDGER --no-gallery` renders the grid's report from the ledger alone.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from iapo.config import changed_keys
from iapo.errors import ConfigError, DataError
from iapo.provenance import atomic, content_hash, write_json
from iapo.store import METRICS, RESULT, RUN_RECORD, ZOO_BUILD, ZOO_HASHES, ExperimentDir, read_json

log = logging.getLogger(__name__)

RECORD_FILES = (RUN_RECORD, METRICS, RESULT)  # what the report reads of a run
WEIGHTS = (".safetensors", ".bin", ".pt")


def world_hashes(world: Path) -> dict[str, str]:
    """The world's splits (example files) and its images: the teacher targets are keyed by the
    image bytes too, so a PNG encoder that writes other bytes is another world for the ledger."""
    return {
        "world": content_hash(list(world.glob("*.jsonl")), world),
        "images": content_hash([f for f in (world / "images").rglob("*") if f.is_file()], world),
    }


def zoo_hashes(zoo: Path, roles: list[str]) -> dict[str, str]:
    """role -> the hash of its weight files (a role without any is a DataError naming it)."""
    out = {}
    for role in roles:
        files = [f for f in (zoo / role).iterdir() if f.suffix in WEIGHTS] if (zoo / role).is_dir() else []
        if not files:
            raise DataError(f"{zoo / role}: no weight files to fingerprint (is the zoo built?)")
        out[role] = content_hash(files, zoo / role)
    return out


def _check(recorded: dict, found: dict, what: str, path: Path) -> None:
    differ = sorted(k for k in recorded.keys() & found.keys() if recorded[k] != found[k])
    if differ:
        k = differ[0]
        raise DataError(
            f"{path}: {what} was rebuilt differently here ({k}: recorded {recorded[k][:12]}, built "
            f"{found[k][:12]}), so the runs recorded on it cannot join this grid (a zoo: remove it here, and the "
            "ledger's copy is taken; a world: generate it with the versions the ledger's experiment.json records)"
        )


def bind_experiment(ledger: Path, record: dict, world: Path) -> None:
    """Write the experiment's record (`iapo.provenance.record`) and world hash to the ledger, or,
    when it has them, refuse another config or another world: a ledger holds one grid."""
    path = ExperimentDir(ledger).record
    if path.exists():
        old = read_json(path, required=("config",))["config"]
        if old != record["config"]:
            keys = ", ".join(changed_keys(old, record["config"])[:6])
            raise ConfigError(f"{path}: this ledger holds another experiment ({keys} differ); give this one its own")
    bind_world(ledger, world)
    write_json(path, record)


def bind_world(ledger: Path, world: Path) -> None:
    """Record the world's hashes, or check them against those recorded (adding any missing)."""
    path, found = ExperimentDir(ledger).world_hashes, world_hashes(world)
    recorded = read_json(path) if path.exists() else {}
    _check(recorded, found, "the world", path)
    if found.keys() - recorded.keys():
        write_json(path, {**recorded, **found})


def _zoo(ledger: Path, zoo: int | None) -> Path:
    return ExperimentDir(ledger).ledger_zoo(zoo).path


ZOO_SKIP = (*ZOO_BUILD, ZOO_HASHES)  # the build's training directories; the ledger's own file


def _copy_missing(src: Path, dest: Path) -> None:
    """Every file under `src` (but ZOO_SKIP at its top) that `dest` lacks, each copied whole."""
    for f in sorted(src.rglob("*")):
        rel = f.relative_to(src)
        if f.is_file() and rel.parts[0] not in ZOO_SKIP and not (dest / rel).exists():
            with atomic(dest / rel) as tmp:
                shutil.copyfile(f, tmp)


def take_zoo(ledger: Path, zoo_path: Path, zoo: int | None) -> bool:
    """Put the ledger's copy of the zoo where the experiment builds it (files the directory
    already has are kept), so that nothing is rebuilt. False when the ledger has no copy."""
    src = _zoo(ledger, zoo)
    if not src.is_dir():
        return False
    _copy_missing(src, zoo_path)
    return True


def restore_zoo(ledger: Path, out: Path, zoo_path: Path, zoo: int | None, roles: list[str]) -> int:
    """Check the built zoo against the ledger, keep what the ledger lacks of it (its weights
    and targets the first time), then copy the ledger's records of its runs into `out` where
    `out` has no result yet. Returns how many runs were restored."""
    path, found = _zoo(ledger, zoo) / ZOO_HASHES, zoo_hashes(zoo_path, roles)
    recorded = read_json(path) if path.exists() else {}
    _check(recorded, found, "the zoo" if zoo is None else f"zoo {zoo}", path)
    _copy_missing(zoo_path, _zoo(ledger, zoo))
    if found.keys() - recorded.keys():
        write_json(path, {**recorded, **found})
    n = 0
    for _, z, result in ExperimentDir(ledger).run_files(RESULT):
        dest = out / result.parent.relative_to(ledger)
        if z != zoo or (dest / RESULT).exists():
            continue
        _copy_record(result.parent, dest)
        n += 1
    if n:
        log.info("zoo %s: %d finished runs restored from %s", zoo, n, ledger)
    return n


def save_run(ledger: Path, out: Path, run: Path) -> None:
    """Copy the record files of a finished run (a directory under `out`) into the ledger."""
    if not (run / RESULT).exists():
        raise DataError(f"{run}: no {RESULT}; only a finished run goes into the ledger")
    _copy_record(run, ledger / run.relative_to(out))


def _copy_record(src: Path, dest: Path) -> None:
    """A run's record files, each copied whole (via a temporary name), result.json last: a
    record with a result is complete."""
    for name in RECORD_FILES:
        if (src / name).exists():
            with atomic(dest / name) as tmp:
                shutil.copyfile(src / name, tmp)
