"""Built-in tools the agent can call: a safe calculator and a clock.

Each tool is a plain async function wrapped by LangChain's ``@tool``; its Google-style
docstring (summary plus ``Args:``) is what the model reads when it decides to call it.
"""

from __future__ import annotations

import ast
import asyncio
import math
import operator
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from langchain_core.tools import BaseTool, tool

from app.tools.risk import with_risk

MAX_EXPRESSION_CHARS: Final = 500
"""Longest expression the calculator accepts."""

MAX_NODES: Final = 200
"""Most syntax-tree nodes an expression may have; also bounds evaluation depth."""

MAX_EXPONENT: Final = 1000
"""Largest absolute exponent allowed in ``**``."""

MAX_ROUND_DIGITS: Final = 100
"""Largest absolute ``ndigits`` for ``round``; ``round(5, -10**7)`` would take seconds."""

MAX_INT_BITS: Final = 4096
"""Largest integer (in bits, about 1,233 decimal digits) any intermediate result may reach."""

_Number = int | float

_BINARY_OPS: Final[dict[type[ast.operator], Callable[[Any, Any], Any]]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}

_UNARY_OPS: Final[dict[type[ast.unaryop], Callable[[Any], Any]]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def _round(*args: _Number) -> _Number:
    """``round`` with a bounded ``ndigits`` so it cannot be used for denial of service."""
    if len(args) not in (1, 2):
        raise TypeError(f"round() takes 1 or 2 arguments ({len(args)} given)")
    if len(args) == 1:
        return round(args[0])
    number, ndigits = args
    if isinstance(ndigits, bool) or not isinstance(ndigits, int):
        raise TypeError("ndigits must be an integer")
    if abs(ndigits) > MAX_ROUND_DIGITS:
        raise TypeError(f"ndigits must be between -{MAX_ROUND_DIGITS} and {MAX_ROUND_DIGITS}")
    return round(number, ndigits)


_FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {
    "sqrt": math.sqrt,
    "log": math.log,
    "log10": math.log10,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "abs": abs,
    "round": _round,
    "floor": math.floor,
    "ceil": math.ceil,
}

_CONSTANTS: Final[dict[str, float]] = {"pi": math.pi, "e": math.e}


def _check_magnitude(value: object) -> _Number:
    """Reject results that are not finite real numbers or are absurdly large integers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("the result is not a real number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("the result is too large (not a finite number)")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ValueError(f"the result is too large (more than {MAX_INT_BITS} bits)")
    return value


def _power(base: _Number, exponent: _Number) -> _Number:
    """Compute ``base ** exponent`` after checking it cannot blow up."""
    if abs(exponent) > MAX_EXPONENT:
        raise ValueError(f"exponent {exponent} is too large (the limit is {MAX_EXPONENT})")
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        # Estimate the result size before computing it, so huge powers fail fast.
        if (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS:
            raise ValueError(f"the result is too large (more than {MAX_INT_BITS} bits)")
    result: object = operator.pow(base, exponent)
    return _check_magnitude(result)


def _evaluate(node: ast.AST) -> _Number:
    """Evaluate one whitelisted syntax-tree node."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise ValueError(f"unsupported literal {node.value!r}; only numbers are allowed")
        return _check_magnitude(node.value)
    if isinstance(node, ast.BinOp):
        binary = _BINARY_OPS.get(type(node.op))
        if binary is None:
            raise ValueError(f"unsupported operator {type(node.op).__name__}")
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow):
            return _power(left, right)
        return _check_magnitude(binary(left, right))
    if isinstance(node, ast.UnaryOp):
        unary = _UNARY_OPS.get(type(node.op))
        if unary is None:
            raise ValueError(f"unsupported operator {type(node.op).__name__}")
        return _check_magnitude(unary(_evaluate(node.operand)))
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ValueError(f"unknown name {node.id!r}; allowed constants: {', '.join(_CONSTANTS)}")
    if isinstance(node, ast.Call):
        return _call(node)
    raise ValueError(f"unsupported syntax: {type(node).__name__}")


