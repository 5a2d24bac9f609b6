from __future__ import annotations

from iapo.tools import format_answer, format_tool_call, parse_turn


def test_roundtrip_tool_call_and_answer():
    t = parse_turn(format_tool_call("crop", {"rows": ["A"]}))
    assert t.kind == "tool_call" and t.name == "crop" and t.arguments == {"rows": ["A"]} and t.well_formed
    a = parse_turn(format_answer(" 7 "))
    assert a.kind == "answer" and a.answer == "7" and a.well_formed


def test_malformed_turns():
    assert parse_turn("<tool_call>{bad json}</tool_call>").kind == "unparseable"
    assert parse_turn('<tool_call>{"name": "crop"}').error == "missing </tool_call>"
    assert parse_turn("<tool_call>[1, 2]</tool_call>").kind == "unparseable"
    assert parse_turn('<tool_call>{"name": 3}</tool_call>').kind == "unparseable"
    deep = '{"name": "crop", "arguments": ' + "[" * 50 + "]" * 50 + "}"
    assert parse_turn(f"<tool_call>{deep}</tool_call>").error == "tool call JSON nested too deeply"
    huge = '{"name": "crop", "arguments": {"rows": [' + "9" * 5000 + "]}}"
    assert parse_turn(f"<tool_call>{huge}</tool_call>").kind == "unparseable"
    plain = parse_turn("7")
    assert plain.kind == "answer" and plain.answer == "7" and not plain.well_formed
    chatty = parse_turn("sure! <answer>7</answer>")
    assert chatty.answer == "7" and not chatty.well_formed


def test_arguments_as_json_string_are_accepted():
    t = parse_turn('<tool_call>{"name": "crop", "arguments": "{\\"rows\\": [\\"A\\"]}"}</tool_call>')
    assert t.kind == "tool_call" and t.arguments == {"rows": ["A"]}
