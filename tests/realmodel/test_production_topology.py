"""The production topology on the compose stack's settings, with a local model.

Two ``ragent serve`` replicas and one ``ragent worker`` run natively with the settings
deploy/compose gives its ``ragent`` and ``ingest-worker`` services (ragent.env.example,
its cpu-profile lines uncommented, then the service's ``environment``: the production
profile, two server processes a replica). Only what a service is called changes: each
host name of the stack becomes a loopback port here, and each process gets a data dir
of its own. The services behind them are real: Redis with its modules, Elasticsearch,
Weaviate, one llama.cpp server for the GGUF fixture answering for every model tier (as
the compose ``llama-cpp`` service does under the names ``vllm`` and ``vllm-small``),
and ragent's own all-MiniLM-L6-v2 behind ``/v1/embeddings`` in place of Text
Embeddings Inference, beside a sink for the OTLP spans.

Both replicas answer with citations; replica A is killed with SIGKILL while its stream
is under way, and the conversation goes on through replica B; the ingestion worker is
killed mid-job and a new one finishes it. Nothing acknowledged is lost.

The tests/e2e twin (the offline answerer, hand-made settings) stays the fast version.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import Response

from app.llm.local.process import LocalModelServer
from app.retrieval.embedding.embedder import LocalEmbedder
from app.server import api_keys
from app.server.idempotency import LEASE_S
from app.server.runs.recovery import INTERRUPTED_NOTE
from app.server.runs.streams import INTERRUPTED
from app.settings import load_settings
from tests.e2e.api_fixtures import sse_data
from tests.e2e.remote_fixtures import (  # noqa: F401 - fixtures
    RemoteProfile,
    check_remote_citations,
    remote_fixture,
)
from tests.e2e.topology import ROTA, TENANT, documents, follow_job, kill, process
from tests.servers import BIN, REPO, RedisServer, asgi_server, free_port, redis_server, wait_http
from tests.unit.test_deploy_stack import compose_settings

# Four processes start, four model calls run, two jobs run.
pytestmark = [pytest.mark.realmodel, pytest.mark.timeout(1800)]

PRODUCTION: dict[str, Any] = yaml.safe_load(
    (REPO / "app" / "configs" / "production.yaml").read_text()
)
QUESTION = "When does the billing on-call rota change?"
# Each model call decodes on this machine's CPU: a short answer keeps it to seconds.
ANSWER_TOKENS = 96
# The one group of overrides that is not an address: this CPU-only machine needs longer
# than the production profile's GPU timeouts (10 s to a first token, 20 s a turn) to read
# a prompt, and more so while another request holds the one model server.
SLOW_CPU = {
    "RAGENT_LLM_TIMEOUT_S": "240",
    "RAGENT_LLM_STALL_TIMEOUT_S": "60",
    "RAGENT_LLM_DEADLINE_S": "240",
}
# Every setting the test changes from the compose files, as paths in the loaded settings:
# the data dir, the address of each service (host and port; the scheme, path and Redis
# database stay the compose stack's), this module's index and collection names, and
# SLOW_CPU. test_only_addresses_and_speed_differ_from_compose checks that nothing else does.
OVERRIDDEN = [
    "data_dir",
    "llm.base_url",
    *(f"llm.tiers.{name}.base_url" for name in PRODUCTION["llm"]["tiers"]),
    *(f"llm.fallbacks.{i}.base_url" for i in range(len(PRODUCTION["llm"]["fallbacks"]))),
    "embed.base_url",
    "retrieval.weaviate_url",
    "retrieval.weaviate_grpc_port",
    "retrieval.elasticsearch_url",
    "retrieval.elasticsearch_index",
    "retrieval.weaviate_collection",
    "checkpoint.redis_url",
    "tools.rate_limit_storage",
    "tools.audit_redis_url",
    "server.redis_url",
    "observability.otlp_endpoint",
    "llm.timeout_s",
    "llm.stall_timeout_s",
    "llm.deadline_s",
]


@dataclass(frozen=True)
class Stack:
    """Where each service of the compose stack answers here (``host:port``)."""

    model: str
    embeddings_and_traces: str
    redis: str
    remote: RemoteProfile


def _moved(url: str, netloc: str) -> str:
    """``url`` with its host and port replaced, the rest (scheme, path, database) kept."""
    return urlsplit(url)._replace(netloc=netloc).geturl()


def _compose(service: str) -> dict[str, str]:
    """The service's ``RAGENT_*`` settings; a secret whose example line has no value is unset."""
    return {k: v for k, v in compose_settings(service).items() if v}


