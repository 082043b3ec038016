"""Set up logs and traces (OpenTelemetry and LangSmith) for a process from its settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.observability.langsmith import setup_langsmith
from app.observability.logs import setup_logging
from app.observability.tracing import setup_tracing

if TYPE_CHECKING:
    from app.settings import Settings

__all__ = ["configure"]


def configure(settings: Settings, *, server: bool = False) -> None:
    """Set up JSON (or text) logs, the configured span exporter and LangSmith's client.

    Args:
        settings: The process's settings (``observability`` section).
        server: The HTTP server logs at ``INFO`` unless a level is set; commands at
            ``WARNING``, so that their output stays theirs.
    """
    setup_logging(settings.observability, default_level="INFO" if server else "WARNING")
    setup_tracing(settings.observability)
    setup_langsmith(settings.observability)
