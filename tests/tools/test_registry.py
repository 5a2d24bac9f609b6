from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from iapo.errors import ToolError
from iapo.tools import TOOLS, Layout, render_tool_spec, run_tool, tool_spec
from iapo.tools.ops import ToolStyle

# a 4x4-token table: header row + 3 rows, row starters + 3 columns (boxes in token units / 4)
LAYOUT = Layout(
    kind="table",
    columns_bbox={c: (j / 4, 0.0, (j + 1) / 4, 1.0) for j, c in zip((1, 2, 3), "abc", strict=True)},
    rows_bbox={r: (0.0, i / 4, 1.0, (i + 1) / 4) for i, r in zip((1, 2, 3), "ABC", strict=True)},
    row_starters_bbox=(0.0, 0.0, 0.25, 1.0),
)
CHART = Layout(kind="chart", x_values_bbox={x: (j / 3, 0.0, (j + 1) / 3, 1.0) for j, x in enumerate("XYZ")})


def white(w: int = 112, h: int = 112) -> Image.Image:
    return Image.new("RGB", (w, h), (255, 255, 255))


def token(img: Image.Image, r: int, c: int) -> np.ndarray:
    a = np.asarray(img)
    return a[r * 28 + 4 : r * 28 + 24, c * 28 + 4 : c * 28 + 24]


def test_mask_columns_masks_exactly_the_other_columns():
    img = white()
    out, _ = run_tool(img, LAYOUT, "focus_on_columns_with_mask", {"columns": ["b"]})
    gray = ToolStyle().mask_rgb
    for r in range(4):
        assert (token(out, r, 1) == gray).all() and (token(out, r, 3) == gray).all()
        assert (token(out, r, 2) == 255).all()  # the kept column
        assert (token(out, r, 0) == 255).all()  # row starters are never masked by column tools
    assert (np.asarray(img) == 255).all(), "tools must not modify their input"


def test_mask_rows_keeps_header_row():
    out, _ = run_tool(white(), LAYOUT, "focus_on_rows_with_mask", {"rows": ["C"]})
    assert (token(out, 0, 2) == 255).all()
    assert (token(out, 1, 2) != 255).all() and (token(out, 2, 0) != 255).all()
    assert (token(out, 3, 2) == 255).all()


def test_highlight_and_draw_touch_only_their_region():
    hi, _ = run_tool(white(), LAYOUT, "focus_on_rows_with_highlight", {"rows": ["A"]})
    assert (token(hi, 1, 2) != 255).any() and (token(hi, 2, 2) == 255).all()
    dr, _ = run_tool(white(), LAYOUT, "draw_box", {"rows": ["B"], "columns": ["c"]})
    a = np.asarray(dr)
    assert (a[2 * 28 + 1, 3 * 28 + 5] == (255, 0, 0)).all()  # top edge of the box around cell B/c
    assert (token(dr, 1, 1) == 255).all()


def test_crop_returns_the_cells_and_reframes_layout():
    out, lay = run_tool(white(), LAYOUT, "crop", {"rows": ["A", "B"], "columns": ["c"]})
    assert out.size == (28, 56)
    assert list(lay.rows_bbox) == ["A", "B"] and list(lay.columns_bbox) == ["c"]
    assert lay.rows_bbox["A"] == pytest.approx((0.0, 0.0, 1.0, 0.5))


def test_chart_tools_and_wrong_kind():
    out, _ = run_tool(white(84, 84), CHART, "focus_on_x_values_with_mask", {"x_values": ["Y"]})
    assert (token(out, 1, 0) != 255).all() and (token(out, 1, 1) == 255).all()
    with pytest.raises(ToolError, match="does not apply to a chart"):
        run_tool(white(), CHART, "focus_on_rows_with_mask", {"rows": ["A"]})
    with pytest.raises(ToolError, match="no y values"):
        run_tool(white(), CHART, "focus_on_y_values_with_mask", {"y_values": ["A"]})


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("zoom", {}, "unknown tool 'zoom'"),
        ("focus_on_rows_with_mask", {"rows": ["Q"]}, "'Q' is not one of the rows"),
        ("focus_on_rows_with_mask", {}, "needs argument 'rows'"),
        ("focus_on_rows_with_mask", {"rows": [1]}, "must be a list of strings"),
        ("focus_on_rows_with_mask", {"rows": ["A"], "x": ["1"]}, "unknown argument 'x'"),
        ("focus_on_rows_with_mask", {"rows": ["A"] * 999}, "too long"),
        ("focus_on_rows_with_mask", ["A"], "must be an object"),
    ],
)
def test_invalid_calls_name_the_problem(name, args, message):
    with pytest.raises(ToolError, match=message):
        run_tool(white(), LAYOUT, name, args)


def test_tool_family_and_spec():
    names = set(TOOLS)
    for target in ("columns", "rows", "x_values", "y_values"):
        for style in ("mask", "draw", "highlight"):
            assert f"focus_on_{target}_with_{style}" in names
    assert {"draw_box", "crop"} <= names
    table = {s["function"]["name"] for s in tool_spec("table")}
    assert "focus_on_rows_with_mask" in table and "focus_on_x_values_with_mask" not in table
    spec = tool_spec("chart", CHART)
    assert all("y_values" not in s["function"]["name"] for s in spec)
    assert "crop(values)" in render_tool_spec("chart", CHART)
