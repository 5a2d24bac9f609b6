"""Token tiles: what one merged 28x28 vision token of a world image can show.

Every world image is a grid of tiles aligned with the 14x14 patches and the 2x2 merge of a
Qwen2.5-VL vision encoder, one glyph or bar segment per merged token (measured: glyphs at
arbitrary positions in free fonts were not learnable from scratch; grid-aligned ones are).
"""

from __future__ import annotations

from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

TOKEN = 28  # pixels per merged vision token: patch 14 x spatial merge 2

EMPTY, MASKED = ".", "#"
DIGITS = "0123456789"
# Confusable glyphs (I/l/1, O/o/0) are left out of the header alphabets.
UPPER = "ABCDEFGHJKLMNPQRSTUVWXYZ"
LOWER = "abcdefghjkmnpqrstuvwxyz"
SYMBOLS = "-"
GLYPHS = DIGITS + UPPER + LOWER + SYMBOLS
N_SERIES = 3
SERIES_RGB = [(31, 78, 160), (235, 140, 30), (40, 150, 70)]
SERIES_NAMES = ["blue", "orange", "green"]

# Every label a token can carry: empty, masked, a glyph, a bar segment or a dot of a series.
LABELS: list[str] = [EMPTY, MASKED, *GLYPHS] + [f"b{s}" for s in range(N_SERIES)] + [f"d{s}" for s in range(N_SERIES)]
LABEL_ID: dict[str, int] = {name: i for i, name in enumerate(LABELS)}
# Emphasis level of a token: how many highlights / drawn boxes cover it (0, 1, 2, 3+).
EMPHASIS_CLASSES = 4

GRID_RGB = (205, 205, 205)


@cache
def _font() -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=20)


@cache
def tile(label: str, orientation: str = "v") -> np.ndarray:
    """RGB tile (28, 28, 3) uint8 for a token label; bars depend on orientation ('v' or 'h')."""
    im = Image.new("RGB", (TOKEN, TOKEN), (255, 255, 255))
    d = ImageDraw.Draw(im)
    if label in (EMPTY, MASKED):
        pass  # masks are painted by the tool itself, over whatever was there
    elif label[0] == "b" and len(label) == 2:
        rgb = SERIES_RGB[int(label[1])]
        box = (5, 0, TOKEN - 6, TOKEN - 1) if orientation == "v" else (0, 5, TOKEN - 1, TOKEN - 6)
        d.rectangle(box, fill=rgb)
    elif label[0] == "d" and len(label) == 2:
        d.ellipse((7, 7, TOKEN - 8, TOKEN - 8), fill=SERIES_RGB[int(label[1])])
    elif len(label) == 1:
        d.text(
            (TOKEN // 2, TOKEN // 2),
            label,
            font=_font(),
            fill=(0, 0, 0),
            anchor="mm",
            stroke_width=1,
            stroke_fill=(0, 0, 0),
        )
    else:
        raise ValueError(f"unknown token label {label!r}")
    return np.asarray(im, dtype=np.uint8)
