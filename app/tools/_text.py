"""Text helpers shared by the tool registry and the tool node: shorten, cap, stringify."""

from __future__ import annotations

import json
from typing import Any, Final

__all__ = ["MAX_ERROR_DETAIL_CHARS", "cap", "shorten", "stringify"]

MAX_ERROR_DETAIL_CHARS: Final = 300
"""Longest single validation or exception message put into an error ``ToolMessage``."""


def shorten(text: str, limit: int = MAX_ERROR_DETAIL_CHARS) -> str:
    """Cut ``text`` to ``limit`` characters, ending with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def cap(text: str, max_chars: int) -> str:
    """Cap ``text`` to ``max_chars`` characters, replacing the tail with a truncation notice."""
    if len(text) <= max_chars:
        return text
    suffix = f"\n[truncated: output was {len(text)} characters]"
    keep = max_chars - len(suffix)
    if keep <= 0:
        return text[:max_chars]
    return text[:keep] + suffix


def stringify(content: Any) -> str:
    """Turn tool output into text for the model."""
    if isinstance(content, str):
        return content
    try:
        return json.dumps(content, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(content)
