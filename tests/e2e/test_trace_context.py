"""A real ``ragent serve`` continues a caller's W3C trace: its request span is a SERVER child."""

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
from tests.openai_server import OpenAIServer, Reply

TRACE, PARENT = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"


def _request_spans(observed: Observed, start: int) -> list[dict[str, Any]]:
    records = observed.records()[start:]
    return [r for r in records if r.get("name") == "http.request" and "context" in r]


def test_a_traceparent_is_continued_by_the_request_and_model_spans(
    observed: Observed, models: OpenAIServer
) -> None:
    key = observed.key("tia")
    start = len(observed.records())
    models.plan(PRIMARY, Reply("Hello there."))
    headers = {"traceparent": f"00-{TRACE}-{PARENT}-01"}
    body = {"model": "ragent", "messages": [{"role": "user", "content": "hello"}]}
    with observed.http(key) as client:
        assert client.post("/v1/chat/completions", json=body, headers=headers).status_code == 200
        assert client.get("/v1/models").status_code == 200  # no traceparent: a trace of its own
    deadline = time.monotonic() + 10
    while len(_request_spans(observed, start)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    continued, own = _request_spans(observed, start)
    assert continued["kind"] == "SpanKind.SERVER" and own["kind"] == "SpanKind.SERVER"
    assert continued["context"]["trace_id"] == f"0x{TRACE}"
    assert continued["parent_id"] == f"0x{PARENT}"
    assert own["context"]["trace_id"] != f"0x{TRACE}" and own["parent_id"] is None
    model_calls = [
        r
        for r in observed.records()[start:]
        if r.get("name") == "model.call" and r["context"]["trace_id"] == f"0x{TRACE}"
    ]
    assert model_calls and model_calls[0]["attributes"]["gen_ai.request.model"] == PRIMARY
