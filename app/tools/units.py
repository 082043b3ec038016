"""Unit conversion with pint: lengths, masses, temperatures, speeds, data sizes, ..."""

from __future__ import annotations

import asyncio
import math
from functools import lru_cache
from typing import Annotated, Any

from langchain_core.tools import tool
from pydantic import Field

from app.tools.risk import with_risk

__all__ = ["convert", "convert_units"]

UnitName = Annotated[str, Field(min_length=1, max_length=64)]


@lru_cache(maxsize=1)
def _registry() -> Any:
    # Building pint's registry parses its definitions file (about half a second): once.
    import pint

    return pint.UnitRegistry(autoconvert_offset_to_baseunit=True)


def convert(value: float, from_unit: str, to_unit: str) -> str:
    """Convert a quantity between units.

    Args:
        value: The amount, in ``from_unit``.
        from_unit: A unit name or expression, e.g. ``km``, ``degF``, ``mile/hour``.
        to_unit: The unit to convert to.

    Returns:
        ``"<value> <from_unit> = <result> <to_unit>"`` with up to 10 significant digits.

    Raises:
        ValueError: A unit is unknown, the units measure different things, or the value
            is not finite.
    """
    import pint

    if not math.isfinite(value):
        raise ValueError("the value must be a finite number")
    ureg = _registry()
    try:
        quantity = ureg.Quantity(value, from_unit)
        result = quantity.to(to_unit)
    except pint.UndefinedUnitError as exc:
        names = exc.unit_names if isinstance(exc.unit_names, tuple) else (exc.unit_names,)
        unknown = ", ".join(repr(str(name)) for name in names)
        raise ValueError(f"unknown unit {unknown}; use names such as km, lb, degC") from None
    except pint.DimensionalityError:
        raise ValueError(
            f"cannot convert {from_unit!r} to {to_unit!r}: they measure different things"
        ) from None
    except (
        pint.PintError,
        ArithmeticError,
        AssertionError,  # pint's expression parser asserts on malformed input
        AttributeError,
        TypeError,
        ValueError,
        SyntaxError,
    ) as exc:
        raise ValueError(
            f"cannot read the units {from_unit!r} and {to_unit!r} ({type(exc).__name__})"
        ) from None
    magnitude = float(result.magnitude)
    if not math.isfinite(magnitude) or (magnitude == 0 and value != 0):
        raise ValueError("the result is too large or too small to represent")
    return f"{value:.10g} {from_unit} = {magnitude:.10g} {to_unit}"


@tool(parse_docstring=True)
async def convert_units(value: float, from_unit: UnitName, to_unit: UnitName) -> str:
    """Convert a quantity from one unit to another (length, mass, temperature, speed, ...).

    Args:
        value: The amount to convert, as the request gives it.
        from_unit: Its unit, e.g. "km", "lb", "degC", "mile/hour", "GiB".
        to_unit: The unit wanted, e.g. "mile", "kg", "degF", "m/s", "MB".
    """
    return await asyncio.to_thread(convert, value, from_unit, to_unit)


with_risk(convert_units, "compute")
