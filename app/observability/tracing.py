"""OpenTelemetry spans with allowlisted attributes, cheap when tracing is off.

:func:`span` times a block, feeds an optional histogram and, when tracing is on, makes
a span. Attributes are keyword arguments whose names must be in :data:`ATTRIBUTES`, so
no question, document text, tool argument or output can reach a span by accident: a
name outside the list raises at once, tracing on or off. Exceptions are recorded by
type only (their messages may quote user input).

With the ``none`` exporter no tracer is kept at all: a span costs two clock reads.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Final

from langgraph.errors import GraphBubbleUp
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from app.config.observability import ObservabilitySettings
from app.observability import otel_env
from app.observability.metrics import RETRIEVAL_SECONDS

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from prometheus_client.metrics import Histogram

__all__ = [
    "ATTRIBUTES",
    "Span",
    "annotate",
    "engine_span",
    "server_span",
    "setup_tracing",
    "span",
    "tracing_enabled",
]

AttributeValue = str | bool | int | float

ATTRIBUTES: Final[dict[str, str]] = {
    "node": "ragent.node",
    "tenant": "ragent.tenant",
    "route": "ragent.route",
    "tier": "ragent.tier",
    "hits": "ragent.hits",
    "depth": "ragent.depth",
    "engine": "ragent.engine",
    "cache_hit": "ragent.cache_hit",
    "operation": "gen_ai.operation.name",
    "provider": "gen_ai.provider.name",
    "model": "gen_ai.request.model",
    "served_by": "gen_ai.response.model",
    "tokens_in": "gen_ai.usage.input_tokens",
    "tokens_out": "gen_ai.usage.output_tokens",
    "cost": "ragent.cost",
    "ttft_ms": "ragent.ttft_ms",
    "attempt": "ragent.attempt",
    "fallbacks": "ragent.fallbacks",
    "tool": "ragent.tool",
    "tool_calls": "ragent.tool_calls",
    "recovered_tool_calls": "ragent.recovered_tool_calls",
    "outcome": "ragent.outcome",
    "error": "error.type",
    "status": "http.response.status_code",
    "method": "http.request.method",
    "http_route": "http.route",
}
"""Every attribute a span may carry: keyword name -> OpenTelemetry key. Ids, names,
counts and kinds only; the tenant id is pseudonymised by the caller when it is PII."""

_MAX_STR: Final = 200


@dataclass
class _State:
    tracer: Tracer | None = None
    provider: TracerProvider | None = None


_STATE = _State()


def tracing_enabled() -> bool:
    """Whether spans are being made (an exporter other than ``none`` is set up)."""
    return _STATE.tracer is not None


def _check(attributes: dict[str, AttributeValue | None]) -> None:
    if not ATTRIBUTES.keys() >= attributes.keys():
        unknown = sorted(set(attributes) - ATTRIBUTES.keys())
        raise ValueError(f"span attributes not in the allowlist: {', '.join(unknown)}")


def _otel(attributes: dict[str, AttributeValue | None]) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        if value is None:
            continue
        if isinstance(value, str) and len(value) > _MAX_STR:
            value = value[:_MAX_STR]
        out[ATTRIBUTES[key]] = value
    return out


class Span:
    """A timed block; a recording OpenTelemetry span inside it when tracing is on."""

    __slots__ = (
        "_attributes",
        "_headers",
        "_kind",
        "_name",
        "_observe",
        "_otel",
        "_started",
        "_token",
    )

    def __init__(
        self,
        name: str,
        observe: Histogram | None,
        attributes: dict[str, AttributeValue | None],
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        """Prepare the block; see :func:`span` and :func:`server_span`."""
        _check(attributes)
        self._kind = kind
        self._headers = headers
        self._name = name
        self._observe = observe
        self._attributes = attributes
        self._otel: trace.Span | None = None
        self._token: object = None
        self._started = 0.0

    @property
    def recording(self) -> bool:
        """Whether attributes set now are kept (compute costly ones only then)."""
        return self._otel is not None and self._otel.is_recording()

    def set(self, **attributes: AttributeValue | None) -> None:
        """Add allowlisted attributes (None values are skipped)."""
        _check(attributes)
        if self._otel is not None and self._otel.is_recording():
            self._otel.set_attributes(_otel(attributes))

    def __enter__(self) -> Span:
        """Start the clock and, when tracing is on, the span (made current)."""
        tracer = _STATE.tracer
        if tracer is not None:
            self._otel = tracer.start_span(
                self._name,
                context=_caller(self._headers),
                kind=self._kind,
                attributes=_otel(self._attributes),
            )
            self._token = otel_context.attach(trace.set_span_in_context(self._otel))
        self._started = perf_counter()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the clock, observe the histogram, and end the span with its status."""
        elapsed = perf_counter() - self._started
        if self._observe is not None:
            self._observe.observe(elapsed)
        otel = self._otel
        if otel is None:
            return
        ending: dict[str, AttributeValue] = {"ragent.latency_ms": round(elapsed * 1000, 3)}
        if exc is not None and isinstance(exc, Exception):
            if isinstance(exc, GraphBubbleUp):  # an interrupt (approval): not a failure
                ending[ATTRIBUTES["outcome"]] = "interrupted"
            else:
                ending[ATTRIBUTES["error"]] = type(exc).__name__
                otel.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        otel.set_attributes(ending)
        otel_context.detach(self._token)  # type: ignore[arg-type]
        otel.end()


