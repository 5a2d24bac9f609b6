"""Render a real table (WTQ / TabFact CSV) to an image, keeping every cell's box, so the
row / column tools act on real tables exactly as on the world's."""

from __future__ import annotations

from functools import cache

from PIL import Image, ImageDraw, ImageFont

from iapo.tools.layout import Layout

CELL_H = 28  # one merged vision token high
CHAR_W = 8
PAD = 6
MAX_CHARS = 24


@cache
def _font() -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=13)


def _unique(names: list[str]) -> list[str]:
    """Tools address columns / rows by name: duplicates get ` (2)`, ` (3)` ... suffixes."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        n = n.strip() or "(empty)"
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
    return out


def render_table(header: list[str], rows: list[list[str]], max_rows: int = 40) -> tuple[Image.Image, Layout]:
    """White table with grid lines; header row bold-ish; boxes normalised to [0, 1]."""
    rows = [list(r) + [""] * (len(header) - len(r)) for r in rows[:max_rows]]
    cols = _unique(header)
    starters = _unique([r[0] if r else "" for r in rows])
    cells = [[c[:MAX_CHARS] for c in header]] + [[c[:MAX_CHARS] for c in r[: len(header)]] for r in rows]
    widths = [max(len(r[j]) for r in cells) * CHAR_W + 2 * PAD for j in range(len(header))]
    xs = [0]
    for w in widths:
        xs.append(xs[-1] + w)
    W, H = xs[-1], CELL_H * len(cells)
    im = Image.new("RGB", (W, H), (255, 255, 255))
    d = ImageDraw.Draw(im)
    for i, r in enumerate(cells):
        for j, text in enumerate(r):
            d.rectangle((xs[j], i * CELL_H, xs[j + 1] - 1, (i + 1) * CELL_H - 1), outline=(190, 190, 190))
            d.text((xs[j] + PAD, i * CELL_H + CELL_H // 2), text, fill=(0, 0, 0), font=_font(), anchor="lm",
                   stroke_width=1 if i == 0 else 0, stroke_fill=(0, 0, 0))  # fmt: skip
    layout = Layout(
        kind="table",
        columns_bbox={c: (xs[j] / W, 0.0, xs[j + 1] / W, 1.0) for j, c in enumerate(cols)},
        rows_bbox={s: (0.0, (i + 1) * CELL_H / H, 1.0, (i + 2) * CELL_H / H) for i, s in enumerate(starters)},
        row_starters_bbox=(0.0, 0.0, xs[1] / W, 1.0),
    )
    return im, layout
