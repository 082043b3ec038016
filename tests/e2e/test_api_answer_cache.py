"""The semantic answer cache through ``ragent serve`` and the openai client.

A server with ``cache.enabled`` on SQLite, and one with two workers sharing a Redis
cache, each with a scripted model: a hit is an answer no model call made.
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
from prometheus_client.parser import text_string_to_metric_families

from app.server import api_keys
from tests.e2e.conftest import QUESTION, Corpus, fresh_data_dir, running
from tests.openai_server import OpenAIServer, Reply, openai_server
from tests.servers import BIN, free_port, ragent, redis_server

pytestmark = pytest.mark.e2e

MODEL = "scripted-model"
ANSWER = "By default SQLite runs a checkpoint when the WAL file reaches 1000 pages. [S1]"
PARAPHRASE = "In WAL mode, how often does SQLite run a checkpoint?"
NEAR_MISS = "How often does SQLite not run a checkpoint in WAL mode?"
ROTA = "# Zephyr rota\n\nThe zephyr rota rotates every fortnight on Mondays.\n"
ROTA_CHANGED = "# Zephyr rota\n\nThe zephyr rota now rotates every month on Fridays.\n"
ROTA_QUESTION = "How often does the zephyr rota rotate?"


@dataclass
class Server:
    url: str
    data_dir: Path
    root: Path
    model: OpenAIServer
    env: dict[str, str]
    redis_url: str | None = None

    def key(self, tenant: str = "default", groups: tuple[str, ...] = ()) -> str:
        store = api_keys.open_key_store(self.data_dir, self.redis_url)
        try:
            _, key = api_keys.create(store, tenant_id=tenant, user_id="u", groups=groups)
        finally:
            store.close()
        return key

    def client(self, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.url}/v1", api_key=key or self.key(), max_retries=0, timeout=60
        )

    def ingest(self, path: Path, tenant: str = "default") -> None:
        done = ragent("ingest", str(path), "--tenant", tenant, env=self.env, cwd=self.root)
        assert done.returncode == 0, done.stderr


def extensions(done: Any) -> dict[str, Any]:
    return done.choices[0].message.model_extra or {}


def ask(client: openai.OpenAI, question: str, **extra: Any) -> Any:
    return client.chat.completions.create(
        model="ragent", messages=[{"role": "user", "content": question}], **extra
    )


@pytest.fixture(scope="module")
def server(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("cache-api")
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
            "RAGENT_MEMORY_EXTRACTION": "explicit",
            "RAGENT_MEMORY_SUMMARIZER": "extractive",
            "RAGENT_SERVER_RATE_LIMIT": "600/minute",
            "RAGENT_CACHE_ENABLED": "true",
        }
        done = ragent(
            "ingest", str(corpus.docs), "--tenant", "other", env=env, cwd=root
        )  # the same document for another tenant
        assert done.returncode == 0, done.stderr
        args = [str(BIN / "ragent"), "serve", "--port", str(port)]
        with running(args, health_url=f"{url}/healthz", env=env, cwd=root):
            yield Server(url, data_dir, root, model, env)


@pytest.fixture
def model(server: Server) -> Iterator[OpenAIServer]:
    server.model.reset()
    yield server.model
    server.model.reset()


def test_a_paraphrase_is_a_hit_with_the_same_citations_streamed_too(
    server: Server, model: OpenAIServer
) -> None:
    client = server.client()
    model.plan(MODEL, Reply(ANSWER))
    first = ask(client, QUESTION)
    assert extensions(first)["cache"] == "miss" and len(model.requests) == 1
    cited = extensions(first)["citations"]
    assert cited and cited[0]["source"].endswith("sqlite-wal.html")

    again = ask(server.client(), PARAPHRASE)  # another key, the same tenant and groups
    assert len(model.requests) == 1  # no model call
    assert extensions(again)["cache"] == "hit"
    assert again.choices[0].message.content == first.choices[0].message.content
    assert extensions(again)["citations"] == cited

    chunks = list(ask(client, QUESTION, stream=True))
    assert len(model.requests) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == first.choices[0].message.content
    [last] = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    delta = last.choices[0].delta.model_extra or {}
    assert delta["cache"] == "hit" and delta["citations"] == cited

    raw = httpx.post(
        f"{server.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {server.key()}"},
        json={"model": "ragent", "messages": [{"role": "user", "content": QUESTION}]},
        timeout=60,
    )
    assert raw.status_code == 200 and raw.headers["X-Ragent-Cache"] == "hit"


def _cache_samples(url: str) -> dict[tuple[str, str], float]:
    """The ``ragent_answer_cache_*`` samples of ``/metrics``: (name, label values) -> value."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        (sample.name, ",".join(sample.labels.values())): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("ragent_answer_cache_")
        for sample in family.samples
    }


