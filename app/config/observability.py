"""The ``observability`` section: the trace exporter, logs and what LangSmith runs carry."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["LangSmithContent", "ObservabilitySettings"]

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LangSmithContent = Literal["redacted", "full"]


class ObservabilitySettings(BaseModel):
    """Where spans go and how logs look (``RAGENT_OBSERVABILITY_*`` overrides each key)."""

    model_config = ConfigDict(extra="forbid")

    exporter: Literal["none", "console", "otlp"] = "none"
    """Spans: ``none`` (no spans are made, nothing touches the network), ``console``
    (one JSON line per span on stderr) or ``otlp`` (OTLP over HTTP, batched)."""
    otlp_endpoint: str | None = None
    """The OTLP traces URL, e.g. ``http://collector:4318/v1/traces``. None: the standard
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT`` variables, else
    ``http://localhost:4318/v1/traces``. Headers (credentials) come only from
    ``OTEL_EXPORTER_OTLP_HEADERS``."""
    service_name: str = Field(default="ragent", min_length=1)
    """``service.name`` of the spans' resource."""
    sample_ratio: float = Field(default=1.0, ge=0, le=1)
    """Share of traces recorded (parent-based: a trace is kept or dropped whole)."""
    log_format: Literal["json", "text"] = "json"
    """``json``: one object per line with ``trace_id`` and ``span_id`` of the active span."""
    log_level: LogLevel | None = None
    """None: ``INFO`` for ``ragent serve``, ``WARNING`` for the other commands."""
    langsmith_content: LangSmithContent = "redacted"
    """What runs sent to LangSmith carry (only when ``LANGSMITH_TRACING=true`` or an API key
    is set): ``redacted``, names, timings and the spans' allowlisted attributes, never the
    question, documents, tool arguments or answers; ``full``, everything LangChain records."""

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("otlp_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("otlp_endpoint must be an http:// or https:// URL")
        return value
