"""The tool node inside the compiled agent: repair, rate limits, timeouts, caps, audit,
repeat detection, budgets and the step limit. Models are scripted; tools run for real."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import GraphRecursionError

from app.context import Context
from app.conversations import thread_key
from app.graphs.agent import compile_agent
from app.resources import Resources, use_resources
from app.state import InputState
from app.tools.risk import with_risk
from app.turns import ask
from tests.tooling import CTX, audit, calls, run_turn, with_model


def tool_results(model_call: list) -> list[ToolMessage]:
    return [m for m in model_call if isinstance(m, ToolMessage)]


@tool
async def slow(seconds: float) -> str:
    """Sleep, then answer.

    Args:
        seconds: How long to sleep.
    """
    await asyncio.sleep(seconds)
    return "slept"


@tool
async def shout(times: int) -> str:
    """Return a long text.

    Args:
        times: Repetitions.
    """
    return "LOUD " * times


with_risk(slow, "compute")
with_risk(shout, "compute")


# -- repair -------------------------------------------------------------------------


async def test_invalid_arguments_go_back_to_the_model_which_repairs_them(
    resources: Resources,
) -> None:
    res, model = with_model(
        resources,
        [
            calls(("calculator", {"expr": "6*7"})),  # wrong argument name
            calls(("calculator", {"expression": "6*7"}), prefix="r"),
            AIMessage("It is 42."),
        ],
    )
    with use_resources(res):
        answer = await run_turn("what is six times seven")
    assert answer.answer == "It is 42."
    (error,) = tool_results(model.calls[1])
    assert error.status == "error" and "invalid arguments for tool 'calculator'" in error.text
    assert '"required": ["expression"]' in error.text  # the schema, to repair with
    (fixed,) = tool_results(model.calls[2])[-1:]
    assert (fixed.status, fixed.text) == ("success", "42")
    assert [r["outcome"] for r in audit(res.settings)] == ["invalid_arguments", "ok"]


async def test_a_second_invalid_call_after_the_repair_ends_the_run(resources: Resources) -> None:
    res, model = with_model(
        resources,
        [
            calls(("calculator", {"expr": "1"})),
            calls(("calculator", {"expression": 7}), prefix="r"),  # still invalid
            AIMessage("never reached"),
        ],
    )
    with use_resources(res):
        answer = await run_turn("compute")
    assert answer.answer == (
        "I stopped because the arguments for the calculator tool were still invalid after "
        "one repair attempt."
    )
    assert len(model.calls) == 2
    assert [r["outcome"] for r in audit(res.settings)] == ["invalid_arguments", "stopped"]


# -- rate limits --------------------------------------------------------------------


async def test_per_tool_rate_limit_refuses_calls_over_the_limit(resources: Resources) -> None:
    res, model = with_model(
        resources,
        [
            calls(*[("calculator", {"expression": f"{i}+1"}) for i in range(3)]),
            AIMessage("done"),
        ],
        tools={"rate_limits": {"calculator": "2/minute"}},
    )
    with use_resources(res):
        await run_turn("add")
        results = tool_results(model.calls[1])
        assert sorted(r.status for r in results) == ["error", "success", "success"]
        (limited,) = [r for r in results if r.status == "error"]
        assert "rate limit reached for tool 'calculator' (2 per 1 minute)" in limited.text
        assert "Try again in" in limited.text
        # Another user has a budget of their own: two calls again, not none.
        model.calls.clear()
        await run_turn("add", context=Context(tenant_id="t1", user_id="u2"))
        statuses = sorted(r.status for r in tool_results(model.calls[1]))
        assert statuses == ["error", "success", "success"]
    outcomes = [r["outcome"] for r in audit(res.settings)]
    assert outcomes.count("rate_limited") == 2 and outcomes.count("ok") == 4


async def test_per_user_limit_counts_all_tools_together(resources: Resources) -> None:
    res, model = with_model(
        resources,
        [
            calls(("calculator", {"expression": "1+1"}), ("current_time", {})),
            calls(("convert_units", {"value": 1, "from_unit": "km", "to_unit": "m"}), prefix="r"),
            AIMessage("done"),
        ],
        tools={"rate_limit_per_user": "2/hour"},
    )
    with use_resources(res):
        await run_turn("several things")
    third = tool_results(model.calls[2])[-1]
    assert (
        third.status == "error" and "rate limit reached for all tools (2 per 1 hour)" in third.text
    )


# -- timeouts and output cap --------------------------------------------------------


async def test_a_slow_tool_times_out_and_the_run_still_answers(resources: Resources) -> None:
    res, model = with_model(
        resources,
        [calls(("slow", {"seconds": 5})), AIMessage("The tool was too slow.")],
        only=[slow],
        limits={"tool_timeout_s": 0.2},
    )
    started = time.perf_counter()
    with use_resources(res):
        answer = await run_turn("be slow")
    assert time.perf_counter() - started < 3
    (timed_out,) = tool_results(model.calls[1])
    assert timed_out.text.startswith("Error: tool 'slow' timed out after 0.2 s")
    assert answer.answer == "The tool was too slow."
    assert audit(res.settings)[0]["outcome"] == "timeout"


async def test_tool_output_is_capped(resources: Resources) -> None:
    res, model = with_model(
        resources, [calls(("shout", {"times": 10_000})), AIMessage("ok")], only=[shout]
    )
    res.settings.tools.max_output_chars = 500
    with use_resources(res):
        await run_turn("shout")
    (capped,) = tool_results(model.calls[1])
    assert len(capped.text) == 500 and "[truncated: output was 50000 characters]" in capped.text


# -- audit --------------------------------------------------------------------------


async def test_every_call_is_audited_without_personal_data(resources: Resources) -> None:
    res, _ = with_model(
        resources,
        [calls(("calculator", {"expression": "2+2 mail jane.doe@example.com"})), AIMessage("x")],
    )
    who = Context(tenant_id="acme", user_id="bob@example.com")
    with use_resources(res):
        await run_turn("q", context=who, thread="th")
    (record,) = audit(res.settings)
    assert record["tool"] == "calculator" and record["risk"] == "compute"
    assert record["outcome"] == "error" and record["call_id"] == "c0"
    assert record["args"] == {"expression": "2+2 mail [EMAIL]"}
    assert record["tenant"] == "acme"
    assert record["user"].startswith("pseudonym:") and "example" not in record["user"]
    assert record["latency_ms"] >= 0 and record["at"].endswith("+00:00")
    assert "jane" not in res.settings.data_dir.joinpath("audit.jsonl").read_text()


# -- repeat detection ---------------------------------------------------------------


async def test_the_same_failing_call_repeated_stops_with_a_clear_message(
    resources: Resources,
) -> None:
    same = calls(("calculator", {"expression": "1/0"}))
    res, model = with_model(resources, [same], tools={"max_repeats": 3})
    with use_resources(res):
        answer = await run_turn("loop")
    assert answer.answer == (
        "I stopped because the calculator tool was asked 3 times with the same arguments "
        "without getting anywhere."
    )
    assert len(model.calls) == 3  # the third identical request is not run
    assert [r["outcome"] for r in audit(res.settings)] == ["error", "error", "stopped"]


async def test_a_successful_call_asked_for_again_ends_the_turn_with_its_result(
    resources: Resources,
) -> None:
    same = calls(("calculator", {"expression": "1+1"}))
    res, model = with_model(resources, [same])
    with use_resources(res):
        answer = await run_turn("loop")
    assert answer.answer == "The calculator returned 2."
    assert len(model.calls) == 2  # the repeat is answered from the first result
    assert [r["outcome"] for r in audit(res.settings)] == ["ok", "duplicate"]


async def test_different_arguments_are_not_repeats(resources: Resources) -> None:
    res, model = with_model(
        resources,
        [
            calls(("calculator", {"expression": "1+1"})),
            calls(("calculator", {"expression": "1+2"}), prefix="b"),
            calls(("calculator", {"expression": "1+3"}), prefix="d"),
            AIMessage("done"),
        ],
    )
    with use_resources(res):
        answer = await run_turn("three sums")
    assert answer.answer == "done" and len(model.calls) == 4


# -- budgets ------------------------------------------------------------------------


async def test_tool_call_budget(resources: Resources) -> None:
    res, model = with_model(
        resources,
        [
            calls(("calculator", {"expression": "1+1"}), ("calculator", {"expression": "2+2"})),
            calls(("calculator", {"expression": "3+3"}), prefix="r"),
            AIMessage("never"),
        ],
        limits={"max_tool_calls": 2},
    )
    with use_resources(res):
        answer = await run_turn("sums")
    assert answer.answer == "I stopped because this request reached its limit of 2 tool calls."
    assert len(model.calls) == 2


async def test_token_budget(resources: Resources) -> None:
    heavy = calls(("calculator", {"expression": "1+1"}))
    heavy.usage_metadata = {"input_tokens": 900, "output_tokens": 100, "total_tokens": 1000}
    again = calls(("calculator", {"expression": "2+2"}), prefix="r")
    again.usage_metadata = {"input_tokens": 900, "output_tokens": 100, "total_tokens": 1000}
    res, model = with_model(
        resources, [heavy, again, AIMessage("never")], limits={"max_run_tokens": 1500}
    )
    with use_resources(res):
        answer = await run_turn("sums")
    assert (
        answer.answer == "I stopped because this request used 2000 tokens, over its budget of 1500."
    )
    assert len(model.calls) == 2


async def test_wall_time_budget(resources: Resources) -> None:
    res, model = with_model(
        resources,
        [
            calls(("slow", {"seconds": 0.3})),
            calls(("slow", {"seconds": 0.01}), prefix="r"),
            AIMessage("never"),
        ],
        only=[slow],
    )
    res.settings.limits.max_run_seconds = 0.15
    with use_resources(res):
        answer = await run_turn("slowly")
    # The first call only had what was left of the budget, then the run stopped.
    (first,) = tool_results(model.calls[1])
    assert "timed out after 0.1" in first.text
    assert re.fullmatch(
        r"I stopped because this request ran for 0\.\d s, over its time budget of 0\.15 s\.",
        answer.answer,
    )
    assert len(model.calls) == 2


# -- never a recursion error ----------------------------------------------------------


@pytest.mark.parametrize("recursion_limit", [8, 9, 10, 11, 12, 15, 25])
async def test_the_run_ends_with_a_final_message_at_any_recursion_limit(
    resources: Resources, recursion_limit: int
) -> None:
    endless = [calls(("calculator", {"expression": f"1+{i}"}), prefix=f"x{i}-") for i in range(60)]
    res, model = with_model(
        resources, endless, limits={"max_tool_steps": 50, "max_tool_calls": 500}
    )
    with use_resources(res):
        agent = compile_agent(InMemorySaver())
        config = {"configurable": {"thread_id": "loop"}, "recursion_limit": recursion_limit}
        try:
            state = await agent.ainvoke(
                InputState(messages=[HumanMessage("go")]),
                config,
                context=CTX,
            )
        except GraphRecursionError as exc:  # pragma: no cover - the failure this test guards
            pytest.fail(f"recursion error at limit {recursion_limit}: {exc}")
    final = state["messages"][-1]
    assert isinstance(final, AIMessage) and not final.tool_calls
    assert "stopped" in final.text


async def test_the_service_leaves_room_for_the_largest_step_limit(resources: Resources) -> None:
    endless = [calls(("calculator", {"expression": f"1+{i}"}), prefix=f"x{i}-") for i in range(60)]
    res, model = with_model(
        resources, endless, limits={"max_tool_steps": 50, "max_tool_calls": 500}
    )
    with use_resources(res):
        agent = compile_agent(InMemorySaver())
        answer = await ask(agent, "go", context=CTX, thread_id="big", max_chars=8000)
    assert (
        answer.answer
        == "I stopped after 50 tool steps, the limit for one request, before reaching an answer."
    )
    state = await agent.aget_state({"configurable": {"thread_id": thread_key(CTX, "big")}})
    assert state.values["tool_steps"] == 50
