"""Scheduled source syncs and the admin endpoints, on two ``ragent serve`` sharing one Redis.

Source ``kb`` syncs every second on its own; ``manual`` only when asked. Both replicas
run the schedule: the runs recorded in Redis never overlap, and either replica answers
for the source's status, its history and a sync asked for over HTTP.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from app.ingest.ids import stable_id
from app.server import api_keys
from app.sources.locks import RedisSourceLock
from app.sources.status import RedisStatusStore
from tests.e2e.conftest import running
from tests.servers import BIN, free_port, ragent, redis_server
from tests.sources import CREATE, execute

pytestmark = pytest.mark.e2e

QUERY = "SELECT id, title, body, category, groups, updated_at FROM articles"


@dataclass
class Pair:
    urls: tuple[str, str]
    redis_url: str
    env: dict[str, str]
    db: str

    def key(self, tenant: str, *scopes: str) -> str:
        store = api_keys.RedisKeyStore(self.redis_url)
        try:
            _, key = api_keys.create(store, tenant_id=tenant, user_id="ann", scopes=scopes)
        finally:
            store.close()
        return key

    def get(self, server: int, path: str, key: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.get(f"{self.urls[server]}{path}", headers=headers, timeout=30)

    def post(self, server: int, path: str, key: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"}
        return httpx.post(f"{self.urls[server]}{path}", headers=headers, timeout=30)


def _source(name: str, db: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "url": db,
        "query": QUERY,
        "id_column": "id",
        "title_column": "title",
        "text_columns": ["body"],
        "acl_column": "groups",
        "updated_at_column": "updated_at",
        **extra,
    }


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("sources")
    db = f"sqlite:///{root / 'kb.sqlite'}"
    execute(
        db,
        CREATE,
        "INSERT INTO articles VALUES (1, 'Kettles', 'descale the kettle monthly', 'home',"
        " NULL, '2026-01-01 10:00:00')",
        "INSERT INTO articles VALUES (2, 'Payroll', 'salary bands are confidential', 'hr',"
        " 'hr', '2026-01-01 11:00:00')",
    )
    ports = (free_port(), free_port())
    with redis_server() as server:
        env = {
            "RAGENT_DATA_DIR": str(root / "data"),
            "RAGENT_SERVER_REDIS_URL": server.url,
            "RAGENT_SOURCES": json.dumps([_source("kb", db, every_s=1), _source("manual", db)]),
        }

        def serve(port: int) -> Any:
            args = [str(BIN / "ragent"), "serve", "--port", str(port)]
            return running(args, health_url=f"http://127.0.0.1:{port}/healthz", env=env, cwd=root)

        with serve(ports[0]), serve(ports[1]):
            urls = (f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}")
            yield Pair(urls, server.url, env, db)


def _until(check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.2)
    raise AssertionError("not within the time allowed")


def test_a_scheduled_source_syncs_on_its_own_and_never_twice_at_once(pair: Pair) -> None:
    admin = pair.key("default", "admin")
    store = RedisStatusStore(redis.Redis.from_url(pair.redis_url))
    _until(lambda: len(store.runs("default", "kb")) >= 3)
    status = pair.get(1, "/v1/sources/kb", admin).json()
    assert status["every_s"] == 1 and status["last_result"]["trigger"] == "schedule"
    assert status["last_result"]["error"] is None
    runs = store.runs("default", "kb")
    assert runs[0]["indexed"] == 2  # the first run indexed both rows, the next skip them
    assert all(r["indexed"] == 0 for r in runs[1:])
    for before, after in zip(runs, runs[1:], strict=False):
        assert after["started_at"] >= before["finished_at"] + 1, (before, after)

    execute(
        pair.db,
        "UPDATE articles SET body = 'descale the teapot weekly',"
        " updated_at = '2026-02-01 10:00:00' WHERE id = 1",
    )
    changed = _until(lambda: [r for r in store.runs("default", "kb") if r["indexed"] == 1])
    assert changed[0]["cursor"] == "2026-02-01 10:00:00"
    listed = ragent("sources", "status", "--json", env=pair.env)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)["sources"]}
    assert rows["kb"]["last_result"]["trigger"] == "schedule"
    assert rows["manual"]["state"] == "never"


def test_admins_list_sources_and_ask_for_a_sync(pair: Pair) -> None:
    admin, chat = pair.key("default", "admin"), pair.key("default", "chat")
    stranger = pair.key("elsewhere", "admin")
    for path in ("/v1/sources", "/v1/sources/kb"):
        assert pair.get(0, path, None).status_code == 401
        refused = pair.get(0, path, chat)
        assert refused.status_code == 403
        assert refused.json()["error"]["type"] == "permission_error"
    missing = pair.get(0, "/v1/sources/kb", stranger)  # another tenant's source
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "source_not_found"
    assert pair.get(0, "/v1/sources", stranger).json() == {"sources": []}
    names = [s["source"] for s in pair.get(0, "/v1/sources", admin).json()["sources"]]
    assert names == ["kb", "manual"]

    started = pair.post(0, "/v1/sources/manual/sync", admin)
    assert started.status_code == 202, started.text
    assert started.headers["location"] == "/v1/sources/manual"
    done = _until(lambda: pair.get(1, "/v1/sources/manual", admin).json().get("last_result"))
    assert (done["trigger"], done["indexed"] + done["unchanged"], done["error"]) == (
        "manual",
        2,
        None,
    )

    # A sync of it running on another replica (its lock held in Redis): 409 on both.
    held = RedisSourceLock(
        redis.Redis.from_url(pair.redis_url),
        f"ragent:source-sync:{stable_id('default', 'manual')}",
    )
    assert held.acquire()
    try:
        for server in (0, 1):
            busy = pair.post(server, "/v1/sources/manual/sync", admin)
            assert busy.status_code == 409
            assert busy.json()["error"]["code"] == "sync_running"
        assert pair.get(0, "/v1/sources/manual", admin).json()["running"] is True
    finally:
        held.release()
    assert pair.post(1, "/v1/sources/manual/sync", admin).status_code == 202


def test_ragent_worker_runs_the_schedule_too(pair: Pair, tmp_path: Path) -> None:
    env = {
        **os.environ,
        **pair.env,
        "RAGENT_DATA_DIR": str(tmp_path / "worker-data"),
        "RAGENT_SERVER_INGEST_QUEUE": "true",
        "RAGENT_SOURCES": json.dumps([_source("side", pair.db, every_s=1)]),
    }
    log = tmp_path / "worker.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(BIN / "ragent"), "worker"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    store = RedisStatusStore(redis.Redis.from_url(pair.redis_url))
    try:
        runs = _until(lambda: store.runs("default", "side"), timeout=120)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    assert runs[0]["holder"].endswith(f"-{proc.pid}"), log.read_text()[-2000:]
    assert (runs[0]["trigger"], runs[0]["error"]) == ("schedule", None)


def test_an_unknown_source_is_404(pair: Pair, tmp_path: Path) -> None:
    admin = pair.key("default", "admin")
    response = pair.post(0, "/v1/sources/none-such/sync", admin)
    assert response.status_code == 404
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
