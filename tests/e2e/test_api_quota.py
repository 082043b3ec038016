"""Quotas and cost on two ``ragent serve`` processes sharing one Redis.

Tenant ``metered`` may use 1 model token a day, tenant ``counted`` 2 requests; the
scripted model reports usage on every call, and the price table prices it. A turn with a
tool call makes two model calls: both are counted and priced. What one process counts,
the other refuses (``openai.RateLimitError``, code ``insufficient_quota``, ``Retry-After``);
an administrator sees and resets usage over HTTP (``/v1/quota``) and the CLI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from langgraph_sdk import get_sync_client

from app.server import api_keys
from tests.e2e.api_fixtures import MODEL
from tests.e2e.conftest import Corpus, fresh_data_dir, running
from tests.openai_server import OpenAIServer, Reply, ToolCalls, openai_server
from tests.servers import BIN, free_port, ragent, redis_server

pytestmark = pytest.mark.e2e

PRICES = {MODEL: {"input_per_1m": 2.0, "output_per_1m": 8.0}}
QUOTA = {"tenants": {"metered": {"tokens": 1}, "counted": {"requests": 2}, "studio": {"tokens": 1}}}
TOOL_TURN = (
    ToolCalls([("calculator", json.dumps({"expression": "12*7"}))]),
    Reply("12 * 7 is 84."),
)


@dataclass
class Pair:
    urls: tuple[str, str]
    redis_url: str
    model: OpenAIServer
    env: dict[str, str]

    def key(self, tenant: str, *scopes: str) -> str:
        store = api_keys.RedisKeyStore(self.redis_url)
        try:
            _, key = api_keys.create(
                store, tenant_id=tenant, user_id="ann", scopes=scopes or ("chat",)
            )
        finally:
            store.close()
        return key

    def chat(self, server: int, key: str, **extra: Any) -> Any:
        with openai.OpenAI(
            base_url=f"{self.urls[server]}/v1", api_key=key, max_retries=0, timeout=60
        ) as client:
            reply = client.chat.completions.create(
                model="ragent", messages=[{"role": "user", "content": "What is 12*7?"}], **extra
            )
            return list(reply) if extra.get("stream") else reply


@pytest.fixture(scope="module")
def pair(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("quota")
    data_dir = fresh_data_dir(corpus, root)
    ports = (free_port(), free_port())
    with redis_server() as redis, openai_server() as model:
        env = {
            "RAGENT_DATA_DIR": str(data_dir),
            "RAGENT_SERVER_REDIS_URL": redis.url,
            "RAGENT_LLM_BASE_URL": model.base_url,
            "RAGENT_LLM_MODEL": MODEL,
            "RAGENT_LLM_OFFLINE_FALLBACK": "false",
            "RAGENT_LLM_MAX_RETRIES": "0",
            "RAGENT_MEMORY_EXTRACTION": "explicit",
            "RAGENT_SERVER_QUOTA": json.dumps(QUOTA),
            "RAGENT_SERVER_PRICES": json.dumps(PRICES),
        }
        urls = tuple(f"http://127.0.0.1:{p}" for p in ports)

        def serve(port: int) -> Any:
            args = [str(BIN / "ragent"), "serve", "--port", str(port)]
            return running(args, health_url=f"http://127.0.0.1:{port}/healthz", env=env, cwd=root)

        with serve(ports[0]), serve(ports[1]):
            yield Pair((urls[0], urls[1]), redis.url, model, env)


def _cost(call: dict[str, Any]) -> float:
    return (call["prompt_tokens"] * 2.0 + call["completion_tokens"] * 8.0) / 1_000_000


def test_a_turn_with_two_model_calls_is_priced_call_by_call(pair: Pair) -> None:
    key = pair.key("default")
    pair.model.plan(MODEL, *TOOL_TURN)
    usage = pair.chat(0, key).usage.model_dump()
    calls = usage["calls"]
    assert len(calls) == 2 and all(c["prompt_tokens"] > 0 for c in calls)
    assert [c["cost"] for c in calls] == pytest.approx([_cost(c) for c in calls])
    assert usage["cost"] == pytest.approx(sum(_cost(c) for c in calls))

    pair.model.plan(MODEL, *TOOL_TURN)
    chunks = pair.chat(1, key, stream=True, stream_options={"include_usage": True})
    streamed = chunks[-1].usage.model_dump()
    assert len(streamed["calls"]) == 2
    assert streamed["cost"] == pytest.approx(sum(_cost(c) for c in streamed["calls"]))

    metrics = httpx.get(f"{pair.urls[0]}/metrics", timeout=30).text
    line = next(m for m in metrics.splitlines() if m.startswith("ragent_cost_total{"))
    assert f'model="{MODEL}"' in line and float(line.split()[-1]) == pytest.approx(usage["cost"])


def test_tokens_of_every_call_used_on_one_server_are_refused_on_the_other(pair: Pair) -> None:
    admin = pair.key("metered", "chat", "admin")
    pair.model.plan(MODEL, *TOOL_TURN)
    usage = pair.chat(0, admin).usage.model_dump()
    assert len(usage["calls"]) == 2

    shown = httpx.get(
        f"{pair.urls[1]}/v1/quota", headers={"Authorization": f"Bearer {admin}"}, timeout=30
    ).json()
    assert (shown["requests"], shown["tokens"]) == (1, usage["total_tokens"])
    assert shown["limits"] == {"tokens": 1, "requests": None}

    with pytest.raises(openai.RateLimitError) as refused:
        pair.chat(1, admin)
    assert refused.value.code == "insufficient_quota"
    assert "1 model tokens per day for tenant 'metered'" in refused.value.message
    assert int(refused.value.response.headers["retry-after"]) >= 1
    metrics = httpx.get(f"{pair.urls[1]}/metrics", timeout=30).text
    assert 'ragent_quota_refusals_total{limit="tokens",scope="tenant"} 1.0' in metrics

    reset = httpx.delete(
        f"{pair.urls[1]}/v1/quota", headers={"Authorization": f"Bearer {admin}"}, timeout=30
    )
    assert reset.json()["reset"] == 1
    assert pair.chat(1, admin).choices[0].message.content


def test_requests_count_across_servers_and_the_cli_shows_and_resets_them(pair: Pair) -> None:
    key = pair.key("counted")
    pair.chat(0, key)
    pair.chat(1, key)
    with pytest.raises(openai.RateLimitError) as refused:
        pair.chat(0, key)
    assert refused.value.code == "insufficient_quota"
    forbidden = httpx.get(
        f"{pair.urls[0]}/v1/quota", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert forbidden.status_code == 403  # usage is for keys with the admin scope

    shown = ragent("quota", "show", "--tenant", "counted", "--json", env=pair.env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["requests"] == 2
    reset = ragent("quota", "reset", "--tenant", "counted", env=pair.env)
    assert reset.returncode == 0, reset.stderr
    assert pair.chat(1, key).choices[0].message.content


def test_a_langgraph_run_counts_its_model_calls_too(pair: Pair) -> None:
    key = pair.key("studio")
    question = {"messages": [{"role": "user", "content": "What is 12*7?"}]}
    pair.model.plan(MODEL, *TOOL_TURN)
    with get_sync_client(url=pair.urls[0], api_key=key, timeout=60) as client:
        thread = client.threads.create()
        client.runs.wait(thread["thread_id"], "agent", input=question)
    with get_sync_client(url=pair.urls[1], api_key=key, timeout=60) as client:
        thread = client.threads.create()
        with pytest.raises(httpx.HTTPStatusError) as refused:
            client.runs.wait(thread["thread_id"], "agent", input=question)
    assert refused.value.response.status_code == 429
    assert refused.value.response.json()["error"]["code"] == "insufficient_quota"
