"""Unit tests for the built-in tools and the tool registry."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import pytest
from langchain_core.messages import ToolCall
from langchain_core.tools import BaseTool, InjectedToolCallId, ToolException, tool

from app.tools import (
    BUILTIN_TOOLS,
    ToolRegistry,
    calculator,
    current_time,
    default_registry,
    evaluate_expression,
)


async def calc(expression: str) -> str:
    result = await calculator.ainvoke({"expression": expression})
    assert isinstance(result, str)
    return result


def make_call(name: str, args: Any, call_id: str = "call-1") -> ToolCall:
    return ToolCall(name=name, args=args, id=call_id, type="tool_call")


# --------------------------------------------------------------------------- calculator


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2 + 3 * 4", "14"),
        ("2^10", "1024"),  # a power, as models write it (Qwen2.5-Coder-1.5B did)
        ("2^10 + 1", "1025"),
        ("-2^2", "-4"),
        ("2^3^2", "512"),
        ("(2 + 3) * 4", "20"),
        ("2 - 3 - 4", "-5"),
        ("2 ** 3 ** 2", "512"),  # right-associative
        ("-2 ** 2", "-4"),  # ** binds tighter than unary minus
        ("2 ** -1", "0.5"),
        ("7 / 2", "3.5"),
        ("8 / 2", "4"),  # integral floats print as ints
        ("7 // 2", "3"),
        ("-7 % 3", "2"),
        ("+5", "5"),
        ("1 / 3", "0.333333333333"),  # 12 significant digits
        ("0.1 + 0.2", "0.3"),
        ("2 ** 100", "1267650600228229401496703205376"),  # exact big ints
        ("sqrt(16) + abs(-3)", "7"),
        ("log(e)", "1"),
        ("log(8, 2)", "3"),
        ("log10(1000)", "3"),
        ("exp(0)", "1"),
        ("cos(0) + sin(0) + tan(0)", "1"),
        ("round(2.567, 2)", "2.57"),
        ("round(1234, -2)", "1200"),
        ("floor(-2.5) + ceil(2.1)", "0"),
        ("pi", "3.14159265359"),
        ("-0.0", "0"),
    ],
)
async def test_calculator_results(expression: str, expected: str) -> None:
    assert await calc(expression) == expected


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("__import__('os')", "unsupported function '__import__'"),
        ("__import__('os').system('echo hi')", "Attribute"),
        ("(1).real", "Attribute"),
        ("().__class__.__bases__", "Attribute"),
        ("open('/etc/passwd')", "unsupported function 'open'"),
        ("x + 1", "unknown name 'x'"),
        ("math.pi", "Attribute"),
        ("'a' * 3", "only numbers"),
        ("True + 1", "only numbers"),
        ("[1, 2]", "List"),
        ("1 < 2", "Compare"),
        ("lambda: 1", "Lambda"),
        ("sqrt(x=4)", "positional"),
        ("1 << 10", "unsupported operator LShift"),
        ("1 +", "invalid syntax"),
        ("", "empty"),
        ("1/0", "division by zero"),
        ("5 // 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("sqrt(-1)", "undefined"),
        ("(-8) ** (1 / 3)", "not a real number"),
        ("exp(1000)", "too large"),
        ("1e308 * 10", "too large"),
        ("1" * 501, "too long"),
        ("-" * 300 + "1", "too complex"),
    ],
)
async def test_calculator_rejects(expression: str, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        await calc(expression)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "expression",
    [
        "9 ** 9 ** 9",
        "2 ** 100000",
        "10 ** 1001",
        "99999 ** 1000",  # exponent within the cap but the result would be enormous
        "(2 ** 1000) ** 1000",
        "(2 ** 999) * (2 ** 999) * (2 ** 999) * (2 ** 999) * (2 ** 999)",
        "round(5, -10 ** 7)",  # would make Python compute 10 ** 10_000_000
    ],
)
def test_calculator_rejects_huge_computations_fast(expression: str) -> None:
    start = time.perf_counter()
    with pytest.raises(ValueError, match="too large|ndigits"):
        evaluate_expression(expression)
    assert time.perf_counter() - start < 0.5


def test_calculator_never_uses_eval(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    def forbidden(*_: Any, **__: Any) -> Any:
        raise AssertionError("eval must not be used")

    monkeypatch.setattr(builtins, "eval", forbidden)
    assert evaluate_expression("6 * 7") == "42"


# --------------------------------------------------------------------------- current_time


async def test_current_time_defaults_to_utc() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    stamp = await current_time.ainvoke({})
    after = datetime.now(UTC)
    parsed = datetime.fromisoformat(stamp)
    assert parsed.utcoffset() == timedelta(0)
    assert before <= parsed <= after


async def test_current_time_in_named_zone() -> None:
    stamp = await current_time.ainvoke({"timezone": "Asia/Tokyo"})
    parsed = datetime.fromisoformat(stamp)
    assert parsed.utcoffset() == timedelta(hours=9)  # Japan has no daylight saving time
    assert abs(parsed - datetime.now(UTC)) < timedelta(seconds=5)


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../../etc/passwd"])
async def test_current_time_unknown_zone(zone: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone") as info:
        await current_time.ainvoke({"timezone": zone})
    assert repr(zone) in str(info.value)


# --------------------------------------------------------------------------- registry setup


@tool
async def echo(text: str, times: int = 1) -> str:
    """Repeat text.

    Args:
        text: What to repeat.
        times: How many times.
    """
    return text * times


@tool
async def boom(reason: str) -> str:
    """Always fail.

    Args:
        reason: Why it fails.
    """
    raise RuntimeError(f"kaboom: {reason}")


@tool
async def slow(seconds: float) -> str:
    """Sleep for a while.

    Args:
        seconds: How long to sleep.
    """
    await asyncio.sleep(seconds)
    return "done"


@tool
async def whoami(tool_call_id: Annotated[str, InjectedToolCallId], prefix: str) -> str:
    """Report the tool call id.

    Args:
        tool_call_id: Injected by LangChain.
        prefix: Put before the id.
    """
    return f"{prefix}{tool_call_id}"


@tool
async def structured(n: int) -> dict[str, Any]:
    """Return a mapping.

    Args:
        n: A number.
    """
    return {"n": n, "square": n * n}


@tool
async def handled(x: int) -> str:
    """Fail with an error LangChain turns into a message.

    Args:
        x: Anything.
    """
    raise ToolException(f"bad x {x}")


handled.handle_tool_error = True


@pytest.fixture
def registry() -> ToolRegistry:
    return ToolRegistry([echo, boom, slow, whoami, structured, handled])


def test_registry_exposes_tools(registry: ToolRegistry) -> None:
    assert registry.names == ("echo", "boom", "slow", "whoami", "structured", "handled")
    assert [t.name for t in registry.tools] == list(registry.names)
    assert all(isinstance(t, BaseTool) for t in registry.tools)
    assert registry.get("echo") is echo
    assert "echo" in registry and "nope" not in registry
    assert len(registry) == 6
    registry.tools.clear()  # a copy: the registry is unaffected
    assert len(registry.tools) == 6


def test_get_unknown_tool_lists_available(registry: ToolRegistry) -> None:
    with pytest.raises(KeyError, match="available tools: echo, boom"):
        registry.get("nope")


def test_duplicate_names_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate tool name 'echo'"):
        ToolRegistry([echo, boom, echo])


def test_default_registry_has_builtins() -> None:
    registry = default_registry()
    assert registry.names == ("calculator", "current_time")
    assert tuple(registry.tools) == BUILTIN_TOOLS


def test_schema_describes_arguments(registry: ToolRegistry) -> None:
    schema = registry.schema("echo")
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {"text", "times"}
    assert schema["properties"]["times"]["type"] == "integer"
    assert schema["required"] == ["text"]
    assert schema["additionalProperties"] is False


def test_schema_hides_injected_arguments(registry: ToolRegistry) -> None:
    schema = registry.schema("whoami")
    assert set(schema["properties"]) == {"prefix"}
    assert registry.validate("whoami", {"prefix": "id="}) == []


def test_schema_returns_independent_copy(registry: ToolRegistry) -> None:
    registry.schema("echo")["properties"].clear()
    assert "text" in registry.schema("echo")["properties"]
    assert registry.validate("echo", {}) != []


def test_builtin_schemas_carry_docstring_descriptions() -> None:
    schema = default_registry().schema("calculator")
    assert "sqrt" in schema["description"]
    assert "expression" in schema["properties"]
    assert schema["properties"]["expression"]["description"]


# --------------------------------------------------------------------------- validation


def test_validate_accepts_valid_args(registry: ToolRegistry) -> None:
    assert registry.validate("echo", {"text": "hi"}) == []
    assert registry.validate("echo", {"text": "hi", "times": 3}) == []


def test_validate_missing_arg(registry: ToolRegistry) -> None:
    assert registry.validate("echo", {"times": 2}) == ["$: 'text' is a required property"]


def test_validate_rejects_extra_args(registry: ToolRegistry) -> None:
    errors = registry.validate("echo", {"text": "hi", "loud": True})
    assert len(errors) == 1
    assert errors[0].startswith("$: Additional properties are not allowed")
    assert "'loud'" in errors[0]


def test_validate_wrong_types_report_paths(registry: ToolRegistry) -> None:
    errors = registry.validate("echo", {"text": 5, "times": "many"})
    assert errors == [
        "$.text: 5 is not of type 'string'",
        "$.times: 'many' is not of type 'integer'",
    ]


def test_validate_non_object_args(registry: ToolRegistry) -> None:
    assert registry.validate("echo", ["hi"]) == ["$: ['hi'] is not of type 'object'"]


def test_validate_unknown_tool(registry: ToolRegistry) -> None:
    [error] = registry.validate("nope", {})
    assert "unknown tool 'nope'" in error
    assert "echo, boom, slow, whoami, structured, handled" in error


def test_validate_shortens_huge_values(registry: ToolRegistry) -> None:
    [error] = registry.validate("echo", {"text": "x" * 10_000, "times": "y" * 10_000})
    assert len(error) < 400


# --------------------------------------------------------------------------- execution


async def test_execute_success(registry: ToolRegistry) -> None:
    msg = await registry.execute(make_call("echo", {"text": "ab", "times": 3}), timeout_s=1)
    assert msg.status == "success"
    assert msg.content == "ababab"
    assert msg.tool_call_id == "call-1"
    assert msg.name == "echo"


async def test_execute_unknown_tool(registry: ToolRegistry) -> None:
    msg = await registry.execute(make_call("nope", {}, "c9"), timeout_s=1)
    assert msg.status == "error"
    assert msg.tool_call_id == "c9"
    assert msg.name == "nope"
    assert isinstance(msg.content, str)
    assert msg.content.startswith("Error: unknown tool 'nope'")
    assert "echo" in msg.content


async def test_execute_invalid_args_lists_errors_and_does_not_run() -> None:
    calls: list[str] = []

    @tool
    async def spy(text: str) -> str:
        """Record calls.

        Args:
            text: Anything.
        """
        calls.append(text)
        return text

    registry = ToolRegistry([spy])
    msg = await registry.execute(make_call("spy", {"text": 1, "extra": 2}), timeout_s=1)
    assert msg.status == "error"
    assert isinstance(msg.content, str)
    assert msg.content.startswith("Error: invalid arguments for tool 'spy'")
    assert "$.text: 1 is not of type 'string'" in msg.content
    assert "'extra' was unexpected" in msg.content
    assert '"required": ["text"]' in msg.content  # the schema, so the model can repair
    assert calls == []
    ok = await registry.execute(make_call("spy", {"text": "hi"}), timeout_s=1)
    assert ok.status == "success" and calls == ["hi"]


async def test_execute_exception_becomes_error(registry: ToolRegistry) -> None:
    msg = await registry.execute(make_call("boom", {"reason": "bad input"}), timeout_s=1)
    assert msg.status == "error"
    assert msg.content == (
        "Error: tool 'boom' failed: RuntimeError: kaboom: bad input. "
        "Fix the arguments and call the tool again if that can help."
    )


async def test_execute_calculator_error_reaches_model() -> None:
    msg = await default_registry().execute(
        make_call("calculator", {"expression": "1/0"}), timeout_s=1
    )
    assert msg.status == "error"
    assert isinstance(msg.content, str)
    assert "ValueError: division by zero" in msg.content


async def test_execute_calculator_success() -> None:
    call = make_call("calculator", {"expression": "(1 + 2) * 3"})
    msg = await default_registry().execute(call, timeout_s=1)
    assert (msg.status, msg.content) == ("success", "9")


async def test_execute_timeout(registry: ToolRegistry) -> None:
    start = time.perf_counter()
    msg = await registry.execute(make_call("slow", {"seconds": 30}), timeout_s=0.05)
    assert time.perf_counter() - start < 1
    assert msg.status == "error"
    assert msg.content == (
        "Error: tool 'slow' timed out after 0.05 s. Try a simpler request, "
        "or continue without this tool's result."
    )


async def test_execute_timeout_error_raised_by_tool_is_not_a_timeout() -> None:
    @tool
    async def flaky() -> str:
        """Raise the tool's own timeout."""
        raise TimeoutError("upstream took too long")

    msg = await ToolRegistry([flaky]).execute(make_call("flaky", {}), timeout_s=5)
    assert msg.status == "error"
    assert isinstance(msg.content, str)
    assert "TimeoutError: upstream took too long" in msg.content
    assert "timed out after" not in msg.content


