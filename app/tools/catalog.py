"""Every built-in tool, and the registry a deployment's settings enable."""

from __future__ import annotations

from typing import Final

from langchain_core.tools import BaseTool

from app.settings import SettingsError, ToolSettings
from app.tools.builtins import calculator, current_time
from app.tools.http import http_get
from app.tools.notes import create_note
from app.tools.policy import resolve_policies
from app.tools.registry import ToolRegistry
from app.tools.risk import risk_of
from app.tools.search import knowledge_search
from app.tools.units import convert_units

__all__ = ["ALL_TOOLS", "build_registry"]

ALL_TOOLS: Final[tuple[BaseTool, ...]] = (
    knowledge_search,
    calculator,
    current_time,
    convert_units,
    http_get,
    create_note,
)
"""The built-in tools, each with its risk class."""


def build_registry(cfg: ToolSettings) -> ToolRegistry:
    """Build the registry of the tools offered to the model: enabled and not denied.

    Args:
        cfg: The ``tools`` settings.

    Returns:
        A registry of the enabled tools, in the order of ``ALL_TOOLS``.

    Raises:
        SettingsError: ``tools.enabled`` or ``tools.policies`` names an unknown tool.
    """
    known = {tool.name: tool for tool in ALL_TOOLS}
    unknown = [name for name in cfg.enabled if name not in known]
    if unknown:
        raise SettingsError(
            f"invalid setting 'tools.enabled': unknown tool {unknown[0]!r} "
            f"(known: {', '.join(known)})"
        )
    policies = resolve_policies({n: risk_of(t) for n, t in known.items()}, cfg.policies)
    chosen = [t for t in ALL_TOOLS if t.name in cfg.enabled and policies[t.name] != "deny"]
    return ToolRegistry(chosen)
