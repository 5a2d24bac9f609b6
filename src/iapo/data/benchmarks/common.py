"""What every benchmark loader shares: the result type and careful file reading."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from iapo.data.example import Example
from iapo.provenance import atomic


@dataclass
class Loaded:
    examples: list[Example]
    skipped: list[str] = field(default_factory=list)  # one message per skipped row
    tools_unavailable: int = 0  # examples whose image carries no boxes: answered without tools
    withheld: int = 0  # rows whose gold answer the release withholds (CharXiv test): not loaded
    answer_cells: int = 0  # rendered tables: questions whose gold answer is the text of a cell
    answer_cells_visible: int = 0  # ... and that cell is fully visible in the image
    missing_glyphs: dict[str, int] = field(default_factory=dict)  # characters the font cannot draw

    def full(self, limit: int | None) -> bool:
        return limit is not None and len(self.examples) >= limit


def read_jsonl_rows(path: Path) -> list[tuple[int, dict | str]]:
    """(line number, row) pairs; a malformed line becomes its error message, for the caller to skip."""
    out: list[tuple[int, dict | str]] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                out.append((lineno, row if isinstance(row, dict) else f"expected an object, got {type(row).__name__}"))
            except json.JSONDecodeError as e:
                out.append((lineno, f"not JSON ({e})"))
    return out


def cache_image(data: bytes, cache: Path, suffix: str = ".png") -> Path:
    """Write image bytes once under a content-addressed name (atomic: no half-written file)."""
    out = cache / f"{hashlib.sha1(data).hexdigest()[:16]}{suffix}"
    if not out.exists():
        with atomic(out) as tmp:
            tmp.write_bytes(data)
    return out


def check_image(path: Path) -> str | None:
    """None if `path` is a readable image, else why not (for a skip message naming the row)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.verify()
    except FileNotFoundError:
        return f"image {path} not found"
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        return f"image {path} is corrupt ({e})"
    return None
