"""One ``ragent serve`` with spans on the console, DEBUG JSON logs and a failing primary model.

The server is a real process on a copy of the e2e corpus. Its chat models are two models
of :mod:`tests.openai_server` (in this process): ``primary``, which the tests make fail,
and ``backup``, the configured fallback. Spans go to stderr as one JSON line each
(``exporter: console``), next to the JSON log lines, and every line is kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.server import api_keys
from tests.e2e.conftest import Corpus, fresh_data_dir, running
from tests.openai_server import OpenAIServer, openai_server
from tests.servers import BIN, free_port

PRIMARY, BACKUP = "primary", "backup"


@dataclass
class Observed:
    url: str
    data_dir: Path
    log: list[str]
    model: OpenAIServer

    def key(self, user: str = "ann", tenant: str = "default") -> str:
        store = api_keys.SqliteKeyStore(self.data_dir / "server.sqlite")
        try:
            _, key = api_keys.create(store, tenant_id=tenant, user_id=user)
        finally:
            store.close()
        return key

    def http(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of ``/metrics``: (name, sorted labels) -> value."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def records(self) -> list[dict[str, Any]]:
        """The output lines that are JSON objects (log records and spans)."""
        out = []
        for line in list(self.log):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                out.append(value)
        return out


@pytest.fixture(scope="package", name="observed")
def observed_fixture(
    corpus: Corpus, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Observed]:
    root = tmp_path_factory.mktemp("observed")
    data_dir = fresh_data_dir(corpus, root)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with openai_server() as model:
        env = {
            "RAGENT_DATA_DIR": str(data_dir),
            "RAGENT_LLM_BASE_URL": model.base_url,
            "RAGENT_LLM_MODEL": PRIMARY,
            "RAGENT_LLM_FALLBACKS": json.dumps([{"model": BACKUP}]),
            "RAGENT_LLM_MAX_RETRIES": "0",
            "RAGENT_LLM_OFFLINE_FALLBACK": "false",
            "RAGENT_MEMORY_EXTRACTION": "explicit",
            "RAGENT_MEMORY_SUMMARIZER": "extractive",
            "RAGENT_SERVER_RATE_LIMIT": "600/minute",
            "RAGENT_OBSERVABILITY_EXPORTER": "console",
            "RAGENT_OBSERVABILITY_LOG_LEVEL": "DEBUG",
        }
        args = [str(BIN / "ragent"), "serve", "--port", str(port)]
        with running(args, health_url=f"{url}/healthz", env=env, cwd=root) as log:
            yield Observed(url, data_dir, log, model)


@pytest.fixture(name="models")
def models_fixture(observed: Observed) -> Iterator[OpenAIServer]:
    observed.model.reset()
    yield observed.model
    observed.model.reset()
