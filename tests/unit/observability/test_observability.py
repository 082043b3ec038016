"""Spans with allowlisted attributes, JSON logs with trace ids, settings, the OTLP exporter."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import Histogram

from app.config.observability import ObservabilitySettings
from app.observability import logs
from app.observability.logs import setup_logging
from app.observability.metrics import REGISTRY, model_label
from app.observability.tracing import annotate, setup_tracing, span, tracing_enabled
from app.settings import SettingsError, load_settings
from tests.servers import asgi_server


def _json_lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def test_attributes_outside_the_allowlist_are_refused_tracing_on_or_off(
    spans: InMemorySpanExporter,
) -> None:
    with pytest.raises(ValueError, match="question"):
        span("node.x", question="what is my IBAN?")
    with span("node.x", node="x") as s, pytest.raises(ValueError, match="text"):
        s.set(text="document text")
    with pytest.raises(ValueError, match="args"):
        annotate(args="{}")
    setup_tracing(ObservabilitySettings())  # off
    with pytest.raises(ValueError, match="query"):
        span("retrieval.keyword", query="secret question")


def test_spans_carry_allowlisted_keys_and_errors_by_type_only(
    spans: InMemorySpanExporter,
) -> None:
    with pytest.raises(RuntimeError), span("outer", tenant="acme") as outer:
        assert outer.recording
        with span("inner", engine="keyword", depth=20):
            annotate(hits=3, cache_hit=None)
        raise RuntimeError("user wrote alice@example.com")
    finished = {s.name: s for s in spans.get_finished_spans()}
    inner, failed = finished["inner"], finished["outer"]
    assert inner.parent is not None and inner.parent.span_id == failed.context.span_id
    assert (
        dict(inner.attributes or {}).items()
        >= {
            "ragent.engine": "keyword",
            "ragent.depth": 20,
            "ragent.hits": 3,
        }.items()
    )
    assert "ragent.cache_hit" not in (inner.attributes or {})
    assert (failed.attributes or {})["error.type"] == "RuntimeError"
    assert failed.status.description == "RuntimeError"
    assert not failed.events  # no exception event: its message may quote user input
    assert "alice" not in json.dumps([s.to_json() for s in spans.get_finished_spans()])


def test_exporter_none_makes_no_span_but_still_observes_the_histogram() -> None:
    setup_tracing(ObservabilitySettings(exporter="none"))
    assert not tracing_enabled()
    histogram = Histogram("t_obs_seconds", "test", registry=None)
    with span("node.x", observe=histogram, node="x") as s:
        assert not s.recording
    samples = {sample.name: sample.value for sample in histogram.collect()[0].samples}
    assert samples["t_obs_seconds_count"] == 1.0


def test_logs_carry_the_trace_id_of_the_active_span(
    spans: InMemorySpanExporter, log_lines: io.StringIO
) -> None:
    log = logging.getLogger("ragent.test")
    log.info("outside any span")
    with span("node.route", node="route"):
        log.warning("inside the span %d", 1)
    outside, inside = _json_lines(log_lines)
    (finished,) = spans.get_finished_spans()
    assert "trace_id" not in outside
    assert inside["event"] == "inside the span 1"
    assert inside["level"] == "warning" and inside["logger"] == "ragent.test"
    assert inside["trace_id"] == format(finished.context.trace_id, "032x")
    assert inside["span_id"] == format(finished.context.span_id, "016x")
    assert "timestamp" in inside


def test_log_lines_redact_personal_data_secrets_and_exception_messages(
    log_lines: io.StringIO,
) -> None:
    log = logging.getLogger("ragent.test")
    key = "sk-live9f8e7d6c5b4a3f2e1d0c9b8a7"
    try:
        raise ValueError(f"bad key {key}")
    except ValueError:
        log.exception("call from bob@example.org at +44 20 7946 0958 failed")
    (line,) = _json_lines(log_lines)
    text = json.dumps(line)
    assert "bob@example.org" not in text and "7946 0958" not in text and key not in text
    assert "[EMAIL]" in line["event"] and "[PHONE]" in line["event"]
    assert "ValueError" in line["exception"] and "[SECRET]" in line["exception"]


def test_only_the_callers_fields_pass_through_redaction(
    log_lines: io.StringIO, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real = logs.redact
    monkeypatch.setattr(logs, "redact", lambda text: seen.append(text) or real(text))
    with span("node.route", node="route"):
        logging.getLogger("ragent.test").warning("call from bob@example.org")
    (line,) = _json_lines(log_lines)
    assert line["event"] == "call from [EMAIL]" and "trace_id" in line and "timestamp" in line
    assert seen == ["call from bob@example.org"]  # not the level, logger, time or ids


def test_http_client_loggers_stay_quiet_at_debug(log_lines: io.StringIO) -> None:
    logging.getLogger("openai._base_client").debug("Request options: {'messages': ...}")
    logging.getLogger("httpx").info("HTTP Request: POST ...")
    logging.getLogger("ragent.test").debug("kept")
    assert [line["event"] for line in _json_lines(log_lines)] == ["kept"]


def test_text_format_renders_plain_lines() -> None:
    out = io.StringIO()
    handler = setup_logging(ObservabilitySettings(log_format="text"), stream=out)
    try:
        logging.getLogger("ragent.test").error("plain %s", "line")
    finally:
        logging.getLogger().removeHandler(handler)
    assert "plain line" in out.getvalue() and not out.getvalue().startswith("{")


def test_settings_section_with_environment_overrides(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGENT_DATA_DIR", str(tmp_path))
    default = load_settings().observability
    assert (default.exporter, default.log_format, default.log_level) == ("none", "json", None)
    monkeypatch.setenv("RAGENT_OBSERVABILITY_EXPORTER", "otlp")
    monkeypatch.setenv("RAGENT_OBSERVABILITY_OTLP_ENDPOINT", "http://collector:4318/v1/traces")
    monkeypatch.setenv("RAGENT_OBSERVABILITY_LOG_LEVEL", "debug")
    configured = load_settings().observability
    assert configured.exporter == "otlp" and configured.log_level == "DEBUG"
    assert configured.otlp_endpoint == "http://collector:4318/v1/traces"
    monkeypatch.setenv("RAGENT_OBSERVABILITY_EXPORTER", "jaeger")
    with pytest.raises(SettingsError, match="observability.exporter"):
        load_settings()


def test_model_labels_drop_credentials_from_urls() -> None:
    assert model_label("qwen@http://user:pw@vllm:8000/v1") == "qwen@http://vllm:8000/v1"
    assert model_label("offline") == "offline"


def test_otlp_exporter_sends_spans_to_a_collector() -> None:
    received: list[ExportTraceServiceRequest] = []
    collector = FastAPI()

    @collector.post("/v1/traces")
    async def traces(request: Request) -> Response:
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.body())
        received.append(message)
        return Response(b"", media_type="application/x-protobuf")

    with asgi_server(collector) as url:
        settings = ObservabilitySettings(
            exporter="otlp", otlp_endpoint=f"{url}/v1/traces", service_name="ragent-test"
        )
        provider = setup_tracing(settings)
        assert provider is not None
        with span("node.retrieve", node="retrieve", tenant="acme"):
            pass
        provider.force_flush()
        setup_tracing(ObservabilitySettings())
    (resource_spans,) = [rs for m in received for rs in m.resource_spans]
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert service["service.name"] == "ragent-test"
    (sent,) = [s for ss in resource_spans.scope_spans for s in ss.spans]
    attributes = {a.key: a.value.string_value for a in sent.attributes}
    assert sent.name == "node.retrieve" and attributes["ragent.tenant"] == "acme"


def test_process_metrics_registry_holds_every_family() -> None:
    names = {m.name for m in REGISTRY.collect()}
    assert {
        "ragent_node_seconds",
        "ragent_retrieval_seconds",
        "ragent_query_cache",
        "ragent_model_call_seconds",
        "ragent_model_time_to_first_token_seconds",
        "ragent_model_tokens",
        "ragent_model_fallbacks",
        "ragent_tool_calls",
        "ragent_errors",
    } <= names