def test_a_miss_then_a_hit_move_the_metrics_by_one_each(
    server: Server, model: OpenAIServer
) -> None:
    client = server.client(server.key(groups=("metrics",)))  # a scope no other test fills
    before = _cache_samples(server.url)
    model.plan(MODEL, Reply(ANSWER))
    first = ask(client, QUESTION)
    again = ask(client, QUESTION)
    after = _cache_samples(server.url)

    assert (extensions(first)["cache"], extensions(again)["cache"]) == ("miss", "hit")
    moved = {k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k, 0.0)}
    lookups = {k[1]: v for k, v in moved.items() if k[0] == "ragent_answer_cache_lookups_total"}
    assert lookups == {"miss": 1.0, "hit": 1.0}, moved
    seconds = "ragent_answer_cache_lookup_seconds"
    assert moved[(f"{seconds}_count", "false")] == moved[(f"{seconds}_count", "true")] == 1.0
    assert moved[(f"{seconds}_sum", "true")] > 0 and moved[(f"{seconds}_sum", "false")] > 0
    # The hit saved what the miss's model call cost.
    saved = moved[("ragent_answer_cache_saved_tokens_total", "")]
    assert first.usage is not None and saved == first.usage.total_tokens > 0, moved


def test_another_tenant_or_group_and_a_near_miss_miss(server: Server, model: OpenAIServer) -> None:
    model.plan(MODEL, Reply(ANSWER))
    ask(server.client(), QUESTION)  # stored, or already there
    for key in (server.key(tenant="other"), server.key(groups=("eng",))):
        model.plan(MODEL, Reply(ANSWER))
        before = len(model.requests)
        done = ask(server.client(key), QUESTION)
        assert extensions(done)["cache"] == "miss" and len(model.requests) == before + 1
    model.plan(MODEL, Reply("I don't know."))
    before = len(model.requests)
    near = ask(server.client(), NEAR_MISS)
    assert extensions(near)["cache"] == "miss" and len(model.requests) == before + 1


def test_bypass_by_header_or_field_runs_the_model(server: Server, model: OpenAIServer) -> None:
    model.plan(MODEL, Reply(ANSWER))
    ask(server.client(), QUESTION)
    for extra in (
        {"extra_headers": {"X-Ragent-Cache": "bypass"}},
        {"extra_body": {"cache": "bypass"}},
    ):
        model.plan(MODEL, Reply(ANSWER))
        before = len(model.requests)
        done = ask(server.client(), QUESTION, **extra)
        assert "cache" not in extensions(done) and len(model.requests) == before + 1
    with pytest.raises(openai.BadRequestError) as bad:
        ask(server.client(), QUESTION, extra_headers={"X-Ragent-Cache": "always"})
    assert bad.value.code == "invalid_header"


def test_reingesting_the_cited_document_invalidates_its_answers(
    server: Server, model: OpenAIServer, tmp_path: Path
) -> None:
    docs = tmp_path / "rota"
    docs.mkdir()
    (docs / "rota.md").write_text(ROTA)
    server.ingest(docs)
    client = server.client()
    model.plan(MODEL, Reply("It rotates every fortnight. [S1]"))
    first = ask(client, ROTA_QUESTION)
    assert extensions(first)["citations"][0]["source"].endswith("rota.md")
    assert extensions(ask(client, ROTA_QUESTION))["cache"] == "hit"

    (docs / "rota.md").write_text(ROTA_CHANGED)
    server.ingest(docs)
    model.plan(MODEL, Reply("It rotates every month. [S1]"))
    fresh = ask(client, ROTA_QUESTION)
    assert extensions(fresh)["cache"] == "miss"
    assert fresh.choices[0].message.content.startswith("It rotates every month")

    stats = ragent("cache", "stats", "--json", env=server.env, cwd=server.root)
    figures = json.loads(stats.stdout)
    assert figures["hits"] >= 1 and figures["stale"] >= 1 and figures["entries"] >= 1
    cleared = ragent("cache", "clear", env=server.env, cwd=server.root)
    assert cleared.returncode == 0 and cleared.stdout.startswith("removed ")
    model.plan(MODEL, Reply("It rotates every month. [S1]"))
    assert extensions(ask(client, ROTA_QUESTION))["cache"] == "miss"


def test_workers_share_a_redis_cache(corpus: Corpus, tmp_path: Path) -> None:
    data_dir = fresh_data_dir(corpus, tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with redis_server() as redis, openai_server() as model:
        env = {
            "RAGENT_DATA_DIR": str(data_dir),
            "RAGENT_LLM_BASE_URL": model.base_url,
            "RAGENT_LLM_MODEL": MODEL,
            "RAGENT_LLM_OFFLINE_FALLBACK": "false",
            "RAGENT_LLM_MAX_RETRIES": "0",
            "RAGENT_MEMORY_EXTRACTION": "explicit",
            "RAGENT_SERVER_REDIS_URL": redis.url,
            "RAGENT_CHECKPOINT_REDIS_URL": redis.url,
            "RAGENT_CACHE_ENABLED": "true",
            "RAGENT_CACHE_BACKEND": "redis",
        }
        args = [str(BIN / "ragent"), "serve", "--port", str(port), "--workers", "2"]
        with running(args, health_url=f"{url}/healthz", env=env, cwd=tmp_path):
            server = Server(url, data_dir, tmp_path, model, env, redis.url)
            model.plan(MODEL, Reply(ANSWER))
            assert extensions(ask(server.client(), QUESTION))["cache"] == "miss"
            # New connections: each request may reach either worker; all are hits.
            outcomes = {extensions(ask(server.client(), PARAPHRASE))["cache"] for _ in range(4)}
            assert outcomes == {"hit"} and len(model.requests) == 1
        stats = ragent("cache", "stats", "--json", env=env, cwd=tmp_path)
        assert json.loads(stats.stdout)["hits"] == 4
