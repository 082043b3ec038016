"""The real-model tier: a real llama.cpp server with a real GGUF model drives the agent.

The model (Qwen2.5-Coder-0.5B-Instruct, Q4_K_M) is a test fixture fetched and verified
by ``scripts/models.sh``; it runs on the CPU, so this tier runs alone, after the other
tests (``scripts/test.sh``): decoding collapses when another process is busy on a core.
Assertions hold for any model (shapes, tool runs, approvals, citations that map to the
retrieved chunks), never on exact wording.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from app.llm.local.process import LocalModelServer
from tests.e2e.conftest import (
    Corpus,
    fresh_data_dir,
    hermetic_environment,
    ingest_sample,
    running,
)
from tests.servers import BIN, REPO, free_port

MODEL = "qwen2.5-coder-0.5b"


def model_path() -> Path:
    """The verified GGUF file (fetched on first use).

    When it is neither cached nor fetchable, the tier fails under CI (``CI`` set, where
    scripts/test.sh fetched it first) and is skipped elsewhere.
    """
    done = subprocess.run(
        [str(REPO / "scripts" / "models.sh"), "path", MODEL],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        reason = f"the {MODEL} fixture is missing (scripts/models.sh): {done.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="package", autouse=True)
def _hermetic_env() -> Iterator[None]:
    yield from hermetic_environment()


@pytest.fixture(scope="package")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """The sample, ingested once for the real-model package."""
    return ingest_sample(tmp_path_factory)


@pytest.fixture(scope="package")
def gguf() -> Path:
    return model_path()


def start_model(gguf: Path, root: Path) -> LocalModelServer:
    """Start a llama.cpp server for ``gguf`` on a free port (the caller stops it)."""
    server = LocalModelServer(
        gguf,
        port=free_port(),
        context=8192,
        threads=os.cpu_count(),
        startup_timeout_s=300,
        alias=MODEL,
        log_path=root / "local-model.log",
    )
    server.start()
    return server


@pytest.fixture(scope="package")
def llama(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalModelServer]:
    server = start_model(gguf, tmp_path_factory.mktemp("llama"))
    try:
        yield server
    finally:
        server.stop()


def model_env(server: LocalModelServer, data_dir: Path, **extra: str) -> dict[str, str]:
    """Settings that point ragent at the local model server (used as it is, not started)."""
    return {
        "RAGENT_DATA_DIR": str(data_dir),
        "RAGENT_LLM_LOCAL_GGUF": str(server.gguf),
        "RAGENT_LLM_LOCAL_PORT": str(server.port),
        "RAGENT_LLM_MODEL": MODEL,
        # One CPU-bound request at a time: give the model room, but never forever.
        "RAGENT_LLM_TIMEOUT_S": "240",
        "RAGENT_LLM_STALL_TIMEOUT_S": "60",
        "RAGENT_LLM_MAX_TOKENS": "160",
        "RAGENT_LLM_MAX_RETRIES": "0",
        "RAGENT_LLM_OFFLINE_FALLBACK": "false",
        "RAGENT_MEMORY_EXTRACTION": "explicit",
        "RAGENT_LIMITS_MAX_RUN_SECONDS": "900",
        "RAGENT_SERVER_REQUEST_TIMEOUT_S": "900",
        **extra,
    }


@dataclass(frozen=True)
class Served:
    url: str
    data_dir: Path
    log: list[str]

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key="unused", timeout=900)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=900)


def serve(server: LocalModelServer, root: Path, corpus: Corpus, **extra: str) -> Iterator[Served]:
    data_dir = fresh_data_dir(corpus, root)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(
        [str(BIN / "ragent"), "serve", "--port", str(port), "--no-auth"],
        health_url=f"{url}/healthz",
        env=model_env(server, data_dir, **extra),
        cwd=root,
    ) as log:
        yield Served(url, data_dir, log)


@pytest.fixture(scope="package")
def served(
    llama: LocalModelServer, corpus: Corpus, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    yield from serve(llama, tmp_path_factory.mktemp("served"), corpus)
