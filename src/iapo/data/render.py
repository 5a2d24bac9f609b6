"""Render a real table (WTQ / TabFact CSV) to an image without losing evidence, keeping every
cell's box, so the row / column tools act on real tables exactly as on the world's.

Every row and every character is drawn: a column is as wide as its longest line, and a cell
longer than `max_cell_px` wraps onto several lines inside its cell (a row is as tall as its
tallest cell, in whole 28-px merged vision tokens). Text is set in DejaVu Sans (matplotlib ships
it); a character it lacks is drawn with the first fallback font that has it: Noto Sans CJK when
the `fonts` extra is installed (`pip install iapo[fonts]`), else a CJK or Unifont font of the
system. Characters no font can draw are counted per table (`RenderedTable.missing`) and
reported by the loaders, never silently drawn as boxes. `RenderedTable.cells` keeps each
cell's text and box in pixels, so a loader can say which cells a question's answer lies in and
whether they are fully visible.

Hand-written (PIL): the drawing is a few lines and must return exact boxes; no table-to-image
library does both.
"""

from __future__ import annotations

import os
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import cache

from PIL import Image, ImageDraw, ImageFont

from iapo.tools.layout import Layout

RENDERER = "2"  # part of the cache key of rendered tables: bump when the drawing changes
ROW_UNIT = 28  # one merged vision token: row heights are whole multiples of it
FONT_PX = 13
LINE_H = 17  # baseline-to-baseline distance of wrapped lines
PAD = 6  # left / right of a cell's text
PAD_Y = 5  # above and below: one line fits a 28-px row
MAX_CELL_PX = 320  # wider text wraps


def font_path(bold: bool = False) -> str:
    import matplotlib

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return os.path.join(matplotlib.get_data_path(), "fonts", "ttf", name)


FALLBACK_NAMES = ("notosanscjk", "notoserifcjk", "wqy", "droidsansfallback", "unifont")


@cache
def fallback_paths() -> tuple[str, ...]:
    """Fonts tried, in order, for characters DejaVu Sans lacks: the `fonts` extra's Noto Sans
    CJK, then matching system fonts."""
    import importlib.util

    out = []
    spec = importlib.util.find_spec("cvttf_NotoSansCJK_Regular")
    if spec is not None and spec.origin:
        out.append(os.path.join(os.path.dirname(spec.origin), "NotoSansCJKtc-Regular.otf"))
    from matplotlib import font_manager

    system = sorted(font_manager.findSystemFonts())
    out += [f for f in system if any(n in os.path.basename(f).lower().replace(" ", "") for n in FALLBACK_NAMES)]
    return tuple(p for p in out if os.path.exists(p) and not p.lower().endswith(".ttc"))


@cache
def _font_file(path: str) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, FONT_PX)


@cache
def _cmap_of(path: str) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    return frozenset(TTFont(path, lazy=True).getBestCmap())


def font(bold: bool = False) -> ImageFont.FreeTypeFont:
    return _font_file(font_path(bold))


@cache
def _font_for(ch: str, bold: bool) -> str | None:
    """The first font (primary, then fallbacks) with a glyph for `ch`; None if none has one."""
    code = ord(ch)
    for path in (font_path(bold), *fallback_paths()):
        if code in _cmap_of(path):
            return path
    return None


def runs(text: str, bold: bool = False) -> list[tuple[str, str]]:
    """`text` split into (font path, substring) runs; spaces and undrawable characters stay with
    the current run's font (an undrawable character is counted by `missing_glyphs`)."""
    out: list[tuple[str, str]] = []
    for ch in text:
        path = None if ch.isspace() else _font_for(ch, bold)
        path = path or (out[-1][0] if out else font_path(bold))
        if out and out[-1][0] == path:
            out[-1] = (path, out[-1][1] + ch)
        else:
            out.append((path, ch))
    return out


def text_length(text: str, bold: bool = False) -> float:
    return sum(_font_file(p).getlength(t) for p, t in runs(text, bold))


def text_bbox(text: str, origin: tuple[int, int], bold: bool = False) -> tuple[float, float, float, float]:
    """Ink box of `text` drawn at `origin` (left, baseline)."""
    x, y = origin
    boxes = []
    for p, t in runs(text, bold):
        f = _font_file(p)
        b = f.getbbox(t, anchor="ls")
        boxes.append((x + b[0], y + b[1], x + b[2], y + b[3]))
        x += f.getlength(t)
    if not boxes:
        return (x, y, x, y)
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def draw_text(d: ImageDraw.ImageDraw, origin: tuple[int, int], text: str, bold: bool = False) -> None:
    x, y = origin
    for p, t in runs(text, bold):
        d.text((x, y), t, fill=(0, 0, 0), font=_font_file(p), anchor="ls")
        x += _font_file(p).getlength(t)


def missing_glyphs(text: str, bold: bool = False) -> list[str]:
    """Characters of `text` no font can draw (spaces and controls excluded)."""
    return [c for c in text if not c.isspace() and unicodedata.category(c)[0] != "C" and _font_for(c, bold) is None]


