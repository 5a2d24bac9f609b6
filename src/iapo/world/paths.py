"""All valid tool paths of a question, found by search over the tools' unit semantics.

A path is valid if, after it, the evidence is exactly what is salient and the context is still
visible, and every call on the way was useful (no detours). Candidate calls name exactly the
evidence's rows / columns / values, the way a focused reader would; the search runs on unit
states (no pixels), so thousands of questions take well under a second each.
"""

from __future__ import annotations

from iapo.tools.layout import Layout
from iapo.tools.registry import compile_call, layout_after
from iapo.tools.session import CallClass, UnitState, judge

STYLES = ("mask", "draw", "highlight")


def candidate_calls(layout: Layout, evidence: list[str]) -> list[dict]:
    """Calls that target exactly the evidence, in a fixed preference order (mask, draw, highlight;
    rows before columns), which also fixes the one reference path. Names are listed in the order
    the evidence lists them (the question's order), so a reader of the question alone can write
    the call."""
    calls: list[dict] = []
    if layout.kind == "table":
        rows = list(dict.fromkeys(e.split("/")[0] for e in evidence))
        cols = list(dict.fromkeys(e.split("/")[1] for e in evidence))
        for style in STYLES:
            calls.append({"name": f"focus_on_rows_with_{style}", "arguments": {"rows": rows}})
            calls.append({"name": f"focus_on_columns_with_{style}", "arguments": {"columns": cols}})
        box_args: dict = {}
        if len(rows) < len(layout.rows_bbox):
            box_args["rows"] = rows
        if len(cols) < len(layout.columns_bbox):
            box_args["columns"] = cols
        calls.append({"name": "draw_box", "arguments": box_args})
        calls.append({"name": "crop", "arguments": box_args})
    else:
        axis = "x_values" if layout.x_values_bbox else "y_values"
        values = list(dict.fromkeys(evidence))
        for style in STYLES:
            calls.append({"name": f"focus_on_{axis}_with_{style}", "arguments": {axis: values}})
        calls.append({"name": "draw_box", "arguments": {"values": values}})
        calls.append({"name": "crop", "arguments": {"values": values}})
    return calls


def valid_paths(
    layout: Layout,
    evidence: list[str],
    context: list[str] = (),
    max_calls: int = 2,  # type: ignore[assignment]
) -> list[list[dict]]:
    """Every path of at most `max_calls` useful calls after which the evidence alone is salient."""
    ev, ctx = frozenset(evidence), frozenset(context)
    calls = candidate_calls(layout, evidence)
    found: list[list[dict]] = []

    def search(state: UnitState, lay: Layout, path: list[dict]) -> None:
        if len(path) == max_calls:
            return
        for call in calls:
            if call in path:
                continue
            # every candidate names units of the original image; after a crop some may be gone
            if not _applies(call, lay):
                continue
            ops = compile_call(call["name"], call["arguments"], lay)
            after = state.apply(ops)
            if judge(state, after, ev, ctx) != CallClass.VALID_USEFUL:
                continue
            new_path = [*path, call]
            if after.reveals(ev, ctx):
                found.append(new_path)
            else:
                search(after, layout_after(ops, lay), new_path)

    search(UnitState.initial(layout), layout, [])
    return found


def _applies(call: dict, layout: Layout) -> bool:
    regions = layout.named_regions()
    return all(all(n in regions[k] for n in v) for k, v in call["arguments"].items())
