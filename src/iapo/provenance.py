"""What a run ran with, written next to what it made: its resolved config (every default filled
in, so a later change of a default cannot change what the record says), the package and library
versions, and the machine (CPU model, threads, GPU). Runs (`run.json`), checkpoints, saved
policies and experiments (`experiment.json`) all carry one; the report reads labels and settings
from these records, and `iapo train --config <run dir>` reruns a run from its `run.json`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from uuid import uuid4

import torch
from pydantic import BaseModel

LIBRARIES = ("torch", "transformers", "trl", "accelerate", "captum", "pydantic", "numpy")


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what `platform` says."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def cpu_class() -> str:
    """What decides the floating-point kernels a CPU runs: family/model (the name alone, e.g.
    "AMD EPYC", covers several generations) and the vector ISA torch dispatches to. Two machines
    of one class reproduce a run's numbers; across classes the same commit gives other weights."""
    info = _cpuinfo()
    fam = f"family {info['cpu family']} model {info['model']}, " if "cpu family" in info and "model" in info else ""
    return f"{fam}{torch.backends.cpu.get_cpu_capability()}"


@functools.cache
def _cpuinfo(path: str = "/proc/cpuinfo") -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} elsewhere)."""
    try:
        lines = Path(path).read_text().split("\n\n", 1)[0].splitlines()
    except OSError:
        return {}
    return {k.strip(): v.strip() for k, _, v in (x.partition(":") for x in lines) if k.strip()}


@functools.cache
def source_commit() -> dict[str, Any] | None:
    """The git commit of the code that runs, and whether its tracked files differ from it (None
    outside a git checkout, e.g. an installed wheel): a version number is not enough, a run made
    between two releases names the commit it ran. Read once per process: the code it loaded."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        diff = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                              capture_output=True, text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    if head.returncode:
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(diff.stdout.strip())}


def environment() -> dict[str, Any]:
    """Package and library versions, and the machine this process runs on."""
    from iapo import __version__

    libs = {}
    for name in LIBRARIES:
        try:
            libs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libs[name] = None
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "iapo": __version__,
        "git": source_commit(),
        "python": platform.python_version(),
        "libraries": libs,
        "machine": {
            "cpu": cpu_model(),
            "cpu_class": cpu_class(),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "gpu": gpu,
        },
    }


def content_hash(files: list[Path], root: Path) -> str:
    """sha256 over each file's path (relative to `root`) and bytes, in sorted order: what
    identifies a world, a zoo role or a checkpoint across copies and machines (names and
    modification times do not)."""
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(str(f.relative_to(root)).encode() + b"\0")
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 24):
                h.update(chunk)
    return h.hexdigest()


def resolved(config: BaseModel) -> dict[str, Any]:
    """The config as JSON with every default written out."""
    return config.model_dump(mode="json")


def record(config: BaseModel, **context: Any) -> dict[str, Any]:
    """A provenance record: the resolved config, its context (paths, names), the environment."""
    return {
        "config": resolved(config),
        **{k: (str(v) if isinstance(v, Path) else v) for k, v in context.items()},
        "environment": environment(),
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
    }


@contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """A path to write `path`'s new content to; it becomes `path` only when the block ends without
    error, so a reader never sees half a file and a crash keeps the old one. The temporary name
    is unique per process and call and keeps the suffix (writers that infer a format from it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid4().hex[:8]}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """Atomic (`atomic`)."""
    with atomic(path) as tmp:
        tmp.write_text(text)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic, as `write_text`."""
    write_text(path, json.dumps(data, indent=1))