def _call(node: ast.Call) -> _Number:
    """Evaluate a call to a whitelisted math function."""
    if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
        what = node.func.id if isinstance(node.func, ast.Name) else type(node.func).__name__
        raise ValueError(
            f"unsupported function {what!r}; allowed functions: {', '.join(_FUNCTIONS)}"
        )
    name = node.func.id
    if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
        raise ValueError(f"{name}() takes positional numeric arguments only")
    args = [_evaluate(arg) for arg in node.args]
    try:
        result: object = _FUNCTIONS[name](*args)
    except TypeError as exc:
        raise ValueError(f"bad arguments to {name}(): {exc}") from exc
    except ValueError as exc:  # math domain errors, e.g. sqrt(-1) or log(0)
        raise ValueError(f"{name}() is undefined for these arguments ({exc})") from exc
    return _check_magnitude(result)


def _format_number(value: _Number) -> str:
    """Render ints exactly and floats with up to 12 significant digits."""
    if isinstance(value, int):
        return str(value)
    if value == 0:
        return "0"  # also turns -0.0 into 0
    return f"{value:.12g}"


def evaluate_expression(expression: str) -> str:
    """Safely evaluate an arithmetic expression without ``eval``.

    Args:
        expression: Arithmetic such as ``"2 * (3 + 4) ** 2"`` or ``"sqrt(2) / 2"``.

    Returns:
        The result, formatted as an exact integer or a float with up to 12 significant
        digits.

    Raises:
        ValueError: The expression is too long or too complex, has a syntax error, uses
            anything outside the whitelist, divides by zero, or its result is too large.
    """
    text = expression.strip()
    if not text:
        raise ValueError("the expression is empty")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ValueError(
            f"the expression is too long ({len(text)} characters; "
            f"the limit is {MAX_EXPRESSION_CHARS})"
        )
    # "^" is a power, as on calculators and in maths notation (models write "2^10"):
    # bitwise operators are outside the whitelist, and "**" keeps the power's precedence.
    text = text.replace("^", "**")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"invalid syntax in expression {text!r}: {exc.msg}") from exc
    node_count = sum(1 for _ in ast.walk(tree))
    if node_count > MAX_NODES:
        raise ValueError(
            f"the expression is too complex ({node_count} syntax nodes; the limit is {MAX_NODES})"
        )
    try:
        value = _evaluate(tree)
    except ZeroDivisionError as exc:
        raise ValueError("division by zero") from exc
    except OverflowError as exc:
        raise ValueError("the result is too large") from exc
    return _format_number(value)


@tool(parse_docstring=True)
async def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression; use it for any calculation instead of mental maths.

    Supports numbers, + - * / // % ** or ^ (exponent at most 1000), unary minus, parentheses,
    the functions sqrt, log (natural, or log(x, base)), log10, exp, sin, cos, tan (radians),
    abs, round, floor, ceil, and the constants pi and e. No variables or other Python.

    Args:
        expression: The expression to evaluate, built from the numbers of the request.
    """
    return evaluate_expression(expression)


@tool(parse_docstring=True)
async def current_time(timezone: str = "UTC") -> str:
    """Get the current date and time as an ISO-8601 timestamp with its UTC offset.

    Args:
        timezone: IANA time zone name, e.g. "UTC", "Europe/Paris" or "America/New_York".
    """
    try:
        zone = await asyncio.to_thread(ZoneInfo, timezone)  # the first use reads a file
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {timezone!r}; use an IANA name such as 'UTC' or 'Europe/Paris'"
        ) from exc
    return datetime.now(zone).isoformat(timespec="seconds")


with_risk(calculator, "compute")
with_risk(current_time, "read")

BUILTIN_TOOLS: Final[tuple[BaseTool, ...]] = (calculator, current_time)
"""The offline core: tools that need nothing but their arguments."""
