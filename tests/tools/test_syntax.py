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


def test_answer_after_a_think_block():
    text = format_answer("4", rationale="7 - 3")
    assert text == "<think>7 - 3</think><answer>4</answer>"
    t = parse_turn(text)
    assert t.kind == "answer" and t.answer == "4" and t.well_formed
    assert not parse_turn("<think>7 - 3<answer>4</answer>").well_formed  # think never closed
    assert not parse_turn("<think>a</think>so <answer>4</answer>").well_formed  # text between blocks
    assert not parse_turn("<answer>4</answer><think>a</think>").well_formed  # think after the answer
    drafted = parse_turn("<think>maybe <answer>5</answer></think><answer>4</answer>")
    assert drafted.answer == "4" and drafted.well_formed
