"""The text a tiny model's tokenizer is trained on: everything the world will ever show it."""

from __future__ import annotations

from collections.abc import Iterator

from iapo.data.example import Example
from iapo.rollout.episode import NO_TOOLS, SYSTEM_PROMPT
from iapo.tools.registry import render_tool_spec
from iapo.tools.syntax import format_answer, format_tool_call


def world_texts(examples: list[Example], max_examples: int = 5000) -> Iterator[str]:
    """System prompt, tool specs, questions, every valid call, answers and tool responses.

    The fixed prompt texts are repeated so BPE merges their words (once, they stayed ~70 byte
    tokens: a third of every episode's length)."""
    for _ in range(100):
        yield SYSTEM_PROMPT
        yield NO_TOOLS
    yield "error: unknown tool"  # tool error messages are text the model reads
    for ex in examples[:max_examples]:
        yield render_tool_spec(ex.layout.kind, ex.layout)  # type: ignore[arg-type]
        yield ex.question
        yield format_answer(ex.answer)
        for path in ex.valid_paths[:4]:
            for c in path:
                yield format_tool_call(c["name"], c["arguments"])
