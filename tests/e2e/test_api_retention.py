"""Retention through the API: idle threads are gone (404), fresh and long ones stay.

On SQLite, ``ragent prune`` (a real process) sweeps the data dir of the running server;
on Redis, the server's own periodic pass does, with a short TTL and interval.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from app.server import api_keys
from tests.e2e.api_fixtures import Api, api_fixture, model_fixture  # noqa: F401 - fixtures
from tests.e2e.conftest import Corpus, fresh_data_dir, running
from tests.openai_server import OpenAIServer, openai_server
from tests.servers import BIN, free_port, ragent, redis_server

pytestmark = pytest.mark.e2e


def turn(http: httpx.Client, question: str, conversation: str | None = None) -> str:
    body: dict[str, object] = {
        "model": "ragent",
        "messages": [{"role": "user", "content": question}],
    }
    if conversation:
        body["conversation_id"] = conversation
    done = http.post("/v1/chat/completions", json=body)
    assert done.status_code == 200, done.text
    return str(done.json()["conversation_id"])


def test_ragent_prune_deletes_idle_threads_and_keeps_the_rest(
    api: Api, model: OpenAIServer
) -> None:
    with api.http(api.key("retention")) as http:
        idle = turn(http, "Hello from long ago")
        time.sleep(0.05)
        between = time.time()
        time.sleep(0.05)
        fresh = turn(http, "Hello now")
        long = turn(http, "First of many")
        for n in range(5):
            turn(http, f"Message {n}", long)

        env = {"RAGENT_DATA_DIR": str(api.data_dir)}
        done = ragent("prune", "--before", str(between), "--keep", "4", "--json", env=env)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["deleted"] >= 1 and report["pruned"] >= 1  # other tests' threads too

        assert http.get(f"/v1/threads/{idle}").status_code == 404
        assert idle not in {t["id"] for t in http.get("/v1/threads").json()["data"]}
        assert http.get(f"/v1/threads/{fresh}").status_code == 200
        kept = http.get(f"/v1/threads/{long}").json()
        assert [m["content"] for m in kept["messages"] if m["role"] == "user"][-1] == "Message 4"
        turn(http, "And one more", long)  # the pruned thread goes on
        again = http.get(f"/v1/threads/{long}").json()["messages"]
        assert "Message 4" in json.dumps(again) and "And one more" in json.dumps(again)


@dataclass
class Served:
    url: str
    key: str
    log: list[str]


@pytest.fixture(scope="module")
def on_redis(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``ragent serve`` on Redis whose retention pass runs every 0.5 s with a 3 s TTL."""
    root = tmp_path_factory.mktemp("retention")
    data_dir = fresh_data_dir(corpus, root)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with redis_server() as redis, openai_server() as model:
        env = {
            "RAGENT_DATA_DIR": str(data_dir),
            "RAGENT_LLM_BASE_URL": model.base_url,
            "RAGENT_LLM_MODEL": "scripted-model",
            "RAGENT_LLM_OFFLINE_FALLBACK": "false",
            "RAGENT_MEMORY_EXTRACTION": "off",
            "RAGENT_MEMORY_SUMMARIZER": "extractive",
            "RAGENT_CHECKPOINT_BACKEND": "redis",
            "RAGENT_CHECKPOINT_REDIS_URL": redis.url,
            "RAGENT_SERVER_REDIS_URL": redis.url,
            "RAGENT_CHECKPOINT_RETENTION": json.dumps(
                {"interval_s": 0.5, "thread_ttl_s": 3, "keep_checkpoints": 4}
            ),
        }
        store = api_keys.RedisKeyStore(redis.url)
        try:
            _, key = api_keys.create(store, tenant_id="default", user_id="ann")
        finally:
            store.close()
        args = [str(BIN / "ragent"), "serve", "--port", str(port)]
        with running(args, health_url=f"{url}/healthz", env=env, cwd=root) as log:
            yield Served(url, key, log)


def test_the_server_deletes_idle_threads_on_redis(on_redis: Served) -> None:
    headers = {"Authorization": f"Bearer {on_redis.key}"}
    with httpx.Client(base_url=on_redis.url, headers=headers, timeout=60) as http:
        idle = turn(http, "Hello")
        deadline = time.monotonic() + 60
        while http.get(f"/v1/threads/{idle}").status_code != 404:
            assert time.monotonic() < deadline, "".join(on_redis.log)[-4000:]
            time.sleep(0.5)
        assert idle not in {t["id"] for t in http.get("/v1/threads").json()["data"]}
        fresh = turn(http, "Hello again")
        assert http.get(f"/v1/threads/{fresh}").status_code == 200
