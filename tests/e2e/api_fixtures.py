"""One ``ragent serve`` for the HTTP API tests, with a scripted OpenAI-protocol model.

The server runs as a real process on a free port, on a copy of the e2e corpus, with
auth on. Its model is :mod:`tests.openai_server` (in this process), so each test plans
exactly what the model says; a small site on another port serves documents to ingest
by URL. Keys are written straight into the server's key store, one per test, so that
no test spends another's rate-limit bucket.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, RedirectResponse

from app.server import api_keys
from tests.e2e.conftest import Corpus, fresh_data_dir, running
from tests.openai_server import OpenAIServer, openai_server
from tests.servers import BIN, asgi_server, free_port

MODEL = "scripted-model"
TIMEOUT_S = 10
RATE_BURST = 20
MAX_INPUT_CHARS = 2000
MAX_BODY_BYTES = 20_000
DOC = "# Staging\n\nThe staging cluster is rebuilt every Tuesday at 04:00 UTC by platform.\n"


@dataclass
class Api:
    url: str
    data_dir: Path
    log: list[str]
    model: OpenAIServer
    site: str

    def key(
        self,
        user: str = "alice",
        *,
        tenant: str = "default",
        groups: tuple[str, ...] = (),
        scopes: tuple[str, ...] = api_keys.DEFAULT_SCOPES,
    ) -> str:
        store = api_keys.SqliteKeyStore(self.data_dir / "server.sqlite")
        try:
            _, key = api_keys.create(
                store, tenant_id=tenant, user_id=user, groups=groups, scopes=scopes
            )
        finally:
            store.close()
        return key

    def http(self, key: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def openai(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0, timeout=60)

    def output(self) -> str:
        return "".join(self.log)[-6000:]


def _site() -> FastAPI:
    site = FastAPI()

    @site.get("/staging.md")
    async def staging() -> PlainTextResponse:
        return PlainTextResponse(DOC, media_type="text/markdown")

    @site.get("/away")
    async def away() -> RedirectResponse:
        return RedirectResponse("http://127.0.0.2:9/secret.md")

    return site


@pytest.fixture(scope="package", name="api")
def api_fixture(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("api")
    data_dir = fresh_data_dir(corpus, root)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with openai_server() as model, asgi_server(_site()) as site:
        site_host = site.removeprefix("http://")
        env = {
            "RAGENT_DATA_DIR": str(data_dir),
            "RAGENT_LLM_BASE_URL": model.base_url,
            "RAGENT_LLM_MODEL": MODEL,
            "RAGENT_LLM_OFFLINE_FALLBACK": "false",
            "RAGENT_LLM_MAX_RETRIES": "0",
            "RAGENT_MEMORY_EXTRACTION": "explicit",
            "RAGENT_MEMORY_SUMMARIZER": "extractive",
            "RAGENT_SERVER_RATE_LIMIT": "600/minute",
            "RAGENT_SERVER_RATE_BURST": str(RATE_BURST),
            "RAGENT_SERVER_REQUEST_TIMEOUT_S": str(TIMEOUT_S),
            "RAGENT_SERVER_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
            "RAGENT_LIMITS_MAX_INPUT_CHARS": str(MAX_INPUT_CHARS),
            "RAGENT_SERVER_INGEST_URL_ALLOWLIST": json.dumps([site_host]),
        }
        args = [str(BIN / "ragent"), "serve", "--port", str(port)]
        with running(args, health_url=f"{url}/healthz", env=env, cwd=root) as log:
            yield Api(url, data_dir, log, model, site)


@pytest.fixture(name="model")
def model_fixture(api: Api) -> Iterator[OpenAIServer]:
    """The scripted model, with no plans and no recorded requests left by other tests."""
    api.model.reset()
    yield api.model
    api.model.reset()


def sse_data(response: httpx.Response) -> Iterator[tuple[str, str]]:
    """``(event id, data)`` of each event of a streamed response."""
    event_id, data = "", []
    for line in response.iter_lines():
        if not line:
            if data:
                yield event_id, "\n".join(data)
            event_id, data = "", []
        elif line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
