"""Tool calls written as text by open models are recovered, validated, and never shown."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.llm.tool_recovery import StreamGuard, recover_tool_calls

CALC = {
    "type": "function",
    "function": {
        "name": "calculator",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string", "maxLength": 100}},
            "required": ["expression"],
            "additionalProperties": False,
        },
    },
}
UNITS = {
    "type": "function",
    "function": {
        "name": "convert_units",
        "parameters": {
            "type": "object",
            "properties": {
                "value": {"type": "number"},
                "from_unit": {"type": "string"},
                "to_unit": {"type": "string"},
            },
            "required": ["value", "from_unit", "to_unit"],
        },
    },
}
TOOLS = [CALC, UNITS]
ARGS = {"expression": "17*23"}
UNIT_ARGS = {"value": 5, "from_unit": "km", "to_unit": "mi"}


def _calls(text: str) -> list[tuple[str, dict[str, Any]]] | None:
    found = recover_tool_calls(text, TOOLS)
    return None if found is None else [(c["name"], c["args"]) for c in found.calls]


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ('{"name": "calculator", "arguments": {"expression": "17*23"}}', "json"),
        ('  {"name": "calculator", "parameters": {"expression": "17*23"}}\n', "json"),
        ('{"name": "calculator", "arguments": "{\\"expression\\": \\"17*23\\"}"}', "json"),
        ('[{"name": "calculator", "args": {"expression": "17*23"}}]', "json"),
        (
            '{"type": "function", "function": {"name": "calculator", '
            '"arguments": {"expression": "17*23"}}}',
            "json",
        ),
        (
            '```json\n{"name": "calculator", "arguments": {"expression": "17*23"}}\n```',
            "fenced_json",
        ),
        (
            '<tool_call>\n{"name": "calculator", "arguments": {"expression": "17*23"}}\n'
            "</tool_call>",
            "hermes",
        ),
        ('<|python_tag|>{"name": "calculator", "parameters": {"expression": "17*23"}}', "llama"),
        ('[TOOL_CALLS][{"name": "calculator", "arguments": {"expression": "17*23"}}]', "mistral"),
        ('[TOOL_CALLS]calculator[ARGS]{"expression": "17*23"}', "mistral"),
    ],
)
def test_each_format_is_recovered(text: str, fmt: str) -> None:
    found = recover_tool_calls(text, TOOLS)
    assert found is not None
    assert found.format == fmt
    assert [(c["name"], c["args"]) for c in found.calls] == [("calculator", ARGS)]
    assert all(c["id"] and c["id"].startswith("call_") for c in found.calls)


def test_several_hermes_calls_after_some_text() -> None:
    text = (
        "Let me work that out.\n"
        f'<tool_call>{{"name": "calculator", "arguments": {json.dumps(ARGS)}}}</tool_call>\n'
        f'<tool_call>{{"name": "convert_units", "arguments": {json.dumps(UNIT_ARGS)}}}'
        "</tool_call>"
    )
    found = recover_tool_calls(text, TOOLS)
    assert found is not None
    assert found.text == "Let me work that out."
    assert [(c["name"], c["args"]) for c in found.calls] == [
        ("calculator", ARGS),
        ("convert_units", UNIT_ARGS),
    ]
    assert len({c["id"] for c in found.calls}) == 2


@pytest.mark.parametrize(
    "text",
    [
        "The answer is 391 [S1].",
        '{"answer": "391"}',  # JSON, but not a call
        '{"name": "rm_rf", "arguments": {}}',  # a tool that was not bound
        '{"name": "calculator", "arguments": {"expression": "1"}, "extra": 1}',
        '{"name": "calculator", "arguments": {"expression": "1"',  # truncated
        '<tool_call>{"name": "calculator", "arguments": {"expression": "1"}}</tool_call>'
        "<tool_call>{not json}</tool_call>",  # one bad call spoils the reply
        "[TOOL_CALLS]calculator[ARGS]{broken",
        'Here is an example: {"name": "calculator", "arguments": {}}',  # mid-text JSON
    ],
)
def test_what_is_not_a_valid_call_stays_text(text: str) -> None:
    assert _calls(text) is None


@pytest.mark.parametrize(
    "args",
    [{"expr": "1+1"}, {"expression": 17}, {"expression": "1", "from_unit": "kg"}],
    ids=["missing", "wrong-type", "undeclared"],
)
def test_a_call_whose_arguments_fail_the_schema_is_still_a_call(args: dict[str, object]) -> None:
    # The registry validates it like any call and answers the model with the error; shown
    # as text, the user would get the model's JSON instead of an answer.
    text = json.dumps({"name": "calculator", "arguments": args})
    assert _calls(text) == [("calculator", args)]


def test_every_recovered_call_has_its_own_id() -> None:
    first, second = (
        recover_tool_calls(json.dumps({"name": "calculator", "arguments": ARGS}), TOOLS)
        for _ in range(2)
    )
    assert first is not None and second is not None
    assert first.calls[0]["id"] != second.calls[0]["id"]


def test_nothing_is_recovered_without_bound_tools() -> None:
    assert recover_tool_calls('{"name": "calculator", "arguments": {}}', []) is None


def _stream(pieces: list[str], max_chars: int = 10_000) -> tuple[str, StreamGuard]:
    guard = StreamGuard(max_chars=max_chars)
    shown = "".join(guard.feed(p) for p in pieces)
    return shown, guard


def test_plain_text_streams_as_it_comes() -> None:
    guard = StreamGuard(max_chars=10_000)
    assert guard.feed("The answer") == "The answer"
    assert guard.feed(" is 391 [S1].") == " is 391 [S1]."
    assert not guard.holding and guard.release() == ""


def test_a_json_call_is_never_shown() -> None:
    call = '{"name": "calculator", "arguments": {"expression": "17*23"}}'
    shown, guard = _stream(["  ", call[:5], call[5:30], call[30:]])
    assert shown.strip() == "" and guard.holding
    assert _calls(guard.release()) == [("calculator", ARGS)]


def test_a_hermes_tag_split_across_pieces_is_held_from_its_start() -> None:
    call = '<tool_call>{"name": "calculator", "arguments": {"expression": "17*23"}}</tool_call>'
    shown, guard = _stream(["Let me compute. <to", "ol_ca", "ll>", call[11:]])
    assert shown == "Let me compute. "
    assert guard.holding
    assert _calls("Let me compute. " + guard.release()) == [("calculator", ARGS)]


def test_a_lone_angle_bracket_is_shown_once_it_is_not_a_tag() -> None:
    guard = StreamGuard(max_chars=10_000)
    assert guard.feed("if a <") == "if a "
    assert guard.feed(" b then") == "< b then"
    assert not guard.holding


@pytest.mark.parametrize("text", ["[S1] says so.", "```python\nprint(1)\n```", "[1, 2]"])
def test_text_that_only_looks_like_an_opening_streams(text: str) -> None:
    shown, guard = _stream([text[:1], text[1:3], text[3:]])
    assert shown + guard.release() == text
    assert not guard.holding


def test_held_text_past_the_cap_is_let_go() -> None:
    guard = StreamGuard(max_chars=50)
    assert guard.feed("{") == ""
    assert guard.feed('"a": "' + "x" * 60) == '{"a": "' + "x" * 60
    assert guard.feed('"}') == '"}'  # streams from here on
    assert not guard.holding


def test_calls_one_after_another_count_once_each_and_a_cut_tail_is_ignored() -> None:
    # As Qwen2.5-Coder-0.5B wrote it on llama.cpp, until its token limit cut it short.
    one = '{"name": "convert_units", "arguments": {"value": 5, "from_unit": "km", "to_unit": "mi"}}'
    text = f"{one}\n{one}\n{one}\n" + '{"name": "convert_units", "arguments":'
    assert _calls(text) == [("convert_units", UNIT_ARGS)]
    two = f'{one}\n{{"name": "calculator", "arguments": {json.dumps(ARGS)}}}'
    assert _calls(two) == [("convert_units", UNIT_ARGS), ("calculator", ARGS)]
    # Text after the calls is the model's guess at their result: dropped, the calls run.
    assert _calls(f"{one}\nThat gives 3.1 miles.") == [("convert_units", UNIT_ARGS)]
    assert _calls('{"name": "calculator"') is None  # nothing complete


def test_schema_keywords_copied_into_the_arguments_are_dropped() -> None:
    # As Qwen2.5-Coder-0.5B wrote it: the schema's own keywords among the arguments.
    text = (
        '{"name": "calculator", "arguments": {"expression": "17*23", "type": "object", '
        '"required": ["expression"]}}'
    )
    assert _calls(text) == [("calculator", ARGS)]
    # Any other undeclared argument stays, for the tool registry to refuse.
    assert _calls('{"name": "calculator", "arguments": {"expression": "1", "unit": "m"}}') == [
        ("calculator", {"expression": "1", "unit": "m"})
    ]


def test_a_json_block_after_prose_is_a_call_and_the_prose_stays() -> None:
    # As Qwen2.5-Coder-1.5B wrote it on llama.cpp.
    text = (
        "To calculate 17 * 23, I will use the calculator function:\n```json\n"
        '{\n  "name": "calculator",\n  "arguments": {\n    "expression": "17*23"\n  }\n}\n```'
    )
    found = recover_tool_calls(text, TOOLS)
    assert found is not None and found.format == "fenced_json"
    assert [(c["name"], c["args"]) for c in found.calls] == [("calculator", ARGS)]
    assert found.text == "To calculate 17 * 23, I will use the calculator function:"
    # A code block of another language, or an example that is no call, stays text.
    assert _calls("Here is how:\n```python\nprint(17 * 23)\n```") is None
    assert _calls('Like this:\n```json\n{"answer": 391}\n```') is None


def test_a_json_block_after_prose_is_held_from_its_fence() -> None:
    block = '```json\n{"name": "calculator", "arguments": {"expression": "17*23"}}\n```'
    shown, guard = _stream(["I will use the calculator:\n``", "`js", "on\n", block[8:]])
    assert shown == "I will use the calculator:\n"
    assert guard.holding
    assert _calls("I will use the calculator:\n" + guard.release()) == [("calculator", ARGS)]


def test_a_call_on_a_line_of_its_own_after_a_lead_in_is_recovered() -> None:
    # As Qwen2.5-Coder-1.5B wrote it on llama.cpp: braces doubled as Qwen's chat template
    # prints the call format, then a guess at the result, which is dropped.
    text = (
        "To calculate 17 * 23, I'll use the calculator function:\n"
        '{{"name": "calculator", "arguments": {"expression": "17*23"}}}\n'
        "The result is 391."
    )
    found = recover_tool_calls(text, TOOLS)
    assert found is not None and found.format == "json_line"
    assert [(c["name"], c["args"]) for c in found.calls] == [("calculator", ARGS)]
    assert found.text == "To calculate 17 * 23, I'll use the calculator function:"
    assert _calls('{{"name": "calculator", "arguments": {"expression": "17*23"}}}') == [
        ("calculator", ARGS)
    ]


def test_an_echoed_tool_list_is_neither_a_call_nor_text() -> None:
    echo = json.dumps(UNITS)
    text = (
        "I'll use the `convert_units` function from the tools.\n<tools>\n"
        f"{echo}\n</tools>\n"
        '{{"name": "convert_units", "arguments": {"value": 5, "from_unit": "km", "to_unit": "mi"}}}'
    )
    found = recover_tool_calls(text, TOOLS)
    assert found is not None
    assert [(c["name"], c["args"]) for c in found.calls] == [("convert_units", UNIT_ARGS)]
    assert found.text == "I'll use the `convert_units` function from the tools."


@pytest.mark.parametrize(
    "text",
    [
        'The settings file reads:\n{"answer": 391}\nas shown.',  # JSON, no call
        'Call it like this:\n{"name": "rm_rf", "arguments": {}}',  # no such tool bound
        "Sets look like this:\n{1, 2, 3}\nin Python.",
    ],
)
def test_a_brace_line_that_is_no_call_stays_text(text: str) -> None:
    assert _calls(text) is None
    shown, guard = _stream([text[:10], text[10:25], text[25:]])
    assert shown + guard.release() == text


def test_a_call_line_after_a_lead_in_is_held_from_its_line() -> None:
    line = '{{"name": "calculator", "arguments": {"expression": "17*23"}}}'
    lead = "I'll use the calculator function:\n"
    shown, guard = _stream([lead[:20], lead[20:], "  ", line[:7], line[7:]])
    assert shown == lead and guard.holding
    assert _calls(lead + guard.release()) == [("calculator", ARGS)]
