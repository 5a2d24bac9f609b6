"""Where things are in an image: the bounding boxes the tools act on.

The boxes come from the data, never from the model (as in ReFocus's `*_wbb.json`): a table has a
box per column (header cell included) and per data row (row starter included), a chart has a box
per x value (vertical band) or per y value (horizontal band). Boxes are normalised
`(x1, y1, x2, y2)` in [0, 1], so they survive resizing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Box = tuple[float, float, float, float]
ImageKind = Literal["table", "chart"]


def box_area(b: Box) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def box_intersection(a: Box, b: Box) -> Box:
    return (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))


def box_union(boxes: list[Box]) -> Box:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def covers(region: Box, unit: Box, frac: float = 0.5) -> bool:
    """True if `region` covers at least `frac` of `unit`'s area."""
    area = box_area(unit)
    return area > 0 and box_area(box_intersection(region, unit)) >= frac * area


def reframe(b: Box, frame: Box) -> Box | None:
    """Express box `b` in the coordinates of sub-image `frame`; None if it falls outside."""
    inter = box_intersection(b, frame)
    if box_area(inter) <= 0:
        return None
    fw, fh = frame[2] - frame[0], frame[3] - frame[1]
    return (
        (inter[0] - frame[0]) / fw,
        (inter[1] - frame[1]) / fh,
        (inter[2] - frame[0]) / fw,
        (inter[3] - frame[1]) / fh,
    )


@dataclass(frozen=True)
class View:
    """Where an image's pixels come from in the episode's original image: `frame`, the box of
    the original it shows (a crop narrows it), and `masked`, the boxes of the original a mask has
    painted over. The original image is `View()`; a tool output's view is `ops.view_after`."""

    frame: Box = (0.0, 0.0, 1.0, 1.0)
    masked: tuple[Box, ...] = ()

    def to_original(self, b: Box) -> Box:
        """A box of this image in the original's coordinates."""
        x0, y0, x1, y1 = self.frame
        w, h = x1 - x0, y1 - y0
        return (x0 + b[0] * w, y0 + b[1] * h, x0 + b[2] * w, y0 + b[3] * h)

    def locate(self, x: float, y: float) -> tuple[float, float] | None:
        """The original's coordinates of point (x, y) of this image; None where it is masked.

        >>> v = View(frame=(0.5, 0.0, 1.0, 0.5), masked=((0.5, 0.0, 0.75, 0.5),))
        >>> v.locate(0.75, 0.5), v.locate(0.25, 0.5)
        ((0.875, 0.25), None)
        """
        x0, y0, x1, y1 = self.frame
        ox, oy = x0 + x * (x1 - x0), y0 + y * (y1 - y0)
        if any(m[0] <= ox < m[2] and m[1] <= oy < m[3] for m in self.masked):
            return None
        return ox, oy


@dataclass(frozen=True)
class Layout:
    """Named regions of one image, in ReFocus's vocabulary.

    Tables: `columns_bbox` (column header -> box of the whole column) and `rows_bbox` (row
    starter -> box of the whole data row; the header row is not listed, it is never masked).
    Charts: `x_values_bbox` (vertical bar charts) and/or `y_values_bbox` (horizontal ones).
    """

    kind: ImageKind
    columns_bbox: dict[str, Box] = field(default_factory=dict)
    rows_bbox: dict[str, Box] = field(default_factory=dict)
    x_values_bbox: dict[str, Box] = field(default_factory=dict)
    y_values_bbox: dict[str, Box] = field(default_factory=dict)
    row_starters_bbox: Box | None = None  # the column of row starters (tables), never masked by columns

    def units(self) -> dict[str, Box]:
        """The content units a question can need as evidence: table cells or chart values.

        Cells are named `"row/column"`; chart values by their label.
        """
        if self.kind == "table":
            return {
                f"{r}/{c}": box_intersection(rb, cb)
                for r, rb in self.rows_bbox.items()
                for c, cb in self.columns_bbox.items()
            }
        return {**self.x_values_bbox, **self.y_values_bbox}

    def named_regions(self) -> dict[str, dict[str, Box]]:
        """Argument name -> the boxes its names address (`values`: x or y values of a chart)."""
        return {
            "columns": self.columns_bbox,
            "rows": self.rows_bbox,
            "x_values": self.x_values_bbox,
            "y_values": self.y_values_bbox,
            "values": {**self.x_values_bbox, **self.y_values_bbox},
        }

    def context_units(self) -> dict[str, Box]:
        """Row-starter cells `"row/#"`: not evidence themselves, but an answer that names a row
        needs them visible next to its values."""
        if self.kind != "table" or self.row_starters_bbox is None:
            return {}
        return {f"{r}/#": box_intersection(rb, self.row_starters_bbox) for r, rb in self.rows_bbox.items()}

    def crop(self, frame: Box) -> Layout:
        """The layout of the sub-image `frame`; regions outside it disappear."""

        def sub(d: dict[str, Box]) -> dict[str, Box]:
            out = {}
            for k, b in d.items():
                r = reframe(b, frame)
                if r is not None and box_area(r) > 1e-6:
                    out[k] = r
            return out

        return Layout(
            kind=self.kind,
            columns_bbox=sub(self.columns_bbox),
            rows_bbox=sub(self.rows_bbox),
            x_values_bbox=sub(self.x_values_bbox),
            y_values_bbox=sub(self.y_values_bbox),
            row_starters_bbox=reframe(self.row_starters_bbox, frame) if self.row_starters_bbox else None,
        )

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "columns_bbox": {k: list(v) for k, v in self.columns_bbox.items()},
            "rows_bbox": {k: list(v) for k, v in self.rows_bbox.items()},
            "x_values_bbox": {k: list(v) for k, v in self.x_values_bbox.items()},
            "y_values_bbox": {k: list(v) for k, v in self.y_values_bbox.items()},
            "row_starters_bbox": list(self.row_starters_bbox) if self.row_starters_bbox else None,
        }

    @classmethod
    def from_json(cls, d: dict) -> Layout:
        def boxes(key: str) -> dict[str, Box]:
            return {str(k): as_box(v) for k, v in (d.get(key) or {}).items()}

        return cls(
            kind=d["kind"],
            columns_bbox=boxes("columns_bbox"),
            rows_bbox=boxes("rows_bbox"),
            x_values_bbox=boxes("x_values_bbox"),
            y_values_bbox=boxes("y_values_bbox"),
            row_starters_bbox=as_box(d["row_starters_bbox"]) if d.get("row_starters_bbox") else None,
        )


def as_box(v: object) -> Box:
    """Accept `[x1, y1, x2, y2]` or ReFocus's `{"x1":..., "y1":..., "x2":..., "y2":...}`."""
    if isinstance(v, dict):
        v = [v["x1"], v["y1"], v["x2"], v["y2"]]
    if not isinstance(v, list | tuple) or len(v) != 4:
        raise ValueError(f"a box must be 4 numbers or a dict with x1,y1,x2,y2, got {v!r}")
    x1, y1, x2, y2 = (float(t) for t in v)
    return (x1, y1, x2, y2)
