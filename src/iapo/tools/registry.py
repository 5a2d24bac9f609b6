"""The tool family: ReFocus / VTool-R1 focus tools plus `draw_box` and `crop`.

Names and argument names follow ReFocus (arXiv 2501.05452) so its users can bring their data:
`focus_on_{columns,rows}_with_{mask,draw,highlight}` for tables and
`focus_on_{x,y}_values_with_{mask,draw,highlight}` for charts. Each tool is a pure function
`(image, layout, arguments) -> (image, layout)` compiled from `iapo.tools.ops` primitives, with a
JSON schema that goes into the prompt.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from iapo.errors import ToolError
from iapo.tools.layout import Box, ImageKind, Layout, box_intersection, box_union
from iapo.tools.ops import Crop, Fill, Op, Outline, Tint, ToolStyle, apply_ops

MAX_LIST_ITEMS = 32
MAX_STRING_CHARS = 64


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    kinds: tuple[ImageKind, ...]
    params: dict[str, str]  # argument name -> description; every argument is a list of strings
    required: tuple[str, ...]
    compile: Callable[[dict[str, list[str]], Layout], list[Op]]

    def schema(self) -> dict:
        """OpenAI / Qwen function-calling schema of this tool."""
        props = {p: {"type": "array", "items": {"type": "string"}, "description": d} for p, d in self.params.items()}
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": {"type": "object", "properties": props, "required": list(self.required)},
            },
        }


# ---------------------------------------------------------------------------------------------
# compilers: arguments + layout -> primitives. Arguments were validated against the layout.
# ---------------------------------------------------------------------------------------------


def _mask_others(region: str, key: str) -> Callable[[dict[str, list[str]], Layout], list[Op]]:
    def compile_(args: dict[str, list[str]], layout: Layout) -> list[Op]:
        keep = set(args[key])
        return [Fill(b) for name, b in getattr(layout, region).items() if name not in keep]

    return compile_


def _mark(region: str, key: str, op: type[Tint] | type[Outline]) -> Callable[..., list[Op]]:
    def compile_(args: dict[str, list[str]], layout: Layout) -> list[Op]:
        boxes = getattr(layout, region)
        return [op(boxes[name]) for name in dict.fromkeys(args[key])]

    return compile_


def _selected_boxes(args: dict[str, list[str]], layout: Layout) -> list[Box]:
    """Cells rows x columns for tables (a missing list means all), named values for charts."""
    if layout.kind == "table":
        rows = args.get("rows") or list(layout.rows_bbox)
        cols = args.get("columns") or list(layout.columns_bbox)
        return [
            box_intersection(layout.rows_bbox[r], layout.columns_bbox[c])
            for r in dict.fromkeys(rows)
            for c in dict.fromkeys(cols)
        ]
    values = {**layout.x_values_bbox, **layout.y_values_bbox}
    return [values[v] for v in dict.fromkeys(args["values"])]


def _draw_box(args: dict[str, list[str]], layout: Layout) -> list[Op]:
    return [Outline(b) for b in _selected_boxes(args, layout)]


def _crop(args: dict[str, list[str]], layout: Layout) -> list[Op]:
    return [Crop(box_union(_selected_boxes(args, layout)))]


def _focus_tools() -> list[Tool]:
    tools = []
    how = {
        "mask": "masks out every other {what}",
        "draw": "draws a red box around each given {what}",
        "highlight": "adds a translucent red highlight over each given {what}",
    }
    targets = [
        ("columns", "table", "columns_bbox", "columns", "column", "column headers to focus on"),
        ("rows", "table", "rows_bbox", "rows", "row", "row starters (first cell of the row) to focus on"),
        ("x_values", "chart", "x_values_bbox", "x_values", "x value", "x-axis values to focus on"),
        ("y_values", "chart", "y_values_bbox", "y_values", "y value", "y-axis values to focus on"),
    ]
    for target, kind, region, key, what, pdesc in targets:
        for style in ("mask", "draw", "highlight"):
            if style == "mask":
                fn = _mask_others(region, key)
            else:
                fn = _mark(region, key, Outline if style == "draw" else Tint)
            tools.append(
                Tool(
                    name=f"focus_on_{target}_with_{style}",
                    description=f"Focus on some {what}s: {how[style].format(what=what)}.",
                    kinds=(kind,),  # type: ignore[arg-type]
                    params={key: pdesc},
                    required=(key,),
                    compile=fn,
                )
            )
    return tools


CELL_PARAMS = {
    "rows": "table row starters (optional)",
    "columns": "table column headers (optional)",
    "values": "chart x or y values",
}
TOOLS: dict[str, Tool] = {t.name: t for t in _focus_tools()}
TOOLS["draw_box"] = Tool(
    name="draw_box",
    description="Draw a red box around cells (table: rows x columns, a missing list means all) or around chart values.",
    kinds=("table", "chart"),
    params=CELL_PARAMS,
    required=(),
    compile=_draw_box,
)
TOOLS["crop"] = Tool(
    name="crop",
    description="Crop the image to the smallest rectangle holding the given cells (table: rows x columns, a "
    "missing list means all) or chart values.",
    kinds=("table", "chart"),
    params=CELL_PARAMS,
    required=(),
    compile=_crop,
)


def tools_for(kind: ImageKind, layout: Layout | None = None) -> list[Tool]:
    """The tools that apply to an image kind; for charts, only the axis the layout has."""
    out = []
    for t in TOOLS.values():
        if kind not in t.kinds:
            continue
        if layout is not None and kind == "chart":
            if t.name.startswith("focus_on_x_values") and not layout.x_values_bbox:
                continue
            if t.name.startswith("focus_on_y_values") and not layout.y_values_bbox:
                continue
        out.append(t)
    return out


def tool_spec(kind: ImageKind, layout: Layout | None = None) -> list[dict]:
    """The JSON schemas of the tools for one image kind, for the prompt."""
    specs = []
    for t in tools_for(kind, layout):
        s = t.schema()
        if t.name in ("draw_box", "crop"):  # show only the arguments that apply to this kind
            keep = ("rows", "columns") if kind == "table" else ("values",)
            props = s["function"]["parameters"]["properties"]
            s["function"]["parameters"]["properties"] = {k: v for k, v in props.items() if k in keep}
            s["function"]["parameters"]["required"] = [] if kind == "table" else ["values"]
        specs.append(s)
    return specs


def render_tool_spec(kind: ImageKind, layout: Layout | None = None, style: str = "compact") -> str:
    """Tool spec as prompt text: full JSON schemas (`json`, for real models) or one signature per
    line (`compact`, the default for tiny models, whose context and compute are small)."""
    specs = tool_spec(kind, layout)
    if style == "json":
        return "\n".join(json.dumps(s, separators=(",", ":")) for s in specs)
    lines = []
    for s in specs:
        f = s["function"]
        lines.append(f"{f['name']}({', '.join(f['parameters']['properties'])})")
    return "\n".join(lines)


def validate_arguments(name: str, arguments: object, layout: Layout) -> dict[str, list[str]]:
    """Check a call against its schema and the layout; return normalised arguments.

    Raises ToolError with a message a model (or a user) can act on. Never evaluates anything.
    """
    if name not in TOOLS:
        raise ToolError(f"unknown tool {name[:MAX_STRING_CHARS]!r}")
    tool = TOOLS[name]
    if layout.kind not in tool.kinds:
        raise ToolError(f"{name} does not apply to a {layout.kind}")
    if not isinstance(arguments, dict):
        raise ToolError(f"arguments of {name} must be an object, got {type(arguments).__name__}")
    allowed = set(tool.params)
    if name in ("draw_box", "crop"):
        allowed = {"rows", "columns"} if layout.kind == "table" else {"values"}
    unknown = [k for k in arguments if k not in allowed]
    if unknown:
        raise ToolError(f"{name} got unknown argument {str(unknown[0])[:MAX_STRING_CHARS]!r}")
    out: dict[str, list[str]] = {}
    for key, value in arguments.items():
        if isinstance(value, str):  # a lone string is the common slip; accept it as a one-item list
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ToolError(f"{name}.{key} must be a list of strings")
        if len(value) > MAX_LIST_ITEMS or any(len(v) > MAX_STRING_CHARS for v in value):
            raise ToolError(f"{name}.{key} is too long")
        if not value:
            raise ToolError(f"{name}.{key} is empty")
        out[key] = value
    for key in tool.required:
        if key not in out:
            raise ToolError(f"{name} needs argument {key!r}")
    if name in ("draw_box", "crop") and layout.kind == "chart" and "values" not in out:
        raise ToolError(f"{name} needs argument 'values' on a chart")
    _check_names(name, out, layout)
    return out


def _check_names(name: str, args: dict[str, list[str]], layout: Layout) -> None:
    regions = layout.named_regions()
    for key, names in args.items():
        region = regions[key]
        if not region:
            raise ToolError(f"{name}: this image has no {key.replace('_', ' ')}")
        for n in names:
            if n not in region:
                known = ", ".join(list(region)[:12])
                raise ToolError(f"{name}: {n[:MAX_STRING_CHARS]!r} is not one of the {key} in the image ({known})")


def compile_call(name: str, arguments: dict[str, list[str]], layout: Layout) -> list[Op]:
    """Primitives of a validated call."""
    return TOOLS[name].compile(arguments, layout)


def layout_after(ops: list[Op], layout: Layout) -> Layout:
    for op in ops:
        if isinstance(op, Crop):
            layout = layout.crop(op.box)
    return layout


def run_tool(
    image: Image.Image, layout: Layout, name: str, arguments: object, style: ToolStyle | None = None
) -> tuple[Image.Image, Layout]:
    """Validate and execute one call: `(image, layout) -> (new image, new layout)`.

    Pure: the input image is not modified. Raises ToolError for an invalid call.
    """
    args = validate_arguments(name, arguments, layout)
    ops = compile_call(name, args, layout)
    return apply_ops(image, ops, style), layout_after(ops, layout)


__all__ = [
    "MAX_LIST_ITEMS",
    "MAX_STRING_CHARS",
    "TOOLS",
    "Fill",
    "Tool",
    "compile_call",
    "layout_after",
    "render_tool_spec",
    "run_tool",
    "tool_spec",
    "tools_for",
    "validate_arguments",
]
