"""A world image as a grid of tokens: rendering it, and what each token shows after tool edits.

`TokenGrid` is the exact description of an image at the resolution of merged vision tokens.
`render` turns it into pixels; `TokenGrid.apply` interprets the same tool primitives the pixel
tools use (`iapo.tools.ops`), so the dense per-token labels of every tool output are known exactly
(the vision pretraining stage needs them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from iapo.tools.layout import Box
from iapo.tools.ops import Crop, Fill, Op, Outline, Tint
from iapo.world.glyphs import EMPHASIS_CLASSES, EMPTY, GRID_RGB, LABEL_ID, MASKED, TOKEN, tile


@dataclass
class TokenGrid:
    """labels: (H, W) token labels; emphasis: (H, W) how many highlights / drawn boxes cover each
    token (the same count `iapo.tools.session.UnitState` ranks salience by)."""

    labels: np.ndarray  # (H, W) object array of label strings
    emphasis: np.ndarray  # (H, W) uint8

    @classmethod
    def from_rows(cls, rows: list[list[str]]) -> TokenGrid:
        labels = np.array(rows, dtype=object)
        return cls(labels, np.zeros(labels.shape, dtype=np.uint8))

    @property
    def shape(self) -> tuple[int, int]:
        return self.labels.shape  # type: ignore[return-value]

    def token_slice(self, box: Box) -> tuple[slice, slice]:
        """Rows/cols of the tokens a normalised box covers (world boxes are token aligned)."""
        h, w = self.shape
        return slice(round(box[1] * h), round(box[3] * h)), slice(round(box[0] * w), round(box[2] * w))

    def apply(self, ops: list[Op]) -> TokenGrid:
        labels, emphasis = self.labels.copy(), self.emphasis.copy()
        for op in ops:
            h, w = labels.shape
            ys = slice(round(op.box[1] * h), round(op.box[3] * h))
            xs = slice(round(op.box[0] * w), round(op.box[2] * w))
            if isinstance(op, Crop):
                labels, emphasis = labels[ys, xs], emphasis[ys, xs]
            elif isinstance(op, Fill):
                labels[ys, xs] = MASKED
                emphasis[ys, xs] = 0
            elif isinstance(op, Tint | Outline):
                emphasis[ys, xs] += 1
        return TokenGrid(labels, emphasis)

    def label_ids(self) -> np.ndarray:
        """(H, W) int64 class ids for the vision pretraining head."""
        return np.vectorize(LABEL_ID.__getitem__, otypes=[np.int64])(self.labels)

    def emphasis_ids(self) -> np.ndarray:
        """(H, W) int64 emphasis level, capped at EMPHASIS_CLASSES - 1."""
        return np.minimum(self.emphasis, EMPHASIS_CLASSES - 1).astype(np.int64)

    def rows(self) -> list[list[str]]:
        return [list(r) for r in self.labels]


def render(
    rows: list[list[str]], orientation: str = "v", grid_lines: tuple[int, int, int, int] | None = None
) -> Image.Image:
    """Pixels of a token grid. `grid_lines` = token rect (r0, c0, r1, c1) that gets table rules."""
    h, w = len(rows), len(rows[0])
    img = np.full((h * TOKEN, w * TOKEN, 3), 255, dtype=np.uint8)
    for r, row in enumerate(rows):
        for c, label in enumerate(row):
            if label != EMPTY:
                img[r * TOKEN : (r + 1) * TOKEN, c * TOKEN : (c + 1) * TOKEN] = tile(label, orientation)
    if grid_lines is not None:
        r0, c0, r1, c1 = grid_lines
        for r in range(r0, r1 + 1):  # rules on token boundaries, which no tool inset covers
            y = min(r * TOKEN, h * TOKEN - 1)
            img[y, c0 * TOKEN : c1 * TOKEN] = GRID_RGB
        for c in range(c0, c1 + 1):
            x = min(c * TOKEN, w * TOKEN - 1)
            img[r0 * TOKEN : r1 * TOKEN, x] = GRID_RGB
    return Image.fromarray(img)


def token_box(r0: int, c0: int, r1: int, c1: int, h: int, w: int) -> Box:
    """Normalised box of the token rectangle rows r0..r1-1, cols c0..c1-1 in an (h, w) grid."""
    return (c0 / w, r0 / h, c1 / w, r1 / h)
