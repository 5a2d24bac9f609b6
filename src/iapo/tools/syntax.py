"""The turn protocol, Qwen2.5 style: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` or
`<answer>...</answer>`, the answer optionally after one `<think>...</think>` block (R1 style).

Model text is only ever parsed as JSON (bounded in size and depth), never evaluated as code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

TOOL_CALL_OPEN, TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
MAX_CALL_CHARS = 2000
MAX_JSON_DEPTH = 6

_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class Turn:
    """What one model turn asked for.

    kind: `tool_call` (name/arguments set), `answer` (answer set), or `unparseable` (a tool call
    was attempted but its JSON or shape is broken; `error` says why).
    well_formed: the turn is exactly one tag block (an answer may follow one think block) with
    nothing else around it; feeds the format reward.
    """

    kind: Literal["tool_call", "answer", "unparseable"]
    name: str | None = None
    arguments: object = None
    answer: str | None = None
    error: str | None = None
    well_formed: bool = True


def _depth(x: object, d: int = 0) -> int:
    if isinstance(x, dict):
        return max([_depth(v, d + 1) for v in x.values()], default=d + 1)
    if isinstance(x, list):
        return max([_depth(v, d + 1) for v in x], default=d + 1)
    return d


def _between(text: str, open_: str, close: str) -> tuple[str, bool]:
    start = text.index(open_) + len(open_)
    end = text.find(close, start)
    if end < 0:
        return text[start:], False
    return text[start:end], True


def parse_turn(text: str) -> Turn:
    """Parse one generated turn (special tokens already stripped)."""
    stripped = text.strip()
    if TOOL_CALL_OPEN in stripped:
        body, closed = _between(stripped, TOOL_CALL_OPEN, TOOL_CALL_CLOSE)
        if not closed:
            return Turn("unparseable", error="missing </tool_call>", well_formed=False)
        well_formed = (
            stripped.startswith(TOOL_CALL_OPEN)
            and stripped.endswith(TOOL_CALL_CLOSE)
            and stripped.count(TOOL_CALL_OPEN) == 1
        )
        return _parse_call(body, well_formed)
    if ANSWER_OPEN in stripped:
        head = _strip_think(stripped)  # an <answer> written inside the think block is not the answer
        body, closed = _between(head if head and ANSWER_OPEN in head else stripped, ANSWER_OPEN, ANSWER_CLOSE)
        well_formed = closed and head is not None and head.startswith(ANSWER_OPEN) and head.endswith(ANSWER_CLOSE)
        return Turn("answer", answer=_WS.sub(" ", body).strip(), well_formed=well_formed)
    # No tag at all: the text is taken as the final answer, but the turn is not well formed.
    return Turn("answer", answer=_WS.sub(" ", stripped), well_formed=False)


def _strip_think(text: str) -> str | None:
    """The text after a leading `<think>...</think>` block (the text itself if there is none);
    None if the think block is not closed."""
    if not text.startswith(THINK_OPEN):
        return text
    end = text.find(THINK_CLOSE)
    return None if end < 0 else text[end + len(THINK_CLOSE) :].lstrip()


def _parse_call(body: str, well_formed: bool) -> Turn:
    body = body.strip()
    if len(body) > MAX_CALL_CHARS:
        return Turn("unparseable", error=f"tool call longer than {MAX_CALL_CHARS} characters", well_formed=False)
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError) as e:  # ValueError covers JSONDecodeError and huge ints
        return Turn("unparseable", error=f"invalid JSON: {str(e)[:80]}", well_formed=False)
    if _depth(obj) > MAX_JSON_DEPTH:
        return Turn("unparseable", error="tool call JSON nested too deeply", well_formed=False)
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return Turn("unparseable", error='a tool call must be {"name": str, "arguments": {...}}', well_formed=False)
    args = obj.get("arguments", {})
    if isinstance(args, str):  # OpenAI style: arguments as a JSON string
        try:
            args = json.loads(args) if len(args) <= MAX_CALL_CHARS else None
        except (ValueError, RecursionError):
            args = None
        if args is None:
            return Turn("unparseable", error="arguments string is not JSON", well_formed=False)
    extra = set(obj) - {"name", "arguments"}
    return Turn("tool_call", name=obj["name"], arguments=args, well_formed=well_formed and not extra)


def format_tool_call(name: str, arguments: dict) -> str:
    """The canonical text of a call, as the SFT data and the prompt examples write it."""
    body = json.dumps({"name": name, "arguments": arguments}, separators=(", ", ": "))
    return f"{TOOL_CALL_OPEN}{body}{TOOL_CALL_CLOSE}"


def format_answer(answer: str, rationale: str = "") -> str:
    """`<answer>a</answer>`, after `<think>rationale</think>` when a rationale is given."""
    think = f"{THINK_OPEN}{rationale}{THINK_CLOSE}" if rationale else ""
    return f"{think}{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"
