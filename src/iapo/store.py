"""Reading what runs wrote, where a file may be damaged: a result cut in half by a full disk or
an interrupted copy is named in one line and set aside (`<name>.damaged`), never a traceback;
the caller recomputes it (a run re-evaluates its saved policy) or skips it and says how many.
Writes are atomic (`iapo.provenance.write_json`), so a damaged file comes from outside."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from iapo.errors import DataError

log = logging.getLogger(__name__)


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
