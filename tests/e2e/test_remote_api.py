"""``ragent serve`` on the production retrieval profile: real Weaviate + Elasticsearch.

Uploads go through ``POST /v1/ingest`` into the key's tenant; the openai client's chat
completions (plain and streamed) answer with citations to those chunks for that tenant
and its groups only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from app.server import api_keys
from tests.e2e.conftest import running
from tests.e2e.remote_fixtures import (  # noqa: F401 - fixtures
    RemoteProfile,
    check_remote_citations,
    remote_fixture,
)
from tests.servers import BIN, free_port

pytestmark = pytest.mark.e2e

ROTA = "# Rota\n\nThe on-call rota for the billing service changes every Monday at noon.\n"
PAYROLL = "# Payroll\n\nPayroll runs on the 25th of each month, approved by the HR lead.\n"


class Server:
    def __init__(self, url: str, data_dir: Path) -> None:
        self.url, self.data_dir = url, data_dir

    def key(self, tenant: str, user: str, groups: tuple[str, ...] = ()) -> str:
        store = api_keys.SqliteKeyStore(self.data_dir / "server.sqlite")
        try:
            _, key = api_keys.create(store, tenant_id=tenant, user_id=user, groups=groups)
        finally:
            store.close()
        return key


@pytest.fixture(scope="module")
def server(remote: RemoteProfile, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("remote-api")
    data_dir = root / "data"
    data_dir.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**remote.env(data_dir), "RAGENT_SERVER_RATE_LIMIT": "600/minute"}
    args = [str(BIN / "ragent"), "serve", "--port", str(port)]
    with running(args, health_url=f"{url}/healthz", env=env, cwd=root):
        yield Server(url, data_dir)


def _ingest(client: httpx.Client, name: str, text: str, acl: str = "") -> dict[str, Any]:
    queued = client.post(
        "/v1/ingest", files=[("files", (name, text.encode(), "text/markdown"))], data={"acl": acl}
    )
    assert queued.status_code == 202, queued.text
    job: dict[str, Any] = queued.json()
    deadline = time.monotonic() + 120
    while job["status"] in {"queued", "running"}:
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
        job = client.get(f"/v1/jobs/{job['id']}").json()
    assert job["status"] == "succeeded" and job["progress"]["documents"] == 1, job
    return job


def _ask(server: Server, key: str, question: str) -> dict[str, Any]:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=60)
    reply = client.chat.completions.create(
        model="ragent", messages=[{"role": "user", "content": question}]
    )
    message = reply.choices[0].message
    extra = message.model_extra or {}
    return {"answer": message.content or "", **extra}


def test_http_ingest_and_chat_on_weaviate_and_elasticsearch(
    server: Server, remote: RemoteProfile, tmp_path: Path
) -> None:
    writer = server.key("initech", "ingester", ("hr",))
    headers = {"Authorization": f"Bearer {writer}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["vector_index (weaviate)"]["status"] == "ok"
        _ingest(client, "rota.md", ROTA)
        _ingest(client, "payroll.md", PAYROLL, acl="hr")
    es_ids, wv_ids = remote.chunk_ids("initech")
    assert es_ids == wv_ids and len(es_ids) >= 2

    reader = server.key("initech", "reader")
    rota = _ask(server, reader, "When does the billing on-call rota change?")
    assert "every Monday at noon" in rota["answer"], rota
    assert [c["source"] for c in rota["citations"]] == ["rota.md"]
    copy = tmp_path / "rota.md"
    copy.write_text(ROTA, encoding="utf-8")
    check_remote_citations(remote, "initech", rota["citations"], {"rota.md": copy})

    # ACL from the key: the HR document only for a key in the hr group.
    question = "When does payroll run?"
    assert "25th" not in _ask(server, reader, question)["answer"]
    hr = _ask(server, server.key("initech", "hr-reader", ("hr",)), question)
    assert "25th of each month" in hr["answer"], hr
    # Tenant from the key: another tenant sees nothing of initech's.
    outsider = _ask(server, server.key("umbrella", "eve", ("hr",)), question)
    assert "25th" not in outsider["answer"] and not outsider["citations"], outsider

    # Streaming through the openai client carries the same citations in the last chunk.
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=reader, max_retries=0)
    stream = client.chat.completions.create(
        model="ragent",
        messages=[{"role": "user", "content": "When does the billing on-call rota change?"}],
        stream=True,
    )
    text, citations = "", []
    for chunk in stream:
        delta = chunk.choices[0].delta if chunk.choices else None
        if delta is not None:
            text += delta.content or ""
            citations = (delta.model_extra or {}).get("citations", citations)
    assert "every Monday at noon" in text
    assert [c["source"] for c in citations] == ["rota.md"]
