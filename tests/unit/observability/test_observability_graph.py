"""A real ask through the graph: a span per node and engine, and nothing of the user's in them."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.context import Context
from app.graphs.agent import compile_agent
from app.ingest.pipeline import IngestOptions
from app.observability.metrics import REGISTRY
from app.observability.tracing import span
from app.resources import Resources
from app.turns import ask
from tests.fakes import small_ingestor

NODES = ["guard_input", "load_memory", "route", "retrieve", "respond", "guard_output"]
EMAIL, PHONE = "mallory.quokka@example.net", "+1 415 555 0142"
KEY = "sk-proj4f9a8b7c6d5e4f3a2b1c0d9e8"
CANARY = "zanzibarquokka"
DOC = (
    f"The {CANARY} cluster checkpoints its WAL every 1000 pages. Contact {EMAIL} or call "
    f"{PHONE} for access; the deploy key is {KEY}."
)


@pytest.fixture
def corpus(resources: Resources, tmp_path_factory: pytest.TempPathFactory) -> Resources:
    docs = tmp_path_factory.mktemp("docs")
    (docs / "cluster.txt").write_text(DOC)
    small_ingestor(resources).ingest(
        [docs], IngestOptions(tenant_id="acme", workers=0, progress=False)
    )
    return resources


def _by_name(exported: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    out: dict[str, list[ReadableSpan]] = {}
    for s in exported:
        out.setdefault(s.name, []).append(s)
    return out


def _sample(name: str, **labels: str) -> float:
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


async def test_an_ask_makes_a_span_per_node_and_engine_in_one_trace(
    corpus: Resources, spans: InMemorySpanExporter
) -> None:
    agent = compile_agent(InMemorySaver())
    retrieved = _sample("ragent_node_seconds_count", node="retrieve")
    with span("test.request"):
        answer = await ask(
            agent,
            "How often does the cluster checkpoint the WAL?",
            context=Context(tenant_id="acme", user_id="ann"),
            thread_id="t",
            max_chars=8000,
        )
    assert "1000 pages" in answer.answer
    named = _by_name(spans.get_finished_spans())
    (root,) = named["test.request"]
    for node in NODES:
        (node_span,) = named[f"node.{node}"]
        assert node_span.context.trace_id == root.context.trace_id
        assert (
            dict(node_span.attributes or {}).items()
            >= {
                "ragent.node": node,
                "ragent.tenant": "acme",
            }.items()
        )
        assert (node_span.attributes or {})["ragent.latency_ms"] >= 0
    retrieve = named["node.retrieve"][0]
    assert (retrieve.attributes or {})["ragent.hits"] >= 1
    assert (named["node.route"][0].attributes or {})["ragent.route"] == "rag"
    respond = named["node.respond"][0].attributes or {}
    assert respond["ragent.tier"] in {"small", "large", "code"}
    assert respond["gen_ai.usage.output_tokens"] > 0
    for engine in ("embed", "vector", "keyword"):
        (engine_span,) = named[f"retrieval.{engine}"]
        assert engine_span.parent is not None
        assert engine_span.parent.span_id == retrieve.context.span_id
        assert (engine_span.attributes or {})["ragent.engine"] == engine
    assert (named["retrieval.keyword"][0].attributes or {})["ragent.hits"] >= 1
    assert _sample("ragent_node_seconds_count", node="retrieve") == retrieved + 1


async def test_tool_calls_get_spans_and_outcome_counts(
    corpus: Resources, spans: InMemorySpanExporter
) -> None:
    agent = compile_agent(InMemorySaver())
    before = _sample("ragent_tool_calls_total", tool="calculator", outcome="ok")
    context = Context(tenant_id="acme", user_id="ann")
    answer = await ask(agent, "what is 12*(7+3)?", context=context, thread_id="c", max_chars=8000)
    assert "120" in answer.answer
    (tool,) = _by_name(spans.get_finished_spans())["tool.call"]
    assert (
        dict(tool.attributes or {}).items()
        >= {
            "ragent.tool": "calculator",
            "ragent.outcome": "ok",
        }.items()
    )
    assert tool.parent is not None
    (execute,) = _by_name(spans.get_finished_spans())["node.execute_tools"]
    assert tool.parent.span_id == execute.context.span_id
    assert _sample("ragent_tool_calls_total", tool="calculator", outcome="ok") == before + 1


def _strings(exported: tuple[ReadableSpan, ...]) -> list[str]:
    out: list[str] = []
    for s in exported:
        out.append(s.name)
        out += [str(v) for v in (s.attributes or {}).values()]
        for event in s.events:
            out.append(event.name)
            out += [str(v) for v in (event.attributes or {}).values()]
        out.append(str(s.status.description))
    return out


async def test_planted_personal_data_and_secrets_reach_no_span_and_no_log_line(
    corpus: Resources, spans: InMemorySpanExporter, log_lines: io.StringIO
) -> None:
    agent = compile_agent(InMemorySaver())
    question = f"I am {EMAIL}, phone {PHONE}, key {KEY}. How often does the {CANARY} cluster?"
    arithmetic = f"{EMAIL} {PHONE} {KEY} what is 2+2?"
    context = Context(tenant_id="acme", user_id=EMAIL)
    with span("test.request"):
        for text in (question, arithmetic):
            await ask(agent, text, context=context, thread_id="leak", max_chars=8000)
        logging.getLogger("ragent.test").debug("asked %s", question)  # a careless log line
    exported = spans.get_finished_spans()
    assert {"node.retrieve", "node.respond", "retrieval.keyword", "tool.call"} <= {
        s.name for s in exported
    }
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    assert any(line.get("logger") == "ragent.audit" for line in lines)  # the tool was audited
    everything = "\n".join(_strings(exported)) + "\n" + log_lines.getvalue()
    for planted in (EMAIL, PHONE, KEY, "mallory", "555 0142", "sk-proj4f9a"):
        assert planted not in everything
    assert CANARY not in "\n".join(_strings(exported))  # no question or document text in spans
    for s in exported:
        assert set(s.attributes or {}) <= _ALLOWED_KEYS, s.name


_ALLOWED_KEYS: set[Any] = set()


@pytest.fixture(autouse=True)
def _allowed_keys() -> None:
    from app.observability.tracing import ATTRIBUTES

    _ALLOWED_KEYS.clear()
    _ALLOWED_KEYS.update(ATTRIBUTES.values(), {"ragent.latency_ms"})
