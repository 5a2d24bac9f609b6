"""The ledger: what a grid's finished runs leave behind so that a fresh machine resumes the grid
instead of redoing it.

A run directory holds its checkpoints and policy (megabytes); the report reads three small files
of each run (run.json, metrics.jsonl, result.json). A grid longer than the life of one machine
keeps those in a ledger directory that can be committed beside the experiment's config:

    LEDGER/experiment.json                 the experiment's record: a ledger holds one config
    LEDGER/world.json                      the content hash of the world's splits
    LEDGER/zoos/seed<z>.json               the content hash of each zoo role's weights
    LEDGER/runs/<method>/zoo<z>/seed<k>/   the run's record files (sft: runs/sft/zoo<z>/)

A zoo is not copied: it is rebuilt from its recipe, and its records are restored only once the
rebuilt zoo is proven the same (every role's weight files hash as recorded). A zoo or world that
rebuilds differently (another CPU class, another library version) is refused with both hashes
named: runs on different zoos do not belong in one grid. Hashes are of file contents, not names
or times, so two machines that compute the same weights agree. With experiment.json and the run
records, `iapo report LEDGER --no-gallery` renders the grid's report from the ledger alone.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

from iapo.config import changed_keys
from iapo.errors import ConfigError, DataError
from iapo.provenance import write_json
from iapo.store import EXPERIMENT, METRICS, RESULT, RUN_RECORD, read_json, run_files

log = logging.getLogger(__name__)

RECORD_FILES = (RUN_RECORD, METRICS, RESULT)  # what the report reads of a run
WEIGHTS = (".safetensors", ".bin", ".pt")


def content_hash(files: list[Path], root: Path) -> str:
    """sha256 over each file's path (relative to `root`) and bytes, in sorted order."""
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(str(f.relative_to(root)).encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


def world_hash(world: Path) -> str:
    """The world as its splits' example files (the images are drawn from them)."""
    return content_hash(list(world.glob("*.jsonl")), world)


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
            f"{found[k][:12]}), so the runs recorded on it cannot join this grid; rebuild on the machine class "
            "they came from, or start a new ledger"
        )


def bind_experiment(ledger: Path, record: dict, world: Path) -> None:
    """Write the experiment's record (`iapo.provenance.record`) and world hash to the ledger, or,
    when it has them, refuse another config or another world: a ledger holds one grid."""
    path = ledger / EXPERIMENT
    if path.exists():
        old = read_json(path, required=("config",))["config"]
        if old != record["config"]:
            keys = ", ".join(changed_keys(old, record["config"])[:6])
            raise ConfigError(f"{path}: this ledger holds another experiment ({keys} differ); give this one its own")
    bind_world(ledger, world)
    write_json(path, record)


def bind_world(ledger: Path, world: Path) -> None:
    """Record the world's hash, or check it against the one recorded."""
    path, found = ledger / "world.json", {"world": world_hash(world)}
    if path.exists():
        _check(read_json(path, required=("world",)), found, "the world", path)
    else:
        write_json(path, found)


def _zoo_file(ledger: Path, zoo: int | None) -> Path:
    return ledger / "zoos" / ("zoo.json" if zoo is None else f"seed{zoo}.json")


def restore_zoo(ledger: Path, out: Path, zoo_path: Path, zoo: int | None, roles: list[str]) -> int:
    """Check the built zoo against the ledger (recording it the first time), then copy the
    ledger's records of its runs into `out` where `out` has no result yet. Returns how many runs
    were restored."""
    path, found = _zoo_file(ledger, zoo), zoo_hashes(zoo_path, roles)
    recorded = read_json(path) if path.exists() else {}
    _check(recorded, found, "the zoo" if zoo is None else f"zoo {zoo}", path)
    if found.keys() - recorded.keys():
        write_json(path, {**recorded, **found})
    n = 0
    for _, z, result in run_files(ledger, RESULT):
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
    dest.mkdir(parents=True, exist_ok=True)
    for name in RECORD_FILES:
        if (src / name).exists():
            tmp = dest / f".{name}.tmp"
            shutil.copyfile(src / name, tmp)
            tmp.replace(dest / name)
