"""``ragent serve --workers N``: several processes on one port, their state in Redis, and
one ``/metrics`` that counts every worker's requests."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from tests.e2e.conftest import QUESTION, Corpus, fresh_data_dir, running
from tests.servers import BIN, free_port, redis_server

pytestmark = pytest.mark.e2e

WORKERS = 2


@dataclass(frozen=True)
class Workers:
    url: str
    log: list[str]
    redis_url: str


def _frozen_pids(url: str) -> set[str]:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return set(re.findall(r'^ragent_gc_frozen_objects\{pid="(\d+)"\}', text, re.M))


@pytest.fixture(scope="module")
def workers(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    root = tmp_path_factory.mktemp("workers")
    data_dir = fresh_data_dir(corpus, root)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [str(BIN / "ragent"), "serve", "--port", str(port), "--no-auth"]
    with (
        redis_server() as redis,
        running(
            [*args, "--workers", str(WORKERS)],
            health_url=f"{url}/healthz",
            env={"RAGENT_DATA_DIR": str(data_dir), "RAGENT_SERVER_REDIS_URL": redis.url},
            cwd=root,
        ) as log,
    ):
        # /healthz answers once one worker is up; each worker reports itself once warm.
        deadline = time.monotonic() + 180
        while len(_frozen_pids(url)) < WORKERS:
            assert time.monotonic() < deadline, "".join(log)
            time.sleep(0.5)
        yield Workers(url, log, redis.url)


def _requests_to(text: str, route: str) -> float:
    pattern = rf'^ragent_http_requests_total\{{[^}}]*route="{re.escape(route)}"[^}}]*\}} (\S+)$'
    return sum(float(value) for value in re.findall(pattern, text, re.M))


def test_every_worker_starts_and_metrics_sum_all_of_them(workers: Workers) -> None:
    pids = _frozen_pids(workers.url)
    assert len(pids) == WORKERS, pids
    sent = 60

    def one(_: int) -> int:
        # A new connection each time, so the kernel spreads them over the workers.
        return httpx.get(f"{workers.url}/v1/threads", timeout=60).status_code

    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(one, range(sent)))
    assert statuses == [200] * sent
    # Whichever worker answers the scrape counts the other's requests too.
    for _ in range(3):
        text = httpx.get(f"{workers.url}/metrics", timeout=30).text
        assert _requests_to(text, "/v1/threads") == sent


def test_turns_on_several_workers_share_one_store(workers: Workers) -> None:
    def ask(i: int) -> httpx.Response:
        body = {"question": QUESTION, "thread_id": f"shared-{i}"}
        return httpx.post(f"{workers.url}/v1/ask", json=body, timeout=120)

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(ask, range(6)))
    assert [r.status_code for r in answers] == [200] * 6, [r.text for r in answers]
    assert all("1000 pages" in r.json()["answer"] for r in answers)
    # Each conversation's checkpoint is visible from any worker.
    for i in range(6):
        history = httpx.get(f"{workers.url}/v1/threads/shared-{i}", timeout=60)
        assert history.status_code == 200, history.text
        assert QUESTION in history.text


def test_only_a_named_conversation_is_locked_in_redis(workers: Workers) -> None:
    client = redis.Redis.from_url(workers.redis_url, decode_responses=True)
    commands: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        with client.monitor() as monitor:
            for event in monitor.listen():
                commands.append(event["command"])
                if stop.is_set():
                    return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    time.sleep(0.5)  # MONITOR is on
    chat = f"{workers.url}/v1/chat/completions"
    turn = {"model": "ragent", "messages": [{"role": "user", "content": QUESTION}]}
    new = httpx.post(chat, json=turn, timeout=120)
    assert new.status_code == 200, new.text
    conversation = new.json()["conversation_id"]
    time.sleep(0.5)
    locks_new = [c for c in commands if "busy:" in c]
    named = httpx.post(chat, json={**turn, "conversation_id": conversation}, timeout=120)
    assert named.status_code == 200, named.text
    time.sleep(0.5)
    stop.set()
    client.ping()
    watcher.join(10)
    # A new conversation's id is known to no other request while it runs: no lock.
    assert locks_new == []
    locks = [c for c in commands if "busy:" in c]
    assert [c.split()[0] for c in locks] == ["SET", "DEL"], locks
    assert conversation in locks[0] and " NX" in locks[0].upper()


def test_several_workers_without_redis_are_refused_before_binding(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "ragent"), "serve", "--port", str(free_port()), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "RAGENT_DATA_DIR": str(tmp_path)},
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ragent: error:"), done.stderr
    assert "redis_url" in lines[0]
