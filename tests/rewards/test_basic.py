"""Rule-based rewards; the exact-match baseline punishes other valid paths."""

from __future__ import annotations

from iapo.rewards import match_score, reference_path
from iapo.tools.session import CallClass, ToolSession
from iapo.tools.syntax import format_tool_call, parse_turn


def _all_useful(ex, path) -> bool:
    sess = ToolSession(None, ex.layout, frozenset(ex.evidence), frozenset(ex.context))
    classes = [sess.step(parse_turn(format_tool_call(c["name"], c["arguments"]))).cls for c in path]
    return all(c == CallClass.VALID_USEFUL for c in classes)


class _Ep:
    def __init__(self, ex):
        self.example = ex


def test_exact_match_punishes_other_valid_paths(small_world):
    exs = [e for e in small_world.load("train") if len(e.valid_paths) >= 2]
    assert exs
    n_checked = 0
    for ex in exs[:30]:
        ref = reference_path(_Ep(ex))
        assert match_score(ref, ref) == 1.0
        for path in ex.valid_paths:
            if path == ref:
                continue
            assert _all_useful(ex, path)  # a genuinely valid path...
            assert match_score(path, ref) < 1.0  # ...that the baseline scores below the reference
            n_checked += 1
    assert n_checked >= 30


def test_match_score_by_hand():
    ref = [{"name": "focus_on_rows_with_mask", "arguments": {"rows": ["A"]}}]
    assert match_score([], ref) == 0.0
    same_tool_other_row = [{"name": "focus_on_rows_with_mask", "arguments": {"rows": ["B"]}}]
    assert match_score(same_tool_other_row, ref) == 2 / 3
    extra = [*ref, {"name": "crop", "arguments": {"rows": ["A"]}}]
    assert match_score(extra, ref) == 0.5
    assert match_score([], []) == 1.0