async def test_execute_truncates_long_output(registry: ToolRegistry) -> None:
    call = make_call("echo", {"text": "x", "times": 10_000})
    msg = await registry.execute(call, timeout_s=1, max_output_chars=100)
    assert msg.status == "success"
    assert isinstance(msg.content, str)
    assert len(msg.content) == 100
    assert msg.content.startswith("xxxx")
    assert msg.content.endswith("[truncated: output was 10000 characters]")


async def test_execute_does_not_truncate_short_output(registry: ToolRegistry) -> None:
    call = make_call("echo", {"text": "x", "times": 100})
    msg = await registry.execute(call, timeout_s=1, max_output_chars=100)
    assert msg.content == "x" * 100


async def test_execute_passes_injected_tool_call_id(registry: ToolRegistry) -> None:
    msg = await registry.execute(make_call("whoami", {"prefix": "id="}, "abc"), timeout_s=1)
    assert (msg.status, msg.content) == ("success", "id=abc")


async def test_execute_serialises_structured_output(registry: ToolRegistry) -> None:
    msg = await registry.execute(make_call("structured", {"n": 4}), timeout_s=1)
    assert (msg.status, msg.content) == ("success", '{"n": 4, "square": 16}')


async def test_execute_keeps_error_status_of_handled_tool_errors(registry: ToolRegistry) -> None:
    msg = await registry.execute(make_call("handled", {"x": 1}), timeout_s=1)
    assert (msg.status, msg.content) == ("error", "Error: bad x 1")


