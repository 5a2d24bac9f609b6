"""Procedural tables and charts, drawn on the token grid.

Tables: a header row of column letters (lower case), a column of row starters (upper case),
one digit per cell. Charts: vertical or horizontal bars, dot ("line") charts and grouped bars of
two or three series, each value printed as a digit at the end of its bar, as ChartQA's charts
with data labels do. Bar lengths are quantised to tokens (ceil(value / 3)), so the label, not
the length, carries the exact value.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from iapo.tools.layout import Layout
from iapo.world.glyphs import EMPTY
from iapo.world.scene import token_box

BAR_TOKENS = 3  # longest bar, in tokens


@dataclass
class Scene:
    """One image's content before rendering, plus the facts questions are asked about."""

    style: str  # table, v_bar, h_bar, line, grouped
    rows: list[list[str]]  # token labels
    layout: Layout
    orientation: str = "v"
    grid_lines: tuple[int, int, int, int] | None = None
    values: dict[str, int] = field(default_factory=dict)  # table "R/c" -> digit; chart "X" or "X:s"
    row_names: list[str] = field(default_factory=list)
    col_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    n_series: int = 1


def bar_length(v: int) -> int:
    return max(1, min(BAR_TOKENS, -(-v // 3)))


def make_table(rng: random.Random, n_rows: int, n_cols: int, upper: str, lower: str) -> Scene:
    row_names = rng.sample(upper, n_rows)
    col_names = rng.sample(lower, n_cols)
    h, w = n_rows + 1, n_cols + 1
    rows = [[EMPTY, *col_names]]
    values = {}
    for r in row_names:
        digits = [rng.randrange(10) for _ in col_names]
        rows.append([r, *(str(d) for d in digits)])
        values.update({f"{r}/{c}": d for c, d in zip(col_names, digits, strict=True)})
    layout = Layout(
        kind="table",
        columns_bbox={c: token_box(0, j + 1, h, j + 2, h, w) for j, c in enumerate(col_names)},
        rows_bbox={r: token_box(i + 1, 0, i + 2, w, h, w) for i, r in enumerate(row_names)},
        row_starters_bbox=token_box(0, 0, h, 1, h, w),
    )
    return Scene("table", rows, layout, "v", (0, 0, h, w), values, row_names, col_names)


def make_chart(rng: random.Random, style: str, n_cats: int, upper: str, n_series: int = 1) -> Scene:
    cats = rng.sample(upper, n_cats)
    if style == "grouped":
        values = {f"{x}:{s}": rng.randint(1, 9) for x in cats for s in range(n_series)}
    else:
        values = {x: rng.randint(1, 9) for x in cats}
        n_series = 1
    if style == "h_bar":
        return _h_bar(cats, values)
    return _v_chart(style, cats, values, n_series)


def _v_chart(style: str, cats: list[str], values: dict[str, int], n_series: int) -> Scene:
    h = BAR_TOKENS + 2  # value labels can sit one row above the longest bar; categories below
    group = n_series + 1 if style == "grouped" else 1
    w = len(cats) * group - (1 if style == "grouped" else 0)
    rows = [[EMPTY] * w for _ in range(h)]
    x_boxes = {}
    for j, x in enumerate(cats):
        c0 = j * group
        rows[h - 1][c0] = x
        for s in range(n_series):
            v = values[f"{x}:{s}"] if style == "grouped" else values[x]
            c, n = c0 + s, bar_length(v)
            top = h - 1 - n  # first row of the bar
            if style == "line":
                rows[top][c] = f"d{s}"
            else:
                for r in range(top, h - 1):
                    rows[r][c] = f"b{s}"
            rows[top - 1][c] = str(v)
        x_boxes[x] = token_box(0, c0, h, c0 + n_series, h, w)
    layout = Layout(kind="chart", x_values_bbox=x_boxes)
    return Scene(style, rows, layout, "v", None, values, categories=cats, n_series=n_series)


def _h_bar(cats: list[str], values: dict[str, int]) -> Scene:
    h, w = len(cats), BAR_TOKENS + 2
    rows = [[EMPTY] * w for _ in range(h)]
    for i, y in enumerate(cats):
        v = values[y]
        rows[i][0] = y
        n = bar_length(v)
        for c in range(1, n + 1):
            rows[i][c] = "b0"
        rows[i][n + 1] = str(v)
    layout = Layout(kind="chart", y_values_bbox={y: token_box(i, 0, i + 1, w, h, w) for i, y in enumerate(cats)})
    return Scene("h_bar", rows, layout, "h", None, values, categories=cats)
