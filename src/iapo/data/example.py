"""The one example type every data source yields: the world's splits and the public benchmarks.

Stored as JSONL rows plus image files, so the world and real data share loaders. Fields the
world knows exactly (evidence, valid tool paths, per-token labels) are optional for real data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from iapo.errors import DataError
from iapo.provenance import atomic
from iapo.tools.layout import Layout

# exact | relaxed | boolean | wtq | vwtq | vtabfact | fintabnetqa | charxiv/<rubric> (iapo.answers.grade)
Metric = str


@dataclass
class Example:
    id: str
    question: str
    answer: str
    metric: Metric
    layout: Layout
    image_path: str  # relative to the dataset root (or absolute)
    family: str = "unknown"
    split: str = "unknown"
    style: str = ""  # table, v_bar, h_bar, line, grouped, or a benchmark's own name
    answers: list[str] = field(default_factory=list)  # alternative gold answers, if any
    evidence: list[str] | None = None  # content units the answer needs (cells / chart values)
    context: list[str] = field(default_factory=list)  # units that must stay visible (row starters)
    valid_paths: list[list[dict]] = field(default_factory=list)  # every valid tool path
    reference_path: list[dict] = field(default_factory=list)  # ONE annotated path (ToolRL baseline)
    grid: list[list[str]] | None = None  # per merged token label of the image (world only)
    rationale: str = ""  # the values read to compute the answer, for demonstrations (world only)
    meta: dict = field(default_factory=dict)
    root: Path | None = field(default=None, repr=False, compare=False)

    @property
    def kind(self) -> str:
        return self.layout.kind

    @property
    def gold(self) -> list[str]:
        return [self.answer, *self.answers]

    def image_file(self) -> Path:
        p = Path(self.image_path)
        return p if p.is_absolute() or self.root is None else self.root / p

    def load_image(self) -> Image.Image:
        """The RGB image; a missing or corrupt file raises DataError naming it and the row."""
        path = self.image_file()
        try:
            with Image.open(path) as im:
                im.load()
                return im.convert("RGB")
        except FileNotFoundError as e:
            raise DataError(f"{path}: image of example {self.id!r} not found") from e
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise DataError(f"{path}: image of example {self.id!r} is corrupt ({e})") from e

    def to_json(self) -> dict:
        d = {
            "id": self.id,
            "split": self.split,
            "family": self.family,
            "style": self.style,
            "question": self.question,
            "answer": self.answer,
            "answers": self.answers,
            "metric": self.metric,
            "image": self.image_path,
            "layout": self.layout.to_json(),
            "evidence": self.evidence,
            "context": self.context,
            "valid_paths": self.valid_paths,
            "reference_path": self.reference_path,
            "grid": self.grid,
            "rationale": self.rationale,
            "meta": self.meta,
        }
        return d

    @classmethod
    def from_json(cls, d: dict, root: Path | None = None) -> Example:
        return cls(
            id=str(d["id"]),
            question=str(d["question"]),
            answer=str(d["answer"]),
            answers=[str(a) for a in d.get("answers") or []],
            metric=d.get("metric", "exact"),
            layout=Layout.from_json(d["layout"]),
            image_path=str(d["image"]),
            family=d.get("family", "unknown"),
            split=d.get("split", "unknown"),
            style=d.get("style", ""),
            evidence=d.get("evidence"),
            context=d.get("context") or [],
            valid_paths=d.get("valid_paths") or [],
            reference_path=d.get("reference_path") or [],
            grid=d.get("grid"),
            rationale=str(d.get("rationale") or ""),
            meta=d.get("meta") or {},
            root=root,
        )


def read_jsonl(path: Path, root: Path | None = None) -> Iterator[Example]:
    """Examples of a JSONL file; a malformed row raises DataError naming the file and line."""
    try:
        f = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except FileNotFoundError as e:
        raise DataError(f"{path}: file not found") from e
    with f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield Example.from_json(json.loads(line), root=root)
            except (ValueError, KeyError, TypeError) as e:
                raise DataError(f"{path}:{lineno}: malformed example row ({type(e).__name__}: {e})") from e


def write_jsonl_atomic(path: Path, rows: list[dict]) -> None:
    """Write all rows or nothing: a crash leaves no half-written file under the final name."""
    with atomic(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")
