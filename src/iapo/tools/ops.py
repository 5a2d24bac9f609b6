"""Drawing primitives the tools are made of, and their pixel interpreter.

A tool call compiles to a short list of primitives over normalised boxes (`Fill` = mask,
`Tint` = highlight, `Outline` = draw, `Crop`). Keeping that list explicit lets two interpreters
agree by construction: this one edits pixels, and `iapo.world.scene` edits the per-token labels
of the same image, so the world knows exactly what a tool output shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageDraw

from iapo.tools.layout import Box, View


@dataclass(frozen=True)
class Fill:
    """Paint the box solid (masks what is under it)."""

    box: Box


@dataclass(frozen=True)
class Tint:
    """Blend a translucent colour over the box (highlight)."""

    box: Box


@dataclass(frozen=True)
class Outline:
    """Draw a rectangle around the box."""

    box: Box


@dataclass(frozen=True)
class Crop:
    """Keep only the box."""

    box: Box


Op = Fill | Tint | Outline | Crop


@dataclass(frozen=True)
class ToolStyle:
    """How the primitives look. ReFocus uses a white mask, red outline width 5 and a red
    highlight of alpha 50; the world default uses a grey mask so that "masked" and "empty" are
    distinguishable, and a thinner outline that leaves 28 px glyph cells readable."""

    mask_rgb: tuple[int, int, int] = (150, 150, 150)
    tint_rgba: tuple[int, int, int, int] = (255, 0, 0, 60)
    outline_rgb: tuple[int, int, int] = (255, 0, 0)
    outline_width: int = 2
    inset_px: int = 1


def _pixels(box: Box, w: int, h: int, inset: int) -> tuple[int, int, int, int]:
    x1 = round(box[0] * w) + inset
    y1 = round(box[1] * h) + inset
    x2 = round(box[2] * w) - 1 - inset
    y2 = round(box[3] * h) - 1 - inset
    return x1, y1, max(x1, x2), max(y1, y2)


def view_after(ops: list[Op], view: View) -> View:
    """The third interpreter of the primitives, after pixels (`apply_ops`) and token labels
    (`iapo.world.scene`): which part of the original image the output shows. A crop narrows the
    frame, a mask hides its box; a highlight or outline moves nothing.

    >>> v = view_after([Crop((0.5, 0.0, 1.0, 1.0)), Fill((0.0, 0.0, 0.5, 1.0))], View())
    >>> v.frame, v.masked
    ((0.5, 0.0, 1.0, 1.0), ((0.5, 0.0, 0.75, 1.0),))
    """
    for op in ops:
        if isinstance(op, Crop):
            view = View(view.to_original(op.box), view.masked)
        elif isinstance(op, Fill):
            view = View(view.frame, (*view.masked, view.to_original(op.box)))
    return view


def apply_ops(image: Image.Image, ops: list[Op], style: ToolStyle | None = None) -> Image.Image:
    """Return a new RGB image with `ops` applied in order; the input is never modified."""
    style = style or ToolStyle()
    out = image.convert("RGB")  # convert() copies, so the caller's image stays untouched
    for op in ops:
        w, h = out.size
        if isinstance(op, Crop):
            x1, y1 = round(op.box[0] * w), round(op.box[1] * h)
            x2, y2 = round(op.box[2] * w), round(op.box[3] * h)
            out = out.crop((x1, y1, max(x1 + 1, x2), max(y1 + 1, y2)))
        elif isinstance(op, Fill):
            ImageDraw.Draw(out).rectangle(_pixels(op.box, w, h, style.inset_px), fill=style.mask_rgb)
        elif isinstance(op, Tint):
            overlay = Image.new("RGBA", out.size, (0, 0, 0, 0))
            ImageDraw.Draw(overlay).rectangle(_pixels(op.box, w, h, style.inset_px), fill=style.tint_rgba)
            out = Image.alpha_composite(out.convert("RGBA"), overlay).convert("RGB")
        elif isinstance(op, Outline):
            ImageDraw.Draw(out).rectangle(
                _pixels(op.box, w, h, style.inset_px), outline=style.outline_rgb, width=style.outline_width
            )
        else:  # pragma: no cover - Op is a closed union
            raise TypeError(f"unknown op {op!r}")
    return out
