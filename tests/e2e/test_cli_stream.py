"""``ragent ask`` against an OpenAI-compatible server: streamed output and decoding flags."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import QUESTION, Corpus, fresh_data_dir
from tests.openai_server import OpenAIServer, Reply, openai_server
from tests.servers import BIN, ragent

pytestmark = pytest.mark.e2e

ANSWER = "By default SQLite runs a checkpoint when the WAL file reaches 1000 pages [S1]."


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    with openai_server() as srv:
        yield srv


def env_for(server: OpenAIServer, data_dir: Path) -> dict[str, str]:
    return {
        "RAGENT_DATA_DIR": str(data_dir),
        "RAGENT_LLM_BASE_URL": server.base_url,
        "RAGENT_LLM_MODEL": "stream-model",
        "RAGENT_LLM_TIMEOUT_S": "20",
    }


def test_ask_prints_tokens_as_the_model_streams_them(
    corpus: Corpus, server: OpenAIServer, tmp_path: Path
) -> None:
    server.plan("stream-model", Reply(ANSWER, piece=4, gap_s=0.1))  # about 2 s of streaming
    env = {**os.environ, **env_for(server, fresh_data_dir(corpus, tmp_path))}
    proc = subprocess.Popen(
        [str(BIN / "ragent"), "ask", QUESTION],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    arrivals: list[tuple[float, bytes]] = []
    while data := proc.stdout.read1(4096):
        arrivals.append((time.monotonic(), data))
    exited = time.monotonic()
    assert proc.wait(60) == 0, proc.stderr.read().decode() if proc.stderr else ""
    if proc.stderr is not None:
        proc.stderr.close()
    proc.stdout.close()
    first_word = next(t for t, data in arrivals if b"By" in data)
    assert exited - first_word > 1.0  # the first words were shown while the rest streamed
    out = b"".join(data for _, data in arrivals).decode()
    assert out.count(ANSWER) == 1  # printed once, as streamed
    assert "Sources:\n  [S1] " in out and "sqlite-wal.html" in out


def test_decoding_flags_reach_the_model_and_bad_ones_are_refused(
    corpus: Corpus, server: OpenAIServer, tmp_path: Path
) -> None:
    env = env_for(server, fresh_data_dir(corpus, tmp_path))
    server.plan("stream-model", Reply(ANSWER))
    before = len(server.requests)
    flags = ["--temperature", "0.3", "--top-p", "0.5", "--max-tokens", "77", "--seed", "5"]
    stops = ["--stop", "END", "--stop", "###"]
    done = ragent("ask", QUESTION, "--json", *flags, *stops, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["answer"] == ANSWER
    sent = server.requests[before]  # the answer; later requests may write memories
    assert (sent["temperature"], sent["top_p"], sent["max_completion_tokens"]) == (0.3, 0.5, 77)
    assert (sent["seed"], sent["stop"], sent["stream"]) == (5, ["END", "###"], True)
    bad = ragent("ask", QUESTION, "--temperature", "3", env=env, cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "ragent: error: temperature must be between 0 and 2"
