"""The standard ``OTEL_*`` variables, for the ``observability`` keys a configuration leaves unset.

A key set in the configuration (file, profile or ``RAGENT_OBSERVABILITY_*``) wins; else
the OpenTelemetry variable; else ragent's default. ``OTEL_EXPORTER_OTLP_*`` (endpoint,
headers, timeout) are read by the OTLP exporter itself.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal

from app.config.observability import ObservabilitySettings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.sampling import Sampler

__all__ = ["exporter_kind", "sampler", "service_name"]

ExporterKind = Literal["none", "console", "otlp"]
_KINDS: tuple[ExporterKind, ...] = ("none", "console", "otlp")


def exporter_kind(settings: ObservabilitySettings) -> ExporterKind:
    """Return the span exporter: ``observability.exporter``, else ``OTEL_TRACES_EXPORTER``.

    Raises:
        ValueError: ``OTEL_TRACES_EXPORTER`` names an exporter ragent does not ship.
    """
    if "exporter" in settings.model_fields_set:
        return settings.exporter
    named = os.environ.get("OTEL_TRACES_EXPORTER", "").split(",")[0].strip().lower()
    if not named:
        return settings.exporter
    if named not in _KINDS:
        raise ValueError(f"OTEL_TRACES_EXPORTER={named!r}: use one of {', '.join(_KINDS)}")
    return named


def service_name(settings: ObservabilitySettings) -> str:
    """Return ``observability.service_name``, else ``OTEL_SERVICE_NAME``, else ``ragent``."""
    if "service_name" in settings.model_fields_set:
        return settings.service_name
    return os.environ.get("OTEL_SERVICE_NAME", "").strip() or settings.service_name


def sampler(settings: ObservabilitySettings) -> Sampler | None:
    """Return the sampler: parent-based ``observability.sample_ratio`` when set.

    Returns:
        None when the ratio is unset and ``OTEL_TRACES_SAMPLER`` is set: the SDK then
        builds the sampler from ``OTEL_TRACES_SAMPLER`` and ``OTEL_TRACES_SAMPLER_ARG``.
    """
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    if "sample_ratio" not in settings.model_fields_set and os.environ.get("OTEL_TRACES_SAMPLER"):
        return None
    return ParentBased(TraceIdRatioBased(settings.sample_ratio))
