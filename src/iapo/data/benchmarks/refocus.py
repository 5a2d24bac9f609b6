"""The ReFocus data (Fu et al., 2025): benchmark subsets with the boxes our tools act on.

- `refocus` reads every `*_wbb.json` in DIR: `{id: row}` with `figure_path`, `query`, `answer`
  and, for tables (`tablevqa*_wbb.json`, `table-vwtq_syn_wbb.json`), `column_headers` +
  `columns_bbox`, `row_starters` + `rows_bbox`, `table_bbox`; for charts
  (`chartQA_{h_bar,v_bar}_wbb.json`), `x_values` + `x_bboxes`, `y_values` + `y_bboxes`,
  `figure_bbox`. Boxes are normalised `{x1, y1, x2, y2}`. `figure_path` is resolved against DIR,
  its parent, then `DIR/images/<file name>`.
- `chartqa_vcot` reads the training split `DIR/{train,val,test}.jsonl`: rows with `id`, `query`,
  `answer`, `x_values_bbox` / `y_values_bbox` (value -> box), `figure_bbox`, `images` (the first
  is the original chart), `focus_areas`, `conversations`. The focus areas become the row's reference tool path
  (`focus_path`), which SFT demonstrates and the exact-match baseline rewards.

Metrics: tables by subset (`vtabfact` or `fintabnet` in the file name -> that metric, else WTQ
denotation); charts: ChartQA relaxed accuracy. (ReFocus itself graded with GPT-4o.)
"""

from __future__ import annotations

from pathlib import Path

from iapo.data.benchmarks.common import Loaded, check_image, read_jsonl_rows
from iapo.data.example import Example
from iapo.errors import DataError
from iapo.store import read_json
from iapo.tools.layout import Box, Layout, as_box, box_area, box_intersection


def _named(names: list, boxes: list, what: str) -> dict[str, Box]:
    if len(names) != len(boxes):
        raise ValueError(f"{len(names)} {what} names but {len(boxes)} boxes")
    return {str(n): as_box(b) for n, b in zip(names, boxes, strict=True)}


def table_layout(row: dict) -> Layout:
    cols = _named(row.get("column_headers") or [], row.get("columns_bbox") or [], "column")
    rows = _named(row.get("row_starters") or [], row.get("rows_bbox") or [], "row")
    headers = list(cols)
    if rows and headers and next(iter(rows)) == headers[0]:  # the header row is never a tool target
        rows.pop(headers[0])
    first = cols[headers[0]] if headers else None
    return Layout(kind="table", columns_bbox=cols, rows_bbox=rows, row_starters_bbox=first)


def chart_layout(row: dict) -> Layout:
    if "x_values_bbox" in row or "y_values_bbox" in row:  # chartqa_vcot: already value -> box
        xs = {str(k): as_box(v) for k, v in (row.get("x_values_bbox") or {}).items()}
        ys = {str(k): as_box(v) for k, v in (row.get("y_values_bbox") or {}).items()}
    else:
        xs = _named(row.get("x_values") or [], row.get("x_bboxes") or [], "x value")
        ys = _named(row.get("y_values") or [], row.get("y_bboxes") or [], "y value")
    return Layout(kind="chart", x_values_bbox=xs, y_values_bbox=ys)


def focus_path(layout: Layout, focus_areas: list) -> list[dict]:
    """ReFocus's annotated focus boxes as one tool call: highlight the chart values whose boxes
    they overlap (the reference path of a chartqa_vcot row; [] when nothing overlaps)."""
    areas = [as_box(a) for a in focus_areas or []]
    for key, named in (("x_values", layout.x_values_bbox), ("y_values", layout.y_values_bbox)):
        hit = [v for v, b in named.items() if any(box_area(box_intersection(a, b)) > 0.5 * box_area(b) for a in areas)]
        if hit and len(hit) < len(named):
            return [{"name": f"focus_on_{key}_with_highlight", "arguments": {key: hit}}]
    return []


def _resolve(root: Path, fig: str) -> Path:
    for cand in (root / fig, root.parent / fig, root / "images" / Path(fig).name):
        if cand.exists():
            return cand
    return root / fig


def _table_metric(file: Path, row_id: str) -> str:
    key = f"{file.stem} {row_id}".lower()
    if "tabfact" in key:
        return "vtabfact"
    if "fintabnet" in key:
        return "fintabnetqa"
    return "vwtq"


def _example(root: Path, src: Path, key: str, row: dict, image: Path) -> Example:
    is_table = "column_headers" in row or "columns_bbox" in row
    layout = table_layout(row) if is_table else chart_layout(row)
    if not (layout.columns_bbox or layout.rows_bbox or layout.x_values_bbox or layout.y_values_bbox):
        raise ValueError("no boxes")
    path = [] if is_table else focus_path(layout, row.get("focus_areas"))
    return Example(
        id=f"{src.stem}:{key}",
        question=str(row["query"]),
        answer=str(row["answer"]),
        metric=_table_metric(src, str(key)) if is_table else "relaxed",
        layout=layout,
        image_path=str(image.resolve()),
        family="refocus_table" if is_table else "refocus_chart",
        split=src.stem,
        style="table"
        if is_table
        else ("h_bar" if "h_bar" in src.stem else "v_bar" if "v_bar" in src.stem else "chart"),
        meta={k: row[k] for k in ("focus_areas", "source") if k in row},
        valid_paths=[path] if path else [],
        reference_path=path,
    )


def load_refocus(root: Path, cache: Path, limit: int | None = None) -> Loaded:
    files = sorted(root.glob("*_wbb.json"))
    if not files:
        raise DataError(f"{root}: no ReFocus *_wbb.json files")
    out = Loaded([])
    for f in files:
        data = read_json(f, dict, "{id: row}")
        for key, row in data.items():
            if out.full(limit):
                return out
            try:
                image = _resolve(root, str(row["figure_path"]))
                if (why := check_image(image)) is not None:
                    raise ValueError(why)
                out.examples.append(_example(root, f, str(key), row, image))
            except (KeyError, ValueError, TypeError) as e:
                out.skipped.append(f"{f}: row {key!r}: {type(e).__name__}: {e}")
    return out


def load_chartqa_vcot(root: Path, cache: Path, limit: int | None = None) -> Loaded:
    files = [root / f"{s}.jsonl" for s in ("train", "val", "test") if (root / f"{s}.jsonl").exists()]
    if not files:
        raise DataError(f"{root}: no chartqa_vcot train/val/test.jsonl")
    out = Loaded([])
    for f in files:
        for lineno, row in read_jsonl_rows(f):
            if out.full(limit):
                return out
            try:
                if isinstance(row, str):
                    raise ValueError(row)
                image = _resolve(root, str(row["images"][0]))
                if (why := check_image(image)) is not None:
                    raise ValueError(why)
                out.examples.append(_example(root, f, str(row.get("id", lineno)), row, image))
            except (KeyError, IndexError, ValueError, TypeError) as e:
                out.skipped.append(f"{f}:{lineno}: {type(e).__name__}: {e}")
    return out
