"""Tools the agent can call, and the registry that validates and runs them."""

from app.tools.builtins import BUILTIN_TOOLS, calculator, current_time, evaluate_expression
from app.tools.registry import ToolRegistry, default_registry

__all__ = [
    "BUILTIN_TOOLS",
    "ToolRegistry",
    "calculator",
    "current_time",
    "default_registry",
    "evaluate_expression",
]
