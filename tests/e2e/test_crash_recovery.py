"""``kill -9`` of ``ragent serve`` mid-turn, on both checkpoint backends, then a restart.

After the restart the user's messages of the killed turns are in their threads, a
``Last-Event-ID`` reconnect to the killed stream says the turn was interrupted, and
each thread takes a new message (on Redis once the dead process's conversation lock
has lapsed, at most ``LOCK_TTL_S`` later).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from app.server.chat_turns import LOCK_TTL_S
from app.server.idempotency import LEASE_S
from app.server.runs.recovery import INTERRUPTED_NOTE
from app.server.runs.streams import INTERRUPTED
from tests.e2e.api_fixtures import sse_data
from tests.e2e.conftest import Corpus, fresh_data_dir, running
from tests.openai_server import OpenAIServer, Reply, openai_server
from tests.servers import BIN, free_port, redis_server

pytestmark = pytest.mark.e2e

MODEL = "slow-model"
# About 50 s at 4 characters per 0.1 s: still streaming when the kill comes, however slow
# the machine is.
SLOW = " ".join(f"word{i}" for i in range(250))
STREAMED, JSON_TURN = "Which pages does a checkpoint copy?", "How large can the WAL grow?"
RETRIED = {"Idempotency-Key": "json-turn-1"}


def _body(question: str, conversation: str, **extra: object) -> dict[str, object]:
    return {
        "model": "ragent",
        "messages": [{"role": "user", "content": question}],
        "conversation_id": conversation,
        **extra,
    }


@contextmanager
def _serve(env: dict[str, str], cwd: Path) -> Iterator[tuple[str, list[str]]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [str(BIN / "ragent"), "serve", "--no-auth", "--port", str(port)]
    with running(args, health_url=f"{url}/healthz", env=env, cwd=cwd) as log:
        yield url, log


def _kill_server(url: str) -> None:
    """SIGKILL the process group of the server listening on ``url``'s port."""
    port = url.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in cmdline and port.encode() in cmdline:
            os.killpg(os.getpgid(int(entry.name)), signal.SIGKILL)
            return
    raise AssertionError(f"no server on port {port}")


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_killed_server_keeps_the_question_says_interrupted_and_takes_the_next_message(
    corpus: Corpus, tmp_path: Path, backend: str
) -> None:
    with ExitStack() as stack:
        model: OpenAIServer = stack.enter_context(openai_server())
        env = {
            "RAGENT_DATA_DIR": str(fresh_data_dir(corpus, tmp_path)),
            "RAGENT_LLM_BASE_URL": model.base_url,
            "RAGENT_LLM_MODEL": MODEL,
            "RAGENT_LLM_OFFLINE_FALLBACK": "false",
            "RAGENT_LLM_MAX_RETRIES": "0",
            "RAGENT_MEMORY_EXTRACTION": "explicit",
            "RAGENT_MEMORY_SUMMARIZER": "extractive",
        }
        if backend == "redis":
            redis = stack.enter_context(redis_server())
            env |= {
                "RAGENT_CHECKPOINT_BACKEND": "redis",
                "RAGENT_CHECKPOINT_REDIS_URL": redis.url,
                "RAGENT_SERVER_REDIS_URL": redis.url,
            }
        cwd = tmp_path

        # Two turns in flight when the server dies: a stream and a JSON turn.
        model.plan(MODEL, Reply(SLOW, piece=4, gap_s=0.1), Reply(SLOW, delay_s=30))
        with _serve(env, cwd) as (url, _), httpx.Client(base_url=url, timeout=60) as http:
            pool = stack.enter_context(ThreadPoolExecutor(1))
            with http.stream(
                "POST", "/v1/chat/completions", json=_body(STREAMED, "streamed", stream=True)
            ) as response:
                assert response.status_code == 200
                events = sse_data(response)
                head = [next(events) for _ in range(3)]  # the answer is under way
                pending = pool.submit(
                    httpx.post,
                    f"{url}/v1/chat/completions",
                    json=_body(JSON_TURN, "json"),
                    headers=RETRIED,
                    timeout=60,
                )
                deadline = time.monotonic() + 60
                while model.calls(MODEL) < 2 and time.monotonic() < deadline:
                    time.sleep(0.05)  # the JSON turn reached the model
                assert model.calls(MODEL) == 2
                _kill_server(url)
                with pytest.raises(httpx.HTTPError):
                    list(events)
            with pytest.raises(httpx.HTTPError):
                pending.result(30)
        last_id = head[-1][0]

        model.plan(MODEL, Reply("Fresh answer."), Reply("Another fresh answer."), Reply("Retried."))
        with _serve(env, cwd) as (url, _), httpx.Client(base_url=url, timeout=60) as http:
            # (a) Both questions survived, in their listed threads.
            listed = {t["id"] for t in http.get("/v1/threads").json()["data"]}
            assert {"streamed", "json"} <= listed
            for conversation, question in (("streamed", STREAMED), ("json", JSON_TURN)):
                thread = http.get(f"/v1/threads/{conversation}")
                assert thread.status_code == 200, thread.text
                assert thread.json()["messages"][0] == {"role": "user", "content": question}

            # (b) The stream's reconnect says what happened, then ends.
            started = time.monotonic()
            resumed = {"Last-Event-ID": last_id}
            with http.stream(
                "POST",
                "/v1/chat/completions",
                json=_body(STREAMED, "streamed", stream=True),
                headers=resumed,
            ) as response:
                assert response.status_code == 200
                tail = list(sse_data(response))
            assert time.monotonic() - started < LOCK_TTL_S + 8
            assert tail[-1][1] == "[DONE]"
            error = json.loads(tail[-2][1])["error"]
            assert error["code"] == INTERRUPTED, tail
            # Redis kept the events written before the kill; the reconnect sends them.
            seqs = [int(i.rsplit(":", 1)[1]) for i, _ in tail]
            assert seqs == list(range(int(last_id.rsplit(":", 1)[1]) + 1, seqs[0] + len(seqs)))

            # (c) Each thread takes a new message and answers it.
            for conversation, answer in (("streamed", "Fresh answer."), ("json", "Another")):
                deadline = time.monotonic() + LOCK_TTL_S + 5
                while True:
                    reply = http.post(
                        "/v1/chat/completions", json=_body("Go on, please.", conversation)
                    )
                    if reply.status_code != 409 or time.monotonic() > deadline:
                        break
                    assert reply.json()["error"]["code"] == "conversation_busy"
                    time.sleep(0.5)
                assert reply.status_code == 200, reply.text
                content = reply.json()["choices"][0]["message"]["content"]
                assert content.startswith(answer)
                messages = http.get(f"/v1/threads/{conversation}").json()["messages"]
                assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
                assert messages[1]["content"] == INTERRUPTED_NOTE

            # (d) The killed JSON turn's Idempotency-Key is free again within the lease: a
            # retry runs instead of getting "still running" until the request timeout.
            deadline = time.monotonic() + LEASE_S + 5
            while True:
                retry = http.post(
                    "/v1/chat/completions", json=_body(JSON_TURN, "json"), headers=RETRIED
                )
                if retry.status_code != 409 or time.monotonic() > deadline:
                    break
                assert retry.json()["error"]["code"] == "idempotency_in_progress"
                time.sleep(0.5)
            assert retry.status_code == 200, retry.text