def _overrides(stack: Stack, data_dir: Path) -> dict[str, str]:
    """What differs from the compose stack: addresses, the data dir, and ``SLOW_CPU``."""
    llm = PRODUCTION["llm"]
    tiers = {
        name: {**tier, "base_url": _moved(tier["base_url"], stack.model)}
        for name, tier in llm["tiers"].items()
    }
    fallbacks = [{**f, "base_url": _moved(f["base_url"], stack.model)} for f in llm["fallbacks"]]
    otlp = compose_settings()["RAGENT_OBSERVABILITY_OTLP_ENDPOINT"]
    return {
        "RAGENT_DATA_DIR": str(data_dir),
        "RAGENT_LLM_BASE_URL": _moved(llm["base_url"], stack.model),
        "RAGENT_LLM_TIERS": json.dumps(tiers),
        "RAGENT_LLM_FALLBACKS": json.dumps(fallbacks),
        "RAGENT_EMBED_BASE_URL": _moved(
            PRODUCTION["embed"]["base_url"], stack.embeddings_and_traces
        ),
        "RAGENT_RETRIEVAL_WEAVIATE_URL": stack.remote.weaviate_url,
        "RAGENT_RETRIEVAL_WEAVIATE_GRPC_PORT": str(stack.remote.weaviate_grpc_port),
        "RAGENT_RETRIEVAL_ELASTICSEARCH_URL": stack.remote.es_url,
        "RAGENT_RETRIEVAL_ELASTICSEARCH_INDEX": stack.remote.index,
        "RAGENT_RETRIEVAL_WEAVIATE_COLLECTION": stack.remote.collection,
        "RAGENT_CHECKPOINT_REDIS_URL": _moved(PRODUCTION["checkpoint"]["redis_url"], stack.redis),
        "RAGENT_TOOLS_RATE_LIMIT_STORAGE": _moved(
            PRODUCTION["tools"]["rate_limit_storage"], stack.redis
        ),
        "RAGENT_TOOLS_AUDIT_REDIS_URL": _moved(PRODUCTION["tools"]["audit_redis_url"], stack.redis),
        "RAGENT_SERVER_REDIS_URL": _moved(PRODUCTION["server"]["redis_url"], stack.redis),
        "RAGENT_OBSERVABILITY_OTLP_ENDPOINT": _moved(otlp, stack.embeddings_and_traces),
        **SLOW_CPU,
    }


