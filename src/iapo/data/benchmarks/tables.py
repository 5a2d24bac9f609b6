"""Table benchmarks from their official releases; tables are rendered to images with every
cell's box kept (`iapo.data.render`), so the row and column tools work on real tables.

- `wtq` (WikiTableQuestions): `DIR/*.tsv` (or `DIR/data/*.tsv`) with columns
  `id, utterance, context, targetValue` (several answers joined by `|`; `context` =
  `csv/20x-csv/N.csv`, relative to DIR) and the CSV tables. Metric: official denotation accuracy
  (`iapo.metrics.wtq`).
- `tabfact` (TabFact): `DIR/*.json` = `{table_id: [[statements], [labels 1/0], caption]}` and
  `DIR/all_csv/<table_id>` (cells separated by `#`, first row the header). Metric: accuracy on
  true/false.

Rendered images go under `cache/` (content-addressed). A malformed row or a missing table is
skipped with one message naming the file and row.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from iapo.data.benchmarks.common import Loaded, read_json
from iapo.data.example import Example
from iapo.data.render import render_table
from iapo.errors import DataError
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


def _table_image(table: Path, cache: Path, delimiter: str) -> tuple[str, Layout]:
    """Render once per table (content-addressed file name), reuse for its questions."""
    header, rows = _read_csv(table, delimiter)
    key = hashlib.sha1(str(table.resolve()).encode()).hexdigest()[:16]
    out = cache / f"{key}.png"
    im, layout = render_table(header, rows)
    if not out.exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp.png")
        im.save(tmp)
        tmp.replace(out)
    return str(out.resolve()), layout


def load_wtq(root: Path, cache: Path, limit: int | None = None) -> Loaded:
    files = sorted(root.glob("*.tsv")) + sorted((root / "data").glob("*.tsv"))
    if not files:
        raise DataError(f"{root}: no WTQ *.tsv question files (expected DIR/*.tsv or DIR/data/*.tsv)")
    out = Loaded([])
    tables: dict[Path, tuple[str, Layout]] = {}
    for f in files:
        with open(f, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(reader, None)
            need = ["id", "utterance", "context", "targetValue"]
            if header is None or any(k not in header for k in need):
                raise DataError(f"{f}: header must have columns {need}, got {header}")
            idx = {k: header.index(k) for k in need}
            for lineno, row in enumerate(reader, 2):
                if limit is not None and len(out.examples) >= limit:
                    return out
                try:
                    if len(row) < len(header):
                        raise DataError(f"expected {len(header)} tab-separated fields, got {len(row)}")
                    table = root / row[idx["context"]]
                    if table not in tables:
                        tables[table] = _table_image(table, cache, ",")
                    image, layout = tables[table]
                except DataError as e:
                    out.skipped.append(f"{f}:{lineno}: {e}")
                    continue
                out.examples.append(
                    Example(
                        id=row[idx["id"]],
                        question=row[idx["utterance"]],
                        answer=row[idx["targetValue"]],
                        metric="wtq",
                        layout=layout,
                        image_path=image,
                        family="wtq",
                        split=f.stem,
                        style="table",
                        meta={"table": row[idx["context"]]},
                    )
                )
    return out


def load_tabfact(root: Path, cache: Path, limit: int | None = None) -> Loaded:
    files = sorted(root.glob("*.json"))
    if not files:
        raise DataError(f"{root}: no TabFact statement *.json files")
    out = Loaded([])
    tables: dict[str, tuple[str, Layout]] = {}
    for f in files:
        data = read_json(f, dict, "{table_id: [statements, labels, caption]}")
        for table_id, entry in data.items():
            try:
                statements, labels, caption = entry
                if len(statements) != len(labels):
                    raise DataError(f"{len(statements)} statements but {len(labels)} labels")
                if table_id not in tables:
                    tables[table_id] = _table_image(root / "all_csv" / table_id, cache, "#")
                image, layout = tables[table_id]
            except (DataError, ValueError, TypeError) as e:
                out.skipped.append(f"{f}: table {table_id!r}: {e}")
                continue
            for k, (st, lab) in enumerate(zip(statements, labels, strict=True)):
                if limit is not None and len(out.examples) >= limit:
                    return out
                out.examples.append(
                    Example(
                        id=f"{table_id}#{k}",
                        question=f"True or false: {st}",
                        answer="true" if lab == 1 else "false",
                        metric="boolean",
                        layout=layout,
                        image_path=image,
                        family="tabfact",
                        split=f.stem,
                        style="table",
                        meta={"caption": caption, "table": table_id},
                    )
                )
    return out
