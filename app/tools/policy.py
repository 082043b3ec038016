"""Per-tool policies: allow, require approval, or deny; defaults follow the risk class."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from app.settings import SettingsError, ToolPolicy
from app.tools.risk import Risk

__all__ = ["DEFAULT_POLICY", "resolve_policies"]

DEFAULT_POLICY: Final[Mapping[Risk, ToolPolicy]] = {
    "read": "allow",
    "compute": "allow",
    "write": "require_approval",
}
"""The policy of a tool that ``tools.policies`` does not name."""


def resolve_policies(
    risks: Mapping[str, Risk], configured: Mapping[str, ToolPolicy]
) -> dict[str, ToolPolicy]:
    """Give every known tool its policy: the configured one, else its risk class default.

    Args:
        risks: Every known tool's risk class, by name.
        configured: ``tools.policies`` from the settings.

    Returns:
        The policy of every tool in ``risks``.

    Raises:
        SettingsError: ``configured`` names a tool that does not exist.
    """
    unknown = sorted(set(configured) - set(risks))
    if unknown:
        raise SettingsError(
            f"invalid setting 'tools.policies': unknown tool {unknown[0]!r} "
            f"(known: {', '.join(sorted(risks))})"
        )
    return {name: configured.get(name, DEFAULT_POLICY[risk]) for name, risk in risks.items()}
