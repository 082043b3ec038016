"""The standard OTEL_* variables set what the observability section leaves unset."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.config.observability import ObservabilitySettings
from app.observability.tracing import setup_tracing, span, tracing_enabled


@pytest.fixture(autouse=True)
def _tracing_off_after(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield
    for name in ("OTEL_SERVICE_NAME", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_EXPORTER"):
        monkeypatch.delenv(name, raising=False)
    setup_tracing(ObservabilitySettings())


def test_otel_service_name_and_sampler_apply_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout-agent")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    exporter = InMemorySpanExporter()
    provider = setup_tracing(ObservabilitySettings(), exporter=exporter)
    assert provider is not None
    assert provider.resource.attributes["service.name"] == "checkout-agent"
    with span("test.request"):
        pass
    assert exporter.get_finished_spans() == ()


def test_configured_keys_win_over_otel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout-agent")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    settings = ObservabilitySettings(service_name="ragent-eu", sample_ratio=1.0, exporter="none")
    assert setup_tracing(settings) is None
    exporter = InMemorySpanExporter()
    provider = setup_tracing(settings, exporter=exporter)
    assert provider is not None and provider.resource.attributes["service.name"] == "ragent-eu"
    with span("test.request"):
        pass
    assert [s.name for s in exporter.get_finished_spans()] == ["test.request"]


def test_otel_traces_exporter_turns_spans_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    provider = setup_tracing(ObservabilitySettings())
    assert tracing_enabled() and provider is not None
    assert provider.resource.attributes["service.name"] == "ragent"
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER='zipkin'"):
        setup_tracing(ObservabilitySettings())
