"""Real tables rendered without losing evidence: every row and character, text inside its box,
no undrawable glyph on the fixtures, answers visible, tools on the new boxes."""

from __future__ import annotations

import pytest
from PIL import ImageChops

from iapo.data.benchmarks import load_benchmark
from iapo.data.benchmarks.tables import _read_csv
from iapo.data.render import missing_glyphs, render_table, text_bbox, text_length, wrap
from iapo.tools.registry import run_tool


def _fixture_tables(shared_fixtures):
    for f in sorted((shared_fixtures / "wtq" / "csv").glob("*/*.csv")):
        yield f, _read_csv(f, ",")
    for f in sorted((shared_fixtures / "tabfact" / "all_csv").glob("*.csv")):
        yield f, _read_csv(f, "#")


def test_every_cell_is_drawn_whole_inside_its_box(shared_fixtures):
    """All rows, all characters (the wrapped lines give back the cell's words), and each line's
    ink (font metrics) inside the cell's box, which lies inside the row's and column's boxes."""
    n_cells = 0
    for f, (header, rows) in _fixture_tables(shared_fixtures):
        r = render_table(header, rows)
        assert len(r.cells) == len(rows) + 1, f
        W, H = r.image.size
        for i, row in enumerate(r.cells):
            for j, c in enumerate(row):
                assert " ".join(c.lines).split() == c.text.split(), (f, i, j)
                assert r.fully_visible(c), (f, i, j, c.text)
                col = list(r.layout.columns_bbox.values())[j]
                assert col[0] * W - 0.5 <= c.box[0] and c.box[2] <= col[2] * W + 0.5
                if i:
                    row_box = list(r.layout.rows_bbox.values())[i - 1]
                    assert row_box[1] * H - 0.5 <= c.box[1] and c.box[3] <= row_box[3] * H + 0.5
                n_cells += 1
    assert n_cells > 1000


def test_no_fixture_character_lacks_a_glyph(shared_fixtures):
    """Including the en dash of "2007 (May–October)" and the CJK titles of a WTQ table."""
    chars = set()
    for _, (header, rows) in _fixture_tables(shared_fixtures):
        chars.update(ch for t in [*header, *(c for r in rows for c in r)] for ch in t)
    assert "–" in chars and any(ord(c) > 0x3000 for c in chars)
    assert missing_glyphs("".join(sorted(chars))) == []
    assert missing_glyphs("".join(sorted(chars)), bold=True) == []


def test_undrawable_character_is_counted():
    r = render_table(["a"], [["x\U00013000y"]])  # an Egyptian hieroglyph: no font here has it
    assert r.missing == {"\U00013000": 1}
    assert not r.fully_visible(r.cells[1][0])


def test_long_cell_wraps_within_its_box():
    text = "a very long cell " * 12 + "Supercalifragilisticexpialidocious" * 4
    r = render_table(["h"], [[text], ["short"]], max_cell_px=120)
    c = r.cells[1][0]
    assert len(c.lines) > 5 and all(text_length(line) <= 120 for line in c.lines)
    assert r.fully_visible(c) and c.box[3] - c.box[1] > 28 * 4
    assert (c.box[3] - c.box[1]) % 28 == 0  # rows in whole merged vision tokens
    assert "".join("".join(c.lines).split()) == "".join(text.split())


def test_wrap_by_hand():
    assert wrap("", 100) == [""]
    assert wrap("ab cd", 10_000) == ["ab cd"]
    lines = wrap("ab cd", text_length("ab") + 1)
    assert lines == ["ab", "cd"]
    x0, y0, _, y1 = text_bbox("Ag", (10, 20))
    assert x0 >= 10 and y0 < 20 < y1  # ascender above, descender below the baseline


def test_every_answer_that_is_a_cell_is_visible(shared_fixtures, tmp_path):
    got = load_benchmark("wtq", shared_fixtures / "wtq", tmp_path)
    assert got.answer_cells >= 15 and got.answer_cells_visible == got.answer_cells
    assert got.missing_glyphs == {}
    again = load_benchmark("wtq", shared_fixtures / "wtq", tmp_path)  # from the cache: same result
    assert (again.answer_cells, again.answer_cells_visible) == (got.answer_cells, got.answer_cells_visible)
    assert [e.layout for e in again.examples] == [e.layout for e in got.examples]


def test_tools_act_on_the_new_boxes(shared_fixtures):
    header, rows = _read_csv(shared_fixtures / "wtq" / "csv" / "203-csv" / "543.csv", ",")
    r = render_table(header, rows)
    im, H = r.image, r.image.height
    masked, _ = run_tool(im, r.layout, "focus_on_columns_with_mask", {"columns": ["Show"]})
    show = r.cells[0][1].box
    inside = (show[0] + 2, 0, show[2] - 2, H)
    assert ImageChops.difference(masked.crop(inside), im.crop(inside)).getbbox() is None  # the kept column
    year = r.cells[1][0].box
    assert ImageChops.difference(masked.crop(year), im.crop(year)).getbbox() is not None  # a masked cell
    starter = rows[2][0]
    hl, _ = run_tool(im, r.layout, "focus_on_rows_with_highlight", {"rows": [starter]})
    box = r.cells[3][1].box
    assert ImageChops.difference(hl.crop(box), im.crop(box)).getbbox() is not None
    assert ImageChops.difference(hl.crop(r.cells[1][1].box), im.crop(r.cells[1][1].box)).getbbox() is None


@pytest.mark.parametrize("size", [(1000, 2000), (20, 20)])
def test_size_policy(size):
    from iapo.data.render import size_policy

    out = size_policy([size, (100, 100)], max_pixels=1_000_000)
    assert out["images"] == 2
    assert out["over_max_pixels"] == (1 if size[0] * size[1] > 1_000_000 else 0)
    if out["over_max_pixels"]:
        assert out["min_scale"] == pytest.approx((1_000_000 / 2_000_000) ** 0.5)
