"""A real ``ragent serve`` logs and traces at DEBUG, yet planted secrets reach neither.

An e-mail address, a phone number and an API key are planted in an uploaded document and
in chat requests (JSON and streamed). The server's whole output (JSON log lines, and one
JSON line per span from the console exporter) must hold none of them, nor the question's
or the document's own words in any span.
"""

from __future__ import annotations

import time
from typing import Any

from tests.e2e.observed_fixtures import (  # noqa: F401 - fixtures
    BACKUP,
    PRIMARY,
    Observed,
    models_fixture,
    observed_fixture,
)
from tests.openai_server import Fail, OpenAIServer, Reply

EMAIL, PHONE = "mallory.quokka@example.net", "+1 415 555 0142"
KEY = "sk-proj4f9a8b7c6d5e4f3a2b1c0d9e8"
PLANTED = (EMAIL, PHONE, KEY, "mallory", "555 0142", "sk-proj4f9a")
CANARY = "zanzibarquokka"
DOC = (
    f"# Quokka cluster\n\nThe {CANARY} cluster is rebuilt every Friday. Its owner is {EMAIL}, "
    f"on call at {PHONE}, and its deploy key is {KEY}.\n"
)


def _ingest(observed: Observed, key: str) -> None:
    with observed.http(key) as client:
        files = {"files": ("quokka.md", DOC.encode(), "text/markdown")}
        job = client.post("/v1/ingest", files=files).json()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = client.get(f"/v1/jobs/{job['id']}").json()
            if status["status"] in {"succeeded", "failed"}:
                break
            time.sleep(0.2)
    assert status["status"] == "succeeded", status


def _spans(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if "context" in r and "attributes" in r and "name" in r]


def test_planted_pii_and_secrets_reach_no_log_line_and_no_span(
    observed: Observed, models: OpenAIServer
) -> None:
    key = observed.key("quinn")
    start = len(observed.log)
    _ingest(observed, key)
    question = f"I am {EMAIL}, call me on {PHONE}, my key is {KEY}. When is {CANARY} rebuilt?"
    models.plan(PRIMARY, Fail(503))
    models.plan(BACKUP, Reply("It is rebuilt every Friday [S1]."))
    with observed.http(key) as client:
        body = {"model": "ragent", "messages": [{"role": "user", "content": question}]}
        assert client.post("/v1/chat/completions", json=body).status_code == 200
        streamed = {**body, "stream": True}
        with client.stream("POST", "/v1/chat/completions", json=streamed) as response:
            assert response.status_code == 200
            assert all(planted not in line for line in response.iter_lines() for planted in PLANTED)
    time.sleep(0.5)  # the streamed run's last spans end after the response
    output = "".join(observed.log[start:])
    records = observed.records()
    spans = _spans(records)
    names = {s["name"] for s in spans}
    assert {"http.request", "node.retrieve", "node.respond", "model.call", "model.attempt"} <= names
    assert {"retrieval.embed", "retrieval.vector", "retrieval.keyword"} <= names
    logs = [r for r in records if "event" in r and "level" in r]
    assert any("trace_id" in r for r in logs)  # DEBUG logging ran inside spans
    for planted in PLANTED:
        assert planted not in output, planted
    span_text = "".join(line for line in observed.log[start:] if '"context"' in line)
    assert CANARY not in span_text and "rebuilt" not in span_text