def _env(service: str, stack: Stack, data_dir: Path) -> dict[str, str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    return {**_compose(service), **_overrides(stack, data_dir)}


def _loaded(env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """The settings ragent's own loader makes of ``env`` (and nothing else), as JSON."""
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("RAGENT_")]:
            mp.delenv(key)
        for key, value in env.items():
            mp.setenv(key, value)
        mp.chdir(cwd)  # no developer's .env
        dumped: dict[str, Any] = load_settings().model_dump(mode="json")
        return dumped


def _without(settings: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """A copy of ``settings`` with each dotted path set to None (it must exist)."""
    copy: dict[str, Any] = json.loads(json.dumps(settings))
    for path in paths:
        *parents, leaf = path.split(".")
        node: Any = copy
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        assert leaf in node, path
        node[leaf] = None
    return copy


def _stack_services(embedder: LocalEmbedder, spans: list[int]) -> FastAPI:
    """``/v1/embeddings`` (the compose ``embeddings`` service's API, ragent's local model)
    and ``/v1/traces`` (the collector's OTLP/HTTP endpoint, which counts the exports)."""
    app = FastAPI()

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> dict[str, Any]:
        payload = await request.json()
        texts = payload["input"] if isinstance(payload["input"], list) else [payload["input"]]
        vectors = await asyncio.to_thread(embedder.embed_documents, texts)
        data = [
            {"object": "embedding", "index": i, "embedding": vector.tolist()}
            for i, vector in enumerate(vectors)
        ]
        return {"object": "list", "model": payload["model"], "data": data, "usage": {}}

    @app.post("/v1/traces")
    async def traces(request: Request) -> Response:
        spans.append(len(await request.body()))
        return Response(b"", media_type="application/x-protobuf")

    return app


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="module")
def spans() -> list[int]:
    return []


@pytest.fixture(scope="module")
def stack(
    llama: LocalModelServer, redis: RedisServer, remote: RemoteProfile, spans: list[int]
) -> Iterator[Stack]:
    """Every service ragent calls in the compose stack, each at a loopback address."""
    embedder = LocalEmbedder()
    embedder.embed_documents(["warm"])  # loaded before a replica's readiness probe asks
    with asgi_server(_stack_services(embedder, spans)) as url:
        yield Stack(
            model=urlsplit(llama.url).netloc,
            embeddings_and_traces=urlsplit(url).netloc,
            redis=f"127.0.0.1:{redis.port}",
            remote=remote,
        )


def test_only_addresses_and_speed_differ_from_compose(stack: Stack, tmp_path: Path) -> None:
    for service in ("ragent", "ingest-worker"):
        compose = _loaded(_compose(service), tmp_path)
        ours = _loaded(_env(service, stack, tmp_path / service), tmp_path)
        assert compose["profile"] == ours["profile"] == "production"
        assert _without(ours, OVERRIDDEN) == _without(compose, OVERRIDDEN)
        # The cpu profile's advice: no reranker, llama.cpp's window, citations checked.
        assert ours["rerank"]["provider"] == "none" and ours["llm"]["context_window"] == 8192
        assert ours["llm"]["check_citations"] == "on"
    assert len(OVERRIDDEN) == len(set(OVERRIDDEN))


def _ready(url: str) -> None:
    """Wait until ``/readyz`` reports every dependency ``ok`` (not merely served around)."""
    deadline = time.monotonic() + 120
    while (report := httpx.get(f"{url}/readyz", timeout=30).json())["status"] != "ready":
        assert time.monotonic() < deadline, report
        time.sleep(1)


def _body(conversation: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "ragent",
        "messages": [{"role": "user", "content": QUESTION}],
        "conversation_id": conversation,
        "max_tokens": ANSWER_TOKENS,
        "tool_choice": "none",  # one model call a turn: the answer
        **extra,
    }


def _model_turn(reply: httpx.Response) -> dict[str, Any]:
    """Check that the model (not the offline answerer) wrote the turn's answer; its message."""
    assert reply.status_code == 200, reply.text
    payload = reply.json()
    message: dict[str, Any] = payload["choices"][0]["message"]
    assert message["content"].strip(), message
    answers = [c for c in payload["usage"]["calls"] if c["role"] == "answer"]
    assert answers and all(c["completion_tokens"] > 0 for c in answers), payload["usage"]
    assert all(c["model"] != "offline-extractive" for c in answers), payload["usage"]
    return message


def _answered(reply: httpx.Response, remote: RemoteProfile, rota: Path) -> dict[str, Any]:
    """Check a turn the model answered, citing chunks both engines hold; return its message."""
    message = _model_turn(reply)
    assert not message.get("refused"), message
    check_remote_citations(remote, TENANT, message["citations"], {"rota.md": rota})
    return message


def _delta(data: str) -> str:
    if data == "[DONE]":
        return ""
    choices = json.loads(data).get("choices") or [{}]
    return str(choices[0].get("delta", {}).get("content") or "")


def _until_free(client: httpx.Client, body: dict[str, Any], key: str) -> httpx.Response:
    """POST the turn, again while the dead replica's conversation lock or lease holds it."""
    deadline = time.monotonic() + 3 * LEASE_S + 30
    while True:
        reply = client.post("/v1/chat/completions", json=body, headers={"Idempotency-Key": key})
        if reply.status_code != 409 or time.monotonic() > deadline:
            return reply
        assert reply.json()["error"]["code"] == "conversation_busy", reply.text
        time.sleep(1)


def test_the_compose_stack_keeps_everything_when_a_replica_and_a_worker_die(
    stack: Stack, spans: list[int], tmp_path: Path
) -> None:
    remote = stack.remote
    env = {name: _env("ragent", stack, tmp_path / name) for name in ("a", "b")}
    worker_env = _env("ingest-worker", stack, tmp_path / "worker")
    store = api_keys.open_key_store(tmp_path, env["a"]["RAGENT_SERVER_REDIS_URL"])
    try:
        _, key = api_keys.create(store, tenant_id=TENANT, user_id="alice")
    finally:
        store.close()
    ports = free_port(), free_port()
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    serve = [[str(BIN / "ragent"), "serve", "--port", str(p)] for p in ports]
    worker = [str(BIN / "ragent"), "worker"]
    headers = {"Authorization": f"Bearer {key}"}
    rota = tmp_path / "rota.md"
    rota.write_text(ROTA, encoding="utf-8")
    with (
        process(serve[0], env["a"], tmp_path / "a.log") as a,
        process(serve[1], env["b"], tmp_path / "b.log") as b,
        process(worker, worker_env, tmp_path / "worker.log") as first_worker,
    ):
        # The compose healthcheck's probe: every dependency answers at its address.
        for url, proc in zip(urls, (a, b), strict=True):
            wait_http(f"{url}/readyz", proc, timeout=300)
            _ready(url)
        with (
            httpx.Client(base_url=urls[0], headers=headers, timeout=600) as via_a,
            httpx.Client(base_url=urls[1], headers=headers, timeout=600) as via_b,
        ):
            # Upload through A; B follows the job the worker runs.
            queued = via_a.post("/v1/ingest", files=[("files", ("rota.md", ROTA.encode()))])
            assert queued.status_code == 202, queued.text
            uploaded = follow_job(
                via_b, queued.json(), lambda j: j["status"] not in {"queued", "running"}, 240
            )
            assert uploaded["status"] == "succeeded", uploaded
            assert uploaded["progress"]["documents"] == 1, uploaded
            assert not [p for p in (tmp_path / "a").rglob("uploads/**/*") if p.is_file()]

            # Each replica answers with the model, citing what the worker indexed.
            first, _ = (
                _answered(
                    via.post(
                        "/v1/chat/completions", json=_body(name), headers={"Idempotency-Key": name}
                    ),
                    remote,
                    rota,
                )
                for via, name in ((via_a, "asked-a"), (via_b, "asked-b"))
            )

            # A dies while the model streams its answer to a second conversation.
            streamed = _body("handoff", stream=True)
            retried = {"Idempotency-Key": "handoff-1"}
            with via_a.stream(
                "POST", "/v1/chat/completions", json=streamed, headers=retried
            ) as response:
                assert response.status_code == 200, response.read()
                events = sse_data(response)
                head = next((data for _, data in events if _delta(data)), None)
                assert head is not None, "the stream ended before the model wrote"
                kill(a)
                with pytest.raises(httpx.HTTPError):
                    list(events)

            # The same request through B: the stream's log says the turn was interrupted.
            with via_b.stream(
                "POST", "/v1/chat/completions", json=streamed, headers=retried
            ) as response:
                assert response.status_code == 200, response.read()
                assert response.headers["idempotent-replayed"] == "true"
                tail = [data for _, data in sse_data(response)]
            assert tail[-1] == "[DONE]", tail
            assert json.loads(tail[-2])["error"]["code"] == INTERRUPTED, tail

            # Asked again through B, in the same conversation: the model answers (a small
            # model, with the interruption in the history, may say it does not know).
            second = _model_turn(_until_free(via_b, _body("handoff"), "handoff-2"))
            if second["citations"]:
                check_remote_citations(remote, TENANT, second["citations"], {"rota.md": rota})
            thread = via_b.get("/v1/threads/handoff")
            assert thread.status_code == 200, thread.text
            messages = thread.json()["messages"]
            assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
            assert messages[0] == messages[2] == {"role": "user", "content": QUESTION}
            assert messages[1]["content"] == INTERRUPTED_NOTE
            assert messages[3]["content"].strip() and second["content"].strip()
            # A's answered turn is kept in the shared checkpoints, readable through B.
            asked = via_b.get("/v1/threads/asked-a").json()["messages"]
            assert [m["role"] for m in asked] == ["user", "assistant"], asked
            assert asked[0]["content"] == QUESTION and first["content"].strip()

            # A job queued through B runs; the worker dies once it has indexed a first
            # batch of the job, before its end.
            docs = documents(24)
            queued = via_b.post("/v1/ingest", files=[("files", d) for d in docs])
            assert queued.status_code == 202, queued.text
            running = follow_job(
                via_b, queued.json(), lambda j: j["progress"]["chunks"] > 0, 240, every_s=0.25
            )
            kill(first_worker)
            assert running["status"] == "running", running
        with (
            process(worker, worker_env, tmp_path / "worker.log"),
            httpx.Client(base_url=urls[1], headers=headers, timeout=60) as via_b,
        ):
            # The new worker takes the job over once it has been idle server.ingest_claim_idle_s
            # (the compose default); one poll a second stays inside the compose rate limit.
            job = follow_job(
                via_b, running, lambda j: j["status"] not in {"queued", "running"}, 300, 1.0
            )
            again = via_b.get(f"/v1/jobs/{uploaded['id']}")
            assert again.status_code == 200 and again.json()["status"] == "succeeded", again.text
    assert job["status"] == "succeeded" and job["attempts"] == 2, job
    assert job["progress"]["files_done"] == len(docs) and not job["errors"], job
    es = remote.es_chunks(TENANT)
    es_ids, wv_ids = remote.chunk_ids(TENANT)
    assert es_ids == wv_ids and len(es) == len(es_ids)  # each chunk once, in both engines
    assert {c["source"] for c in es} == {"rota.md", *(name for name, _ in docs)}
    assert len(remote.weaviate_chunks(TENANT)) == len(wv_ids)
    assert spans, "no process exported a span to the collector's address"
