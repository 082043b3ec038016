"""``/metrics`` of a real ``ragent serve``: every family exists and moves with real traffic."""

from __future__ import annotations

import threading
import time

from tests.e2e.conftest import QUESTION
from tests.e2e.observed_fixtures import (  # noqa: F401 - fixtures
    BACKUP,
    PRIMARY,
    Observed,
    models_fixture,
    observed_fixture,
)
from tests.openai_server import Fail, OpenAIServer, Reply, ToolCalls

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return _value(after, name, **labels) - _value(before, name, **labels)


def _chat(observed: Observed, key: str, text: str, *, stream: bool = False) -> int:
    with observed.http(key) as client:
        body = {"model": "ragent", "messages": [{"role": "user", "content": text}]}
        if not stream:
            return client.post("/v1/chat/completions", json=body).status_code
        with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
            for _ in r.iter_lines():
                pass
            return r.status_code


def test_every_metric_family_moves(observed: Observed, models: OpenAIServer) -> None:
    key = observed.key()
    model_url = models.base_url.removesuffix("/")
    primary, backup = f"{PRIMARY}@{model_url}", f"{BACKUP}@{model_url}"
    before = observed.metrics()

    models.plan(PRIMARY, Fail(500), Fail(500))
    models.plan(
        BACKUP,
        ToolCalls([("calculator", '{"expression": "2+3"}')]),
        Reply("SQLite checkpoints at 1000 pages [S1]."),
    )
    models.plan(PRIMARY, Reply("Again: 1000 pages [S1].", piece=3))
    assert _chat(observed, key, QUESTION) == 200  # primary fails twice, backup calls a tool
    assert _chat(observed, key, QUESTION, stream=True) == 200  # same query: cache hit
    assert _chat(observed, key, "") == 400  # an error by type
    after = observed.metrics()

    def moved(name: str, **labels: str) -> float:
        return _moved(before, after, name, **labels)

    chat = {"route": "/v1/chat/completions", "method": "POST"}
    assert moved("ragent_http_request_seconds_count", **chat) == 3
    assert moved("ragent_http_time_to_first_token_seconds_count") == 1
    assert moved("ragent_model_time_to_first_token_seconds_count", model=backup) >= 2
    assert moved("ragent_model_tokens_total", model=backup, direction="in") > 0
    assert moved("ragent_model_tokens_total", model=backup, direction="out") > 0
    assert moved("ragent_model_call_seconds_count", model=backup) == 2  # tool call, answer
    assert moved("ragent_model_call_seconds_count", model=primary) == 1  # the stream
    fallback = {"from": primary, "to": backup, "reason": "server"}
    assert moved("ragent_model_fallbacks_total", **fallback) >= 2
    for engine in ("embed", "vector", "keyword"):
        assert moved("ragent_retrieval_seconds_count", engine=engine) == 2, engine
    # One computation. Retrieve looks the query up in both turns and finds it. A prefetch
    # (the service's before the graph, the guard's) skips a query already cached or in
    # flight without a lookup, so the second turn's prefetches count nothing; the guard's
    # in the first turn counts a hit only if it ran before the service's prefetch thread
    # had registered the query.
    assert moved("ragent_query_cache_total", result="miss") == 1
    assert moved("ragent_query_cache_total", result="hit") in (2, 3)
    assert moved("ragent_tool_calls_total", tool="calculator", outcome="ok") == 1
    assert moved("ragent_errors_total", component="http", type="empty_message") == 1
    assert moved("ragent_errors_total", component="model", type="server") >= 2
    assert moved("ragent_node_seconds_count", node="retrieve") == 2
    assert moved("ragent_tokens_total", kind="completion") > 0
    assert _value(after, "ragent_active_streams") == 0
    # The server froze its start-up heap (hundreds of thousands of objects) once warm.
    assert _value(before, "ragent_gc_frozen_objects") > 10_000


def test_active_streams_counts_a_stream_while_it_runs(
    observed: Observed, models: OpenAIServer
) -> None:
    key = observed.key("bo")
    models.plan(PRIMARY, Reply("slowly " * 12 + "[S1]", piece=6, gap_s=0.25))
    done = threading.Event()
    status: list[int] = []

    def stream() -> None:
        status.append(_chat(observed, key, QUESTION, stream=True))
        done.set()

    worker = threading.Thread(target=stream)
    worker.start()
    seen = 0.0
    deadline = time.monotonic() + 30
    while not done.is_set() and time.monotonic() < deadline:
        seen = max(seen, _value(observed.metrics(), "ragent_active_streams"))
        time.sleep(0.05)
    worker.join(30)
    assert status == [200]
    assert seen == 1
    assert _value(observed.metrics(), "ragent_active_streams") == 0
