"""Public benchmarks from local files in their official release layouts, as `Example`s.

- `wtq` (WikiTableQuestions): `DIR/*.tsv` with columns `id, utterance, context, targetValue`
  (several answers joined by `|`; `context` = `csv/20x-csv/N.csv`, relative to DIR), and the
  CSV tables. Metric: official denotation accuracy (`iapo.metrics.wtq`).
- `tabfact` (TabFact): `DIR/*.json` = `{table_id: [[statements], [labels 1/0], caption]}` and
  `DIR/all_csv/<table_id>` (cells separated by `#`, first row the header). Metric: accuracy on
  true/false.
- `chartqa` (ChartQA): `DIR/test_human.json` / `test_augmented.json` = list of
  `{imgname, query, label}`, images in `DIR/png/`. Metric: relaxed accuracy (5%). Its charts
  carry no boxes here, so the table/chart focus tools cannot apply: the episode offers no tools
  and answers directly (counted in `tools_unavailable`).

Tables are rendered to images with every cell's box kept (`iapo.data.render`), under
`cache/`, so row and column tools work on real tables. A malformed row or a missing table is
skipped with one message naming the file and row; the skipped count is reported.
CharXiv, TableVQA-Bench and the ReFocus `*_wbb.json` files are not implemented yet.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from iapo.data.example import Example
from iapo.data.render import render_table
from iapo.errors import DataError
from iapo.tools.layout import Layout

BENCHMARKS = ("wtq", "tabfact", "chartqa")


@dataclass
class Loaded:
    examples: list[Example]
    skipped: list[str] = field(default_factory=list)  # one message per skipped row
    tools_unavailable: int = 0


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
        try:
            data = json.loads(f.read_text())
        except json.JSONDecodeError as e:
            raise DataError(f"{f}: not JSON ({e})") from None
        if not isinstance(data, dict):
            raise DataError(f"{f}: expected {{table_id: [statements, labels, caption]}}")
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


def load_chartqa(root: Path, cache: Path, limit: int | None = None) -> Loaded:
    files = [p for p in (root / "test_human.json", root / "test_augmented.json") if p.exists()]
    if not files:
        raise DataError(f"{root}: no ChartQA test_human.json / test_augmented.json")
    out = Loaded([])
    for f in files:
        try:
            rows = json.loads(f.read_text())
        except json.JSONDecodeError as e:
            raise DataError(f"{f}: not JSON ({e})") from None
        for k, r in enumerate(rows):
            if limit is not None and len(out.examples) >= limit:
                return out
            if not isinstance(r, dict) or not {"imgname", "query", "label"} <= set(r):
                out.skipped.append(f"{f}: row {k}: needs imgname, query, label")
                continue
            img = root / "png" / str(r["imgname"])
            if not img.exists():
                out.skipped.append(f"{f}: row {k}: image {img} not found")
                continue
            out.examples.append(
                Example(
                    id=f"{f.stem}:{k}",
                    question=str(r["query"]),
                    answer=str(r["label"]),
                    metric="relaxed",
                    layout=Layout(kind="chart"),
                    image_path=str(img.resolve()),
                    family="chartqa",
                    split=f.stem,
                    style="chart",
                )
            )
            out.tools_unavailable += 1
    return out


LOADERS: dict[str, Callable[[Path, Path, int | None], Loaded]] = {
    "wtq": load_wtq,
    "tabfact": load_tabfact,
    "chartqa": load_chartqa,
}


def load_benchmark(name: str, root: Path, cache: Path, limit: int | None = None) -> Loaded:
    if name not in LOADERS:
        raise DataError(f"unknown benchmark {name!r}; available: {', '.join(LOADERS)}")
    if not root.is_dir():
        raise DataError(f"{root}: benchmark directory not found")
    return LOADERS[name](root, cache, limit)
