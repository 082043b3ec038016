"""Unit-conversion questions: the intent rule, the offline answerer's call, the agent's run."""

from __future__ import annotations

from dataclasses import replace

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from app.context import Context
from app.conversations import thread_key
from app.graphs.agent import compile_agent
from app.llm.offline.answerer import ExtractiveAnswerer
from app.resources import Resources, use_resources
from app.text.intents import find_arithmetic, find_conversion
from app.tools.builtins import calculator, current_time
from app.tools.catalog import build_registry
from app.tools.units import convert, convert_units
from app.turns import ask

CTX = Context(tenant_id="t1", user_id="u1")
SYSTEM = SystemMessage("You are ragent.")


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("convert 5 miles to km", (5.0, "mile", "km")),
        ("Convert 5 miles into kilometres.", (5.0, "mile", "km")),
        ("How many pounds is 3 kg?", (3.0, "kg", "lb")),
        ("how many pounds are in 3 kilograms", (3.0, "kg", "lb")),
        ("100 F in C", (100.0, "degF", "degC")),
        ("What is 100°F in °C?", (100.0, "degF", "degC")),
        ("Convert -40 degrees Celsius to Fahrenheit", (-40.0, "degC", "degF")),
        ("Convert \u221240 \u00b0C to \u00b0F", (-40.0, "degC", "degF")),
        ("300 K in celsius", (300.0, "kelvin", "degC")),
        ("how many feet are in a mile?", (1.0, "mile", "ft")),
        ("How many grams in an ounce?", (1.0, "oz", "g")),
        ("3 kg is how many pounds?", (3.0, "kg", "lb")),
        ("convert 1,500 meters to miles", (1500.0, "m", "mile")),
        ("convert .5 km to m", (0.5, "km", "m")),
        ("What is 60 mph in km/h?", (60.0, "mile/hour", "km/hour")),
        ("Convert 2 GiB to MB", (2.0, "GiB", "MB")),
        ("convert 5 fluid ounces to ml", (5.0, "floz", "ml")),  # not 5 "ounces" of mass
        ("how many km is 26.2 miles?", (26.2, "mile", "km")),
        ("convert 3.5 hours to minutes", (3.5, "hour", "minute")),
        ("What's 2 acres in square meters?", (2.0, "acre", "m**2")),
    ],
)
def test_conversion_questions_are_found(question: str, expected: tuple[float, str, str]) -> None:
    assert find_conversion(question) == expected
    value, from_unit, to_unit = expected
    convert(value, from_unit, to_unit)  # every unit name it emits is one pint reads


@pytest.mark.parametrize(
    "question",
    [
        "I ran 5 km in 30 minutes.",  # a duration after "in", not a unit
        "convert 5 kg to km",  # mass and length: no conversion
        "What is 17 * 23?",
        "convert 1/2 mile to feet",  # not "2 mile"
        "How long is the 10-20 km stretch to miles away?",
        "Does VACUUM FULL move 1 GB to disk?",
        "The WAL file reaches 1000 pages in size.",
        "What is 5 in to cm?",  # "in" is never the inch
        "How many people use SQLite?",
        "",
    ],
)
def test_other_questions_are_not_conversions(question: str) -> None:
    assert find_conversion(question) is None


def test_every_unit_alias_converts_with_pint() -> None:
    from app.text import intents

    for unit, (measure, _) in intents._UNITS.items():
        same = [other for other, (m, _) in intents._UNITS.items() if m == measure]
        for other in same:
            convert(1.0, unit, other)


def test_offline_answerer_calls_convert_units_when_bound() -> None:
    model = ExtractiveAnswerer().bind_tools([calculator, convert_units, current_time])
    reply = model.invoke([SYSTEM, HumanMessage("How many pounds is 3 kg?")])
    assert isinstance(reply, AIMessage)
    assert reply.text == ""
    (call,) = reply.tool_calls
    assert call["name"] == "convert_units"
    assert call["args"] == {"value": 3.0, "from_unit": "kg", "to_unit": "lb"}
    assert reply.response_metadata["finish_reason"] == "tool_calls"


def test_a_conversion_is_not_also_sent_to_the_calculator() -> None:
    question = "convert 2.5 km to m"
    assert find_conversion(question) is not None
    model = ExtractiveAnswerer().bind_tools([calculator, convert_units])
    reply = model.invoke([SYSTEM, HumanMessage(question)])
    assert [c["name"] for c in reply.tool_calls] == ["convert_units"]


def test_without_the_tool_bound_the_calculator_still_runs() -> None:
    question = "what is 2 * 3 km in m"
    assert find_arithmetic(question) == "2 * 3"
    reply = ExtractiveAnswerer().bind_tools([calculator]).invoke([SYSTEM, HumanMessage(question)])
    assert [c["name"] for c in reply.tool_calls] == ["calculator"]


def test_converter_result_is_restated_once() -> None:
    model = ExtractiveAnswerer().bind_tools([convert_units])
    question = HumanMessage("convert 5 miles to km")
    call = model.invoke([SYSTEM, question])
    result = ToolMessage(
        "5 mile = 8.04672 km", tool_call_id=call.tool_calls[0]["id"], name="convert_units"
    )
    final = model.invoke([SYSTEM, question, call, result])
    assert final.tool_calls == []
    assert final.text == "The unit converter returned 5 mile = 8.04672 km."


async def test_agent_converts_with_the_real_tool(resources: Resources) -> None:
    configured = replace(resources, tools=build_registry(resources.settings.tools))
    with use_resources(configured):
        agent = compile_agent(InMemorySaver())
        answer = await ask(
            agent, "What is 100°F in °C?", context=CTX, thread_id="units", max_chars=8000
        )
    assert answer.answer == "The unit converter returned 100 degF = 37.77777778 degC."
    assert not answer.refused
    state = await agent.aget_state({"configurable": {"thread_id": thread_key(CTX, "units")}})
    tools = [m for m in state.values["messages"] if isinstance(m, ToolMessage)]
    assert [(t.name, t.content) for t in tools] == [
        ("convert_units", "100 degF = 37.77777778 degC")
    ]
