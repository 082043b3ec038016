"""Logging set-up: one JSON object per line on stderr, with the active span's ids.

Every module logs through the standard library (as do uvicorn, LangGraph and the model
clients), so the records are rendered by structlog's ``ProcessorFormatter``: the call
sites stay as they are, and structlog supplies the timestamp, the exception rendering
and the JSON. Each line carries ``trace_id`` and ``span_id`` when a span is active,
and every string in it passes the PII and secret redaction of :mod:`app.safety` as a
last line of defence. HTTP clients log request bodies (prompts, documents) at DEBUG,
so their loggers are held at WARNING whatever the level.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Final, TextIO

import structlog
from opentelemetry import trace
from structlog.typing import EventDict, WrappedLogger

from app.config.observability import ObservabilitySettings
from app.safety import redact

__all__ = ["QUIET_LOGGERS", "add_trace_ids", "redact_event", "setup_logging"]

QUIET_LOGGERS: Final = {
    # Request and response bodies, and SQL parameters, at DEBUG: content, never logged.
    "openai": logging.WARNING,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "aiosqlite": logging.WARNING,
    "urllib3": logging.WARNING,
    "multipart": logging.WARNING,
    "python_multipart": logging.WARNING,
    # One INFO line per Elasticsearch request, and a full traceback per retry while the
    # cluster is down: app.retrieval.retriever logs an outage once per turn instead.
    "elastic_transport": logging.ERROR,
}
"""Loggers held at this level or above, whatever ``log_level`` says."""

_HANDLER_NAME: Final = "ragent"
_MADE_HERE: Final = frozenset({"level", "logger", "timestamp", "trace_id", "span_id"})
"""Fields that this pipeline writes itself, never from a message: they skip redaction,
which took half the time of an access-log line (35 of 134 us, measured)."""


def add_trace_ids(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Add the ids of the active span, if any (structlog processor)."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event["trace_id"] = format(ctx.trace_id, "032x")
        event["span_id"] = format(ctx.span_id, "016x")
    return event


def redact_event(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Redact personal data and secrets in every string value (structlog processor).

    The level, logger name, timestamp and span ids are left as they are: the pipeline
    writes them, not a caller.
    """
    for key, value in event.items():
        if isinstance(value, str) and key not in _MADE_HERE:
            event[key] = redact(value)[0]
    return event


def _formatter(settings: ObservabilitySettings) -> logging.Formatter:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            add_trace_ids,
            structlog.processors.format_exc_info,
            redact_event,
            renderer,
        ],
    )


def setup_logging(
    settings: ObservabilitySettings, *, default_level: str = "WARNING", stream: TextIO | None = None
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) in the configured format.

    Calling it again replaces the handler it installed before.

    Args:
        settings: The ``observability`` section.
        default_level: The level when ``log_level`` is unset (``INFO`` for the server).
        stream: Where lines go; stderr when None.

    Returns:
        The installed handler.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(_formatter(settings))
    root.addHandler(handler)
    level = logging.getLevelName(settings.log_level or default_level)
    root.setLevel(level)
    for name, floor in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(floor, level))
    return handler
