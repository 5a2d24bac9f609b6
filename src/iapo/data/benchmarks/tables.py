"""Table benchmarks from their official releases; tables are rendered to images with every
cell's box kept (`iapo.data.render`), so the row and column tools work on real tables.

- `wtq` (WikiTableQuestions): `DIR/*.tsv` (or `DIR/data/*.tsv`) with columns
  `id, utterance, context, targetValue` (several answers joined by `|`; `context` =
  `csv/20x-csv/N.csv`, relative to DIR) and the CSV tables. Metric: official denotation accuracy
  (`iapo.answers.wtq`).
- `tabfact` (TabFact): `DIR/*.json` = `{table_id: [[statements], [labels 1/0], caption]}` and
  `DIR/all_csv/<table_id>` (cells separated by `#`, first row the header). Metric: accuracy on
  true/false.

Each table is rendered once (`iapo.data.render`: every row and character, a Unicode font) and
cached under `cache/` by its content; a sidecar JSON keeps the layout and what the loader
reports: for every question whose gold answer is the text of a cell, whether that cell is fully
visible in the image (`Loaded.answer_cells`, `Loaded.answer_cells_visible`), and characters the
font cannot draw (`Loaded.missing_glyphs`). A malformed row or a missing table is skipped with
one message naming the file and row.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from iapo.data.benchmarks.common import Loaded
from iapo.data.example import Example
from iapo.data.render import RENDERER, render_table
from iapo.errors import DataError
from iapo.provenance import atomic
from iapo.store import read_json
from iapo.tools.layout import Layout


def _read_csv(path: Path, delimiter: str = ",") -> tuple[list[str], list[list[str]]]:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = [[c.replace("\n", " ").strip() for c in r] for r in csv.reader(f, delimiter=delimiter)]
    except FileNotFoundError:
        raise DataError(f"{path}: table not found") from None
    except (csv.Error, UnicodeDecodeError) as e:
        raise DataError(f"{path}: unreadable table ({e})") from None
    if not rows or not rows[0]:
        raise DataError(f"{path}: empty table")
    return rows[0], rows[1:]


@dataclass
class TableImage:
    """A rendered table as the loader needs it: the image file, its layout, the text of every
    body cell with whether it is fully visible, and the characters the font could not draw."""

    path: str
    layout: Layout
    cells: dict[str, bool]  # normalised cell text -> some cell with that text is fully visible
    missing: dict[str, int]

    def answer_visible(self, answer: str) -> bool | None:
        """None if `answer` is not the text of a cell, else whether such a cell is fully visible."""
        return self.cells.get(" ".join(answer.split()).casefold())


def _table_image(table: Path, cache: Path, delimiter: str) -> TableImage:
    """Render once per table content (and renderer version); later loads read the sidecar."""
    try:
        raw = table.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{table}: table not found") from None
    key = hashlib.sha1(raw + delimiter.encode() + RENDERER.encode()).hexdigest()[:16]
    out, side = cache / f"{key}.png", cache / f"{key}.json"
    if out.exists() and side.exists():
        d = json.loads(side.read_text())
        return TableImage(str(out.resolve()), Layout.from_json(d["layout"]), d["cells"], d["missing"])
    header, rows = _read_csv(table, delimiter)
    r = render_table(header, rows)
    cells: dict[str, bool] = {}
    for row in r.cells[1:]:
        for c in row:
            k = " ".join(c.text.split()).casefold()
            if k:
                cells[k] = cells.get(k, False) or r.fully_visible(c)
    cache.mkdir(parents=True, exist_ok=True)
    with atomic(out) as tmp:
        r.image.save(tmp)
    side.write_text(json.dumps({"layout": r.layout.to_json(), "cells": cells, "missing": dict(r.missing)}))
    return TableImage(str(out.resolve()), r.layout, cells, dict(r.missing))


def _render_all(
    tables: list[Path], cache: Path, delimiter: str, out: Loaded, what: str
) -> dict[Path, TableImage | DataError]:
    """Every distinct table once, with a progress bar; a bad table maps to its error (its rows skip)."""
    done: dict[Path, TableImage | DataError] = {}
    missing: Counter = Counter()
    for t in tqdm(list(dict.fromkeys(tables)), desc=f"rendering {what} tables", unit="table", leave=False):
        try:
            img = _table_image(t, cache, delimiter)
            missing.update(img.missing)
            done[t] = img
        except DataError as e:
            done[t] = e
    out.missing_glyphs = dict(missing)
    return done


def _count_answer(out: Loaded, img: TableImage, answers: list[str]) -> None:
    seen = [img.answer_visible(a) for a in answers]
    if any(v is not None for v in seen):
        out.answer_cells += 1
        out.answer_cells_visible += all(v is not False for v in seen)


def load_wtq(root: Path, cache: Path, limit: int | None = None) -> Loaded:
    files = sorted(root.glob("*.tsv")) + sorted((root / "data").glob("*.tsv"))
    if not files:
        raise DataError(f"{root}: no WTQ *.tsv question files (expected DIR/*.tsv or DIR/data/*.tsv)")
    out = Loaded([])
    rows: list[tuple[Path, int, dict]] = []  # (file, line, fields)
    for f in files:
        with open(f, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(reader, None)
            need = ["id", "utterance", "context", "targetValue"]
            if header is None or any(k not in header for k in need):
                raise DataError(f"{f}: header must have columns {need}, got {header}")
            for lineno, row in enumerate(reader, 2):
                if limit is not None and len(rows) >= limit:
                    break
                if len(row) < len(header):
                    out.skipped.append(f"{f}:{lineno}: expected {len(header)} tab-separated fields, got {len(row)}")
                    continue
                rows.append((f, lineno, {k: row[header.index(k)] for k in need}))
    tables = _render_all([root / r["context"] for _, _, r in rows], cache, ",", out, "WTQ")
    for f, lineno, r in rows:
        img = tables[root / r["context"]]
        if isinstance(img, DataError):
            out.skipped.append(f"{f}:{lineno}: {img}")
            continue
        _count_answer(out, img, r["targetValue"].split("|"))
        out.examples.append(
            Example(
                id=r["id"],
                question=r["utterance"],
                answer=r["targetValue"],
                metric="wtq",
                layout=img.layout,
                image_path=img.path,
                family="wtq",
                split=f.stem,
                style="table",
                meta={"table": r["context"]},
            )
        )
    return out


def load_tabfact(root: Path, cache: Path, limit: int | None = None) -> Loaded:
    files = sorted(root.glob("*.json"))
    if not files:
        raise DataError(f"{root}: no TabFact statement *.json files")
    out = Loaded([])
    entries, n = [], 0  # the tables the first `limit` statements need
    for f in files:
        for table_id, entry in read_json(f, dict, "{table_id: [statements, labels, caption]}").items():
            if limit is not None and n >= limit:
                break
            entries.append((f, table_id, entry))
            n += len(entry[0]) if isinstance(entry, list) and entry and isinstance(entry[0], list) else 0
    tables = _render_all([root / "all_csv" / tid for _, tid, _ in entries], cache, "#", out, "TabFact")
    for f, table_id, entry in entries:
        try:
            statements, labels, caption = entry
            if len(statements) != len(labels):
                raise DataError(f"{len(statements)} statements but {len(labels)} labels")
            img = tables[root / "all_csv" / table_id]
            if isinstance(img, DataError):
                raise img
        except (DataError, ValueError, TypeError) as e:
            out.skipped.append(f"{f}: table {table_id!r}: {e}")
            continue
        for k, (st, lab) in enumerate(zip(statements, labels, strict=True)):
            if out.full(limit):
                return out
            out.examples.append(
                Example(
                    id=f"{table_id}#{k}",
                    question=f"True or false: {st}",
                    answer="true" if lab == 1 else "false",
                    metric="boolean",
                    layout=img.layout,
                    image_path=img.path,
                    family="tabfact",
                    split=f.stem,
                    style="table",
                    meta={"caption": caption, "table": table_id},
                )
            )
    return out
