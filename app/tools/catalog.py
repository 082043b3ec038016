"""Every built-in tool, and the registry a deployment's settings enable."""

from __future__ import annotations

import logging
from collections.abc import Sequence
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

logger = logging.getLogger(__name__)

ALL_TOOLS: Final[tuple[BaseTool, ...]] = (
    knowledge_search,
    calculator,
    current_time,
    convert_units,
    http_get,
    create_note,
)
"""The built-in tools, each with its risk class."""


def build_registry(cfg: ToolSettings, extra: Sequence[BaseTool] = ()) -> ToolRegistry:
    """Build the registry of the tools offered to the model: enabled and not denied.

    Args:
        cfg: The ``tools`` settings.
        extra: Tools from elsewhere (MCP servers), all offered; their policy follows
            their risk class (``tools.policies`` names built-in tools only).

    Returns:
        A registry of the enabled built-in tools, in the order of ``ALL_TOOLS``, then
        the extra tools.

    Raises:
        SettingsError: ``tools.enabled`` or ``tools.policies`` names an unknown built-in
            tool. An extra tool whose name is taken is left out, with a warning.
    """
    known = {tool.name: tool for tool in ALL_TOOLS}
    taken = set(known)
    added: list[BaseTool] = []
    for tool in extra:
        if tool.name in taken:  # a remote server's list may change: never fail the start
            logger.warning("tool %r left out: another tool has that name", tool.name)
            continue
        taken.add(tool.name)
        added.append(tool)
    unknown = [name for name in cfg.enabled if name not in known]
    if unknown:
        raise SettingsError(
            f"invalid setting 'tools.enabled': unknown tool {unknown[0]!r} "
            f"(known: {', '.join(known)})"
        )
    policies = resolve_policies({n: risk_of(t) for n, t in known.items()}, cfg.policies)
    chosen = [t for t in ALL_TOOLS if t.name in cfg.enabled and policies[t.name] != "deny"]
    return ToolRegistry([*chosen, *added])
