"""A request span is a SERVER span that continues the caller's W3C trace."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app.observability.tracing import server_span, span

TRACE, PARENT = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def test_a_traceparent_makes_the_request_span_the_callers_child(
    spans: InMemorySpanExporter,
) -> None:
    headers = [
        (b"Traceparent", f"00-{TRACE}-{PARENT}-01".encode()),
        (b"tracestate", b"vendor=abc"),
        (b"baggage", b"user=mallory"),
    ]
    with server_span("http.request", headers, method="POST"), span("node.retrieve"):
        pass
    by_name = {s.name: s for s in spans.get_finished_spans()}
    request, node = by_name["http.request"], by_name["node.retrieve"]
    assert request.kind is SpanKind.SERVER
    assert request.context.trace_id == int(TRACE, 16)
    assert request.parent is not None and request.parent.is_remote
    assert request.parent.span_id == int(PARENT, 16)
    assert request.context.trace_state.get("vendor") == "abc"
    assert node.kind is SpanKind.INTERNAL
    assert node.parent is not None and node.parent.span_id == request.context.span_id


def test_no_or_a_malformed_traceparent_starts_a_new_trace(spans: InMemorySpanExporter) -> None:
    for headers in ([], [(b"traceparent", b"00-zz-not-a-trace-01")]):
        with server_span("http.request", headers):
            pass
    for request in spans.get_finished_spans():
        assert request.kind is SpanKind.SERVER
        assert request.parent is None
        assert request.context.trace_id != int(TRACE, 16)


def test_an_unsampled_caller_is_not_recorded(spans: InMemorySpanExporter) -> None:
    with server_span("http.request", [(b"traceparent", f"00-{TRACE}-{PARENT}-00".encode())]):
        pass
    assert spans.get_finished_spans() == ()
