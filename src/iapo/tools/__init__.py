"""Visual tools: pure `image -> image` edits over boxes that come from the data.

- `layout`: the boxes (ReFocus vocabulary), `ops`: drawing primitives and their pixel interpreter,
- `registry`: the tools, their JSON schemas and validation,
- `syntax`: parsing and writing `<tool_call>` / `<answer>` turns (JSON only, never code),
- `session`: executing an episode's calls and classifying each (the misuse ground truth).
"""

from iapo.tools.layout import Box, Layout
from iapo.tools.ops import Crop, Fill, Op, Outline, Tint, ToolStyle, apply_ops
from iapo.tools.registry import TOOLS, compile_call, render_tool_spec, run_tool, tool_spec, validate_arguments
from iapo.tools.session import MISUSE_CLASSES, CallClass, CallResult, ToolSession, UnitState, judge, simulate
from iapo.tools.syntax import Turn, format_answer, format_tool_call, parse_turn

__all__ = [
    "MISUSE_CLASSES",
    "TOOLS",
    "Box",
    "CallClass",
    "CallResult",
    "Crop",
    "Fill",
    "Layout",
    "Op",
    "Outline",
    "Tint",
    "ToolSession",
    "ToolStyle",
    "Turn",
    "UnitState",
    "apply_ops",
    "compile_call",
    "format_answer",
    "format_tool_call",
    "judge",
    "parse_turn",
    "render_tool_spec",
    "run_tool",
    "simulate",
    "tool_spec",
    "validate_arguments",
]
