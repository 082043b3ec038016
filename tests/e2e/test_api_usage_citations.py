"""``usage`` over every model call of a turn, and sources that front ends render.

A server whose router and memory extraction are model calls reports all three calls
of a turn; its ``server.citation_format`` is ``footer``. The shared API server shows
request-level ``citation_format`` options, streamed and not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from app.server import api_keys
from tests.e2e.api_fixtures import MODEL, Api, api_fixture, model_fixture  # noqa: F401 - fixtures
from tests.e2e.conftest import QUESTION, Corpus, fresh_data_dir, running
from tests.openai_server import OpenAIServer, Reply, openai_server
from tests.servers import BIN, free_port

pytestmark = pytest.mark.e2e

ANSWER = "By default SQLite runs a checkpoint when the WAL file reaches 1000 pages. [S1]"
ROUTED = '{"tier": "small", "reason": "a lookup"}'
NO_FACTS = '{"facts": []}'
PRICES = {MODEL: {"input_per_1m": 3.0, "output_per_1m": 15.0}}


def ask(question: str = QUESTION) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}]


@dataclass
class Metered:
    url: str
    data_dir: Path
    model: OpenAIServer

    def openai(self) -> openai.OpenAI:
        store = api_keys.SqliteKeyStore(self.data_dir / "server.sqlite")
        try:
            _, key = api_keys.create(store, tenant_id="default", user_id="metered")
        finally:
            store.close()
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def metered(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Metered]:
    root = tmp_path_factory.mktemp("metered-api")
    data_dir = fresh_data_dir(corpus, root)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with openai_server() as model:
        env = {
            "RAGENT_DATA_DIR": str(data_dir),
            "RAGENT_LLM_BASE_URL": model.base_url,
            "RAGENT_LLM_MODEL": MODEL,
            "RAGENT_LLM_OFFLINE_FALLBACK": "false",
            "RAGENT_LLM_MAX_RETRIES": "0",
            "RAGENT_LLM_ROUTER": "llm",
            "RAGENT_MEMORY_EXTRACTION": "llm",
            "RAGENT_MEMORY_SUMMARIZER": "extractive",
            "RAGENT_SERVER_RATE_LIMIT": "600/minute",
            "RAGENT_SERVER_CITATION_FORMAT": "footer",
            "RAGENT_SERVER_PRICES": json.dumps(PRICES),
        }
        args = [str(BIN / "ragent"), "serve", "--port", str(port)]
        with running(args, health_url=f"{url}/healthz", env=env, cwd=root):
            yield Metered(url, data_dir, model)


def reported(model: OpenAIServer) -> tuple[int, int]:
    """What the scripted model reported, summed over its replies."""
    return (
        sum(s.prompt_tokens for s in model.streams),
        sum(s.completion_tokens for s in model.streams),
    )


def test_usage_counts_the_router_the_answer_and_memory(metered: Metered) -> None:
    model = metered.model
    model.reset()
    model.plan(MODEL, Reply(ROUTED), Reply(ANSWER), Reply(NO_FACTS))

    done = metered.openai().chat.completions.create(model="ragent", messages=ask())

    assert len(model.requests) == 3
    prompt, completion = reported(model)
    assert done.usage is not None
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (prompt, completion)
    assert done.usage.total_tokens == prompt + completion
    calls = (done.usage.model_extra or {})["calls"]
    assert [c["role"] for c in calls] == ["router", "answer", "memory"]
    assert {c["model"] for c in calls} == {MODEL}  # never the model server's address
    assert [c["prompt_tokens"] for c in calls] == [s.prompt_tokens for s in model.streams]


def _scraped(url: str) -> dict[str, float]:
    """The unlabelled and single-label samples of ``/metrics`` that the cost test reads."""
    wanted = (
        "ragent_request_cost_sum",
        "ragent_request_cost_count",
        'ragent_rag_answers_total{outcome="cited",served="model"}',
    )
    out = {}
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        name, _, value = line.rpartition(" ")
        if name in wanted:
            out[name] = float(value)
    return out


def test_a_turns_cost_is_the_sum_of_its_router_answer_and_memory_calls(metered: Metered) -> None:
    model = metered.model
    model.reset()
    model.plan(MODEL, Reply(ROUTED), Reply(ANSWER), Reply(NO_FACTS))
    before = _scraped(metered.url)

    with metered.openai() as client:
        done = client.chat.completions.create(model="ragent", messages=ask())

    assert done.usage is not None
    extra = done.usage.model_extra or {}
    calls = extra["calls"]
    assert [c["role"] for c in calls] == ["router", "answer", "memory"]
    priced = [(c["prompt_tokens"] * 3.0 + c["completion_tokens"] * 15.0) / 1e6 for c in calls]
    assert all(p > 0 for p in priced)
    assert [c["cost"] for c in calls] == pytest.approx(priced)
    assert extra["cost"] == pytest.approx(sum(priced))
    after = _scraped(metered.url)
    # One observation of ragent_request_cost per turn, whose value is the three calls' sum.
    assert after["ragent_request_cost_count"] - before["ragent_request_cost_count"] == 1
    spent = after["ragent_request_cost_sum"] - before["ragent_request_cost_sum"]
    assert spent == pytest.approx(sum(priced))
    cited = 'ragent_rag_answers_total{outcome="cited",served="model"}'
    assert after[cited] - before[cited] == 1  # one retrieval turn, whatever its model calls


def test_streamed_usage_counts_every_call_and_ends_with_the_footer(metered: Metered) -> None:
    model = metered.model
    model.reset()
    model.plan(MODEL, Reply(ROUTED), Reply(ANSWER, piece=6), Reply(NO_FACTS))

    chunks = list(
        metered.openai().chat.completions.create(
            model="ragent",
            messages=ask(),
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    usage = chunks[-1].usage
    assert usage is not None and chunks[-1].choices == []
    assert (usage.prompt_tokens, usage.completion_tokens) == reported(model)
    assert [c["role"] for c in (usage.model_extra or {})["calls"]] == [
        "router",
        "answer",
        "memory",
    ]
    deltas = [c.choices[0].delta.content for c in chunks if c.choices]
    texts = [d for d in deltas if d]
    assert "".join(texts[:-1]) == ANSWER
    assert texts[-1] == "\n\n**Sources**\n- [S1] sqlite-wal.html"
    [finish] = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert chunks.index(finish) > max(
        i for i, c in enumerate(chunks) if c.choices and c.choices[0].delta.content
    )


def test_the_server_footer_lists_only_cited_sources(metered: Metered) -> None:
    model = metered.model
    model.reset()
    model.plan(MODEL, Reply(ROUTED), Reply(ANSWER + " [S7]"), Reply(NO_FACTS))

    done = metered.openai().chat.completions.create(model="ragent", messages=ask())

    content = done.choices[0].message.content or ""
    assert content == ANSWER + "\n\n**Sources**\n- [S1] sqlite-wal.html"


def annotations_of(message: Any) -> list[dict[str, Any]]:
    extra = message.model_extra or {}
    found = extra.get("annotations")
    if found is None and getattr(message, "annotations", None) is not None:
        found = [a.model_dump() for a in message.annotations]
    assert isinstance(found, list)
    return found


def test_annotations_point_at_each_label(api: Api, model: OpenAIServer) -> None:
    client = api.openai(api.key("citations-annotations"))
    model.plan(MODEL, Reply(ANSWER))

    done = client.chat.completions.create(
        model="ragent", messages=ask(), extra_body={"citation_format": "annotations"}
    )

    message = done.choices[0].message
    assert message.content == ANSWER  # no footer: annotations only
    [note] = annotations_of(message)
    cited = note["url_citation"]
    assert note["type"] == "url_citation"
    assert ANSWER[cited["start_index"] : cited["end_index"]] == "[S1]"
    assert cited["title"] == "sqlite-wal.html" and cited["url"].endswith("sqlite-wal.html")


def test_streamed_footer_and_annotations_on_request(api: Api, model: OpenAIServer) -> None:
    client = api.openai(api.key("citations-stream"))
    model.plan(MODEL, Reply(ANSWER, piece=5), Reply(ANSWER, piece=5))

    chunks = list(
        client.chat.completions.create(
            model="ragent", messages=ask(), stream=True, extra_body={"citation_format": "footer"}
        )
    )
    texts = [c.choices[0].delta.content for c in chunks if c.choices]
    assert "".join(t for t in texts if t) == ANSWER + "\n\n**Sources**\n- [S1] sqlite-wal.html"

    chunks = list(
        client.chat.completions.create(
            model="ragent",
            messages=ask(),
            stream=True,
            extra_body={"citation_format": "annotations"},
        )
    )
    [finish] = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    [note] = (finish.choices[0].delta.model_extra or {})["annotations"]
    start, end = note["url_citation"]["start_index"], note["url_citation"]["end_index"]
    assert ANSWER[start:end] == "[S1]"


def test_markers_stay_the_default(api: Api, model: OpenAIServer) -> None:
    client = api.openai(api.key("citations-default"))
    model.plan(MODEL, Reply(ANSWER))

    done = client.chat.completions.create(model="ragent", messages=ask())

    message = done.choices[0].message
    assert message.content == ANSWER and message.annotations is None