def wrap(text: str, width: float, bold: bool = False) -> list[str]:
    """Greedy word wrap to `width` pixels; a word wider than that is broken between characters.
    The lines joined with single spaces give back the text's words (no character is dropped)."""
    lines: list[str] = []
    cur = ""
    for word in text.split():
        trial = f"{cur} {word}" if cur else word
        if text_length(trial, bold) <= width:
            cur = trial
            continue
        if cur:
            lines.append(cur)
        while text_length(word, bold) > width:  # an overlong word: cut after the last character that fits
            k = max([i for i in range(1, len(word)) if text_length(word[:i], bold) <= width] or [1])
            lines.append(word[:k])
            word = word[k:]
        cur = word
    if cur or not lines:
        lines.append(cur)
    return lines


@dataclass
class Cell:
    text: str
    lines: list[str]
    box: tuple[int, int, int, int]  # pixels: x0, y0, x1, y1 (the cell's outline)
    header: bool = False


@dataclass
class RenderedTable:
    image: Image.Image
    layout: Layout
    cells: list[list[Cell]]  # [0] is the header row
    missing: Counter = field(default_factory=Counter)  # character -> count of undrawable occurrences

    def fully_visible(self, cell: Cell) -> bool:
        """Every character drawn (no missing glyph) and every line's ink inside the cell's box."""
        if missing_glyphs(cell.text, cell.header):
            return False
        x0, y0, x1, y1 = cell.box
        for i, line in enumerate(cell.lines):
            bx0, by0, bx1, by1 = text_bbox(line, text_origin(cell, i), cell.header)
            if not (x0 <= bx0 and bx1 <= x1 and y0 <= by0 and by1 <= y1):
                return False
        return True


def text_origin(cell: Cell, i: int) -> tuple[int, int]:
    """Where line i of a cell is drawn (left edge, baseline), lines centred vertically."""
    x0, y0, _, y1 = cell.box
    block = len(cell.lines) * LINE_H
    top = y0 + (y1 - y0 - block) // 2
    return x0 + PAD, top + i * LINE_H + FONT_PX


def _unique(names: list[str]) -> list[str]:
    """Tools address columns / rows by name: duplicates get ` (2)`, ` (3)` ... suffixes."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        n = n.strip() or "(empty)"
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
    return out


def render_table(header: list[str], rows: list[list[str]], max_cell_px: int = MAX_CELL_PX) -> RenderedTable:
    """White table with grid lines, bold header; every row and character; boxes in [0, 1]."""
    ncol = len(header)
    texts = [list(header)] + [(list(r) + [""] * ncol)[:ncol] for r in rows]
    wrapped = [[wrap(t, max_cell_px, i == 0) for t in r] for i, r in enumerate(texts)]  # (rows + 1, ncol) lines
    widths = [
        int(max(text_length(line, i == 0) for i, r in enumerate(wrapped) for line in r[j])) + 2 * PAD + 2
        for j in range(ncol)
    ]
    heights = [
        -(-(max(len(c) for c in r) * LINE_H + 2 * PAD_Y) // ROW_UNIT) * ROW_UNIT for r in wrapped
    ]  # whole tokens
    xs, ys = [0], [0]
    for w in widths:
        xs.append(xs[-1] + w)
    for h in heights:
        ys.append(ys[-1] + h)
    W, H = xs[-1], ys[-1]
    im = Image.new("RGB", (W, H), (255, 255, 255))
    d = ImageDraw.Draw(im)
    cells: list[list[Cell]] = []
    missing: Counter = Counter()
    for i, r in enumerate(texts):
        row = []
        for j, t in enumerate(r):
            cell = Cell(t, wrapped[i][j], (xs[j], ys[i], xs[j + 1], ys[i + 1]), header=i == 0)
            d.rectangle((xs[j], ys[i], xs[j + 1] - 1, ys[i + 1] - 1), outline=(190, 190, 190))
            for k, line in enumerate(cell.lines):
                draw_text(d, text_origin(cell, k), line, i == 0)
            missing.update(missing_glyphs(t, i == 0))
            row.append(cell)
        cells.append(row)
    cols = _unique(header)
    starters = _unique([r[0] if r else "" for r in texts[1:]])
    layout = Layout(
        kind="table",
        columns_bbox={c: (xs[j] / W, 0.0, xs[j + 1] / W, 1.0) for j, c in enumerate(cols)},
        rows_bbox={s: (0.0, ys[i + 1] / H, 1.0, ys[i + 2] / H) for i, s in enumerate(starters)},
        row_starters_bbox=(0.0, 0.0, xs[1] / W, 1.0),
    )
    return RenderedTable(im, layout, cells, missing)


def size_policy(sizes: list[tuple[int, int]], max_pixels: int, legible_px: float = 8.0) -> dict:
    """What the model's processor will do to these images: Qwen2.5-VL downscales an image of
    more than `max_pixels` (its preprocessor config) by sqrt(max_pixels / (w * h)). Returns how
    many exceed it, the smallest scale, and how many end with text under `legible_px` pixels
    (13-px text scaled below that is hard to read for any model)."""
    scales = [min(1.0, (max_pixels / (w * h)) ** 0.5) for w, h in sizes]
    over = [s for s in scales if s < 1.0]
    return {
        "images": len(sizes),
        "max_pixels": max_pixels,
        "over_max_pixels": len(over),
        "min_scale": min(scales, default=1.0),
        "text_under_legible_px": sum(FONT_PX * s < legible_px for s in scales),
    }