async def test_execute_propagates_cancellation() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    @tool
    async def waiter() -> str:
        """Wait until cancelled."""
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    registry = ToolRegistry([waiter])
    task = asyncio.create_task(registry.execute(make_call("waiter", {}), timeout_s=10))
    await asyncio.wait_for(started.wait(), 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.is_set()


@pytest.mark.parametrize(("timeout_s", "max_chars"), [(0, 10), (-1, 10), (1, 0)])
async def test_execute_rejects_bad_limits(
    registry: ToolRegistry, timeout_s: float, max_chars: int
) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        await registry.execute(
            make_call("echo", {"text": "x"}), timeout_s=timeout_s, max_output_chars=max_chars
        )


# --------------------------------------------------------------------------- tool schemas

# Arguments whose value is a name from a fixed vocabulary: examples show its spelling.
VOCABULARY_ARGS = {
    ("current_time", "timezone"),
    ("convert_units", "from_unit"),
    ("convert_units", "to_unit"),
}


def test_no_free_form_argument_offers_an_example_value_to_copy() -> None:
    # Qwen2.5-Coder-1.5B answered "What is 17 * 23?" by calling the calculator with the
    # description's own example, "(17 + 3) * 2 ** 10 / sqrt(16)", and said 5120. A small
    # model copies a complete example value; a free-form argument describes its form only.
    from app.tools.catalog import ALL_TOOLS

    offenders = []
    for tool_ in ALL_TOOLS:
        properties = tool_.tool_call_schema.model_json_schema().get("properties", {})  # type: ignore[union-attr]
        for name, prop in properties.items():
            text = str(prop.get("description", "")).lower()
            if (tool_.name, name) in VOCABULARY_ARGS:
                continue
            if "e.g." in text or "for example" in text or '"' in text or "such as" in text:
                offenders.append(f"{tool_.name}.{name}: {prop.get('description')}")
    assert not offenders, offenders