def span(
    name: str, *, observe: Histogram | None = None, **attributes: AttributeValue | None
) -> Span:
    """Time a block as a span named ``name``.

    Args:
        name: The span name (low cardinality: ``node.retrieve``, ``retrieval.vector``).
        observe: A histogram (with its labels bound) that gets the block's seconds.
        **attributes: Allowlisted attributes (:data:`ATTRIBUTES`); None values are skipped.

    Returns:
        A context manager; ``with span(...) as s: s.set(hits=3)``.

    Raises:
        ValueError: An attribute name is not in the allowlist.
    """
    return Span(name, observe, attributes)


def server_span(
    name: str, headers: Iterable[tuple[bytes, bytes]], **attributes: AttributeValue | None
) -> Span:
    """Time a request as a SERVER span that continues the caller's W3C trace, if any.

    Args:
        name: The span name.
        headers: The request's raw headers (ASGI's ``scope["headers"]``); a valid
            ``traceparent`` (and its ``tracestate``) makes the span its child.
        **attributes: Allowlisted attributes (:data:`ATTRIBUTES`).

    Returns:
        A :class:`Span` of kind SERVER.
    """
    return Span(name, None, attributes, kind=SpanKind.SERVER, headers=headers)


_TRACE_HEADERS: Final = frozenset({b"traceparent", b"tracestate"})
_W3C: Final = TraceContextTextMapPropagator()


def _caller(headers: Iterable[tuple[bytes, bytes]]) -> otel_context.Context | None:
    # W3C trace context only, not the global propagators: baggage may carry user data.
    carrier = {
        k.lower().decode("latin-1"): v.decode("latin-1")
        for k, v in headers
        if k.lower() in _TRACE_HEADERS
    }
    return _W3C.extract(carrier) if carrier else None


def annotate(**attributes: AttributeValue | None) -> None:
    """Add allowlisted attributes to the current span, if one is recording.

    Raises:
        ValueError: An attribute name is not in the allowlist.
    """
    _check(attributes)
    if _STATE.tracer is None:
        return
    current = trace.get_current_span()
    if current.is_recording():
        current.set_attributes(_otel(attributes))


def _exporter(settings: ObservabilitySettings) -> SpanExporter:
    if otel_env.exporter_kind(settings) == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        # One line per span on stderr: stdout belongs to the CLI's answers.
        return ConsoleSpanExporter(
            out=sys.stderr, formatter=lambda s: s.to_json(indent=None) + "\n"
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=settings.otlp_endpoint)


def setup_tracing(
    settings: ObservabilitySettings, *, exporter: SpanExporter | None = None, batch: bool = False
) -> TracerProvider | None:
    """Set up spans from settings, replacing any earlier set-up of this process.

    Keys the settings leave unset follow the standard ``OTEL_*`` variables
    (:mod:`app.observability.otel_env`).

    Args:
        settings: The ``observability`` section.
        exporter: Use this exporter instead of the configured one (tests pass an
            in-memory exporter); spans are then exported synchronously...
        batch: ...unless this is set: then in batches, as ``otlp`` exports them.

    Returns:
        The tracer provider, or None when tracing is off.
    """
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    previous = _STATE.provider
    _STATE.tracer, _STATE.provider = None, None
    if previous is not None:
        previous.shutdown()
    kind = otel_env.exporter_kind(settings)
    if exporter is None and kind == "none":
        return None
    provider = TracerProvider(
        resource=Resource.create({"service.name": otel_env.service_name(settings)}),
        sampler=otel_env.sampler(settings),
        shutdown_on_exit=True,
    )
    chosen = exporter or _exporter(settings)
    if batch or (exporter is None and kind == "otlp"):
        provider.add_span_processor(BatchSpanProcessor(chosen))
    else:
        provider.add_span_processor(SimpleSpanProcessor(chosen))
    _STATE.provider = provider
    _STATE.tracer = provider.get_tracer("ragent")
    return provider


def engine_span(engine: str, depth: int | None = None) -> Span:
    """Time one retrieval engine call into ``ragent_retrieval_seconds`` and a span.

    Args:
        engine: ``embed``, ``vector``, ``keyword`` or ``rerank``.
        depth: Candidates asked for, if any.

    Returns:
        A ``retrieval.<engine>`` :class:`Span`.
    """
    return Span(
        f"retrieval.{engine}", _engine_histogram(engine), {"engine": engine, "depth": depth}
    )


@lru_cache(maxsize=16)
def _engine_histogram(engine: str) -> Histogram:
    return RETRIEVAL_SECONDS.labels(engine)
