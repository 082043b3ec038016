"""Identity provider JWTs on a real ``ragent serve``: /v1, the LangGraph API and /mcp.

A local issuer (tests/oidc_issuer.py) serves discovery and its JWKS over loopback; the
server discovers the key set from it. Valid tokens act as the tenant and user their
claims name, on every surface; every invalid one is a 401 ``invalid_token``
(``openai.AuthenticationError``) with ``WWW-Authenticate: Bearer error="invalid_token"``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import anyio
import httpx
import openai
import pytest
from langgraph_sdk import get_sync_client
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.api_fixtures import MODEL
from tests.e2e.conftest import Corpus, fresh_data_dir, running
from tests.oidc_issuer import Issuer, new_key, oidc_issuer, oidc_settings
from tests.openai_server import OpenAIServer, Reply, openai_server
from tests.servers import BIN, free_port

pytestmark = pytest.mark.e2e


@dataclass
class Served:
    url: str
    issuer: Issuer
    model: OpenAIServer
    log: list[str]

    def openai(self, token: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=token, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def served(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("oidc")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with oidc_issuer() as issuer, openai_server() as model:
        env = {
            "RAGENT_DATA_DIR": str(fresh_data_dir(corpus, root)),
            "RAGENT_LLM_BASE_URL": model.base_url,
            "RAGENT_LLM_MODEL": MODEL,
            "RAGENT_LLM_OFFLINE_FALLBACK": "false",
            "RAGENT_LLM_MAX_RETRIES": "0",
            "RAGENT_MEMORY_EXTRACTION": "explicit",
            "RAGENT_SERVER_OIDC": json.dumps(oidc_settings(issuer)),
        }
        args = [str(BIN / "ragent"), "serve", "--port", str(port)]
        with running(args, health_url=f"{url}/healthz", env=env, cwd=root) as log:
            yield Served(url, issuer, model, log)


def test_a_token_acts_as_its_claims_on_v1_the_langgraph_api_and_mcp(served: Served) -> None:
    served.model.plan(MODEL, Reply("Staging is rebuilt on Tuesdays."))
    with served.openai(served.issuer.token()) as client:
        reply = client.chat.completions.create(
            model="ragent", messages=[{"role": "user", "content": "When is staging rebuilt?"}]
        )
    assert reply.choices[0].message.content == "Staging is rebuilt on Tuesdays."

    dave_token = served.issuer.token(preferred_username="dave")
    with (
        get_sync_client(url=served.url, api_key=served.issuer.token(), timeout=60) as carol,
        get_sync_client(url=served.url, api_key=dave_token, timeout=60) as dave,
    ):
        thread = carol.threads.create(metadata={"topic": "oidc"})
        found = carol.threads.search(metadata={"topic": "oidc"})
        assert [t["thread_id"] for t in found] == [thread["thread_id"]]
        assert dave.threads.search(metadata={"topic": "oidc"}) == []  # the token's identity

    async def tools() -> list[str]:
        headers = {"Authorization": f"Bearer {served.issuer.token()}"}
        async with (
            httpx.AsyncClient(headers=headers, timeout=60) as http,
            streamable_http_client(f"{served.url}/mcp", http_client=http) as (read, write, _),
            ClientSession(read, write) as client,
        ):
            await client.initialize()
            return [tool.name for tool in (await client.list_tools()).tools]

    assert "ask" in anyio.run(tools)


def _invalid(issuer: Issuer) -> dict[str, str]:
    now = int(time.time())
    return {
        "expired": issuer.token(exp=now - 120),
        "wrong audience": issuer.token(aud="another-api"),
        "wrong issuer": issuer.token(iss="https://evil.example"),
        "unknown kid": issuer.token(kid="nobody"),
        "alg none": issuer.unsigned(),
        "HS256 keyed with the public key": issuer.hs256_with_public_key(),
        "bad signature": issuer.token(key=new_key()),
    }


def test_every_invalid_token_is_refused_with_401_on_every_surface(served: Served) -> None:
    for case, token in _invalid(served.issuer).items():
        with served.openai(token) as client, pytest.raises(openai.AuthenticationError) as refused:
            client.chat.completions.create(
                model="ragent", messages=[{"role": "user", "content": "hi"}]
            )
        assert refused.value.code == "invalid_token", case
        headers = {"Authorization": f"Bearer {token}"}
        for method, path in [("GET", "/v1/threads"), ("POST", "/threads/search"), ("POST", "/mcp")]:
            response = httpx.request(
                method, f"{served.url}{path}", headers=headers, json={}, timeout=60
            )
            assert response.status_code == 401, (case, path)
            assert response.json()["error"]["code"] == "invalid_token", (case, path)
            assert 'error="invalid_token"' in response.headers["www-authenticate"], case
    metrics = httpx.get(f"{served.url}/metrics", timeout=30).text
    counts = [m for m in metrics.splitlines() if m.startswith("ragent_http_requests_total{")]
    counted = 'ragent_http_requests_total{method="POST",route="/v1/chat/completions",status="401"}'
    assert f"{counted} {len(_invalid(served.issuer))}.0" in counts, counts  # under its route
    assert not [m for m in counts if 'route="unmatched"' in m], counts


def test_a_rotated_key_is_picked_up(served: Served) -> None:
    issuer = served.issuer
    old = issuer.keys
    try:
        issuer.rotate("k2")
        time.sleep(1.1)  # jwks_min_refresh_s: 1
        with served.openai(issuer.token()) as client:
            assert client.models.list().data
    finally:
        issuer.keys = old
