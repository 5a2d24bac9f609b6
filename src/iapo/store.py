"""Reading what runs wrote, where a file may be damaged: a result cut in half by a full disk or
an interrupted copy is named in one line and set aside (`<name>.damaged`), never a traceback;
the caller recomputes it (a run re-evaluates its saved policy) or skips it and says how many.
Writes are atomic (`iapo.provenance.write_json`), so a damaged file comes from outside."""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


class Damaged(ValueError):
    """A run file that does not read as what it should be."""


def read_json(path: Path, required: tuple[str, ...] = ()) -> dict:
    """The JSON object in `path` with the `required` keys; `Damaged` (naming the file and what
    is wrong) otherwise. A missing file is FileNotFoundError, as usual."""
    text = path.read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise Damaged(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, {len(text)} bytes)") from None
    if not isinstance(data, dict):
        raise Damaged(f"{path}: a JSON {type(data).__name__}, not an object")
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
        return read_json(path, ("method", "seed"))
    except Damaged as err:
        set_aside(path, err)
        return None
