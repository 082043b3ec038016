"""Faults on the production retrieval profile, with engines of the test's own that it stops
and kills: start-up with an engine down, a search with one or both down, and an engine
killed in the middle of an ingest.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from app.retrieval.embedded.index import EmbeddedIndex
from app.retrieval.remote.elastic import ElasticKeywordIndex
from app.retrieval.remote.elastic import connect as es_connect
from app.retrieval.remote.weaviate import WeaviateVectorIndex
from app.retrieval.remote.weaviate import connect as wv_connect
from app.server import api_keys
from tests import engines
from tests.e2e.conftest import running
from tests.e2e.remote_fixtures import RemoteProfile
from tests.servers import BIN, free_port, ragent

pytestmark = pytest.mark.e2e

ROTA = "# Rota\n\nThe on-call rota for the billing service changes every Monday at noon.\n"
QUESTION = "When does the billing on-call rota change?"


def _free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports (all bound at once, then released)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]


class Engines:
    """A private Elasticsearch and Weaviate at fixed addresses, started and stopped at will."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ports = {name: _free_ports(n) for name, n in engines.PORTS.items()}
        self.dirs = {name: root / name for name in engines.PORTS}
        self.up: set[str] = set()

    def start(self, name: str) -> None:
        self.dirs[name].mkdir(exist_ok=True)
        engines.start(name, self.dirs[name], ports=self.ports[name])
        self.up.add(name)

    def stop(self, name: str) -> None:
        engines.stop(self.dirs[name])
        self.up.discard(name)

    def kill(self, name: str) -> None:
        """SIGKILL the server itself: no shutdown, no flush (Weaviate's pid is the server)."""
        pid = int((self.dirs[name] / "pid").read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.up.discard(name)

    def profile(self, suffix: str) -> RemoteProfile:
        return RemoteProfile(
            es_url=f"http://127.0.0.1:{self.ports['elasticsearch'][0]}",
            weaviate_url=f"http://127.0.0.1:{self.ports['weaviate'][0]}",
            weaviate_grpc_port=self.ports["weaviate"][1],
            index=f"ragent-faults-{suffix}",
            collection=f"RagentFaults{suffix}",
        )


@pytest.fixture
def own_engines(tmp_path: Path) -> Iterator[Engines]:
    started = Engines(tmp_path / "engines")
    started.root.mkdir()
    try:
        yield started
    finally:
        for name in list(engines.PORTS):
            engines.stop(started.dirs[name])


def _key(data_dir: Path, tenant: str) -> str:
    store = api_keys.SqliteKeyStore(data_dir / "server.sqlite")
    try:
        return api_keys.create(store, tenant_id=tenant, user_id="ops")[1]
    finally:
        store.close()


def _wait_ready(client: httpx.Client, want: str, seconds: float = 60) -> dict[str, Any]:
    """Poll ``/readyz`` until its status is ``want`` (503 for ``not_ready``, else 200)."""
    deadline = time.monotonic() + seconds
    while True:
        response = client.get("/readyz")
        body: dict[str, Any] = response.json()
        if body["status"] == want or time.monotonic() > deadline:
            assert body["status"] == want, response.text
            assert response.status_code == (503 if want == "not_ready" else 200), response.text
            return body
        time.sleep(0.5)


def _ingest(client: httpx.Client, name: str, text: str) -> dict[str, Any]:
    job: dict[str, Any] = client.post(
        "/v1/ingest", files=[("files", (name, text.encode(), "text/markdown"))]
    ).json()
    deadline = time.monotonic() + 120
    while job["status"] in {"queued", "running"}:
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
        job = client.get(f"/v1/jobs/{job['id']}").json()
    return job


def test_engines_down_at_start_up_and_mid_run(own_engines: Engines, tmp_path: Path) -> None:
    own_engines.start("weaviate")  # Elasticsearch stays down for now
    profile = own_engines.profile("a")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **profile.env(data_dir),
        "RAGENT_RETRIEVAL_ENGINE_TIMEOUT_S": "3",
        "RAGENT_SERVER_RATE_LIMIT": "600/minute",
    }
    args = [str(BIN / "ragent"), "serve", "--port", str(port)]
    key = _key(data_dir, "acme")
    headers = {"Authorization": f"Bearer {key}"}
    chat = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)
    messages = [{"role": "user", "content": QUESTION}]
    with (
        running(args, health_url=f"{url}/healthz", env=env, cwd=tmp_path) as log,
        httpx.Client(base_url=url, headers=headers, timeout=60) as client,
    ):
        # Started with Elasticsearch down: live, and ready, since answers come from Weaviate
        # (marked degraded); readiness names the engine that is down.
        assert client.get("/healthz").status_code == 200
        ready = _wait_ready(client, "degraded")
        assert ready["degraded"] == ["keyword_index (elasticsearch)"], ready
        checks = ready["checks"]
        assert checks["keyword_index (elasticsearch)"]["status"] == "error", checks
        assert checks["vector_index (weaviate)"]["status"] == "ok", checks
        # An ingest now fails cleanly, and leaves nothing visible behind.
        failed = _ingest(client, "rota.md", ROTA)
        assert failed["progress"]["documents"] == 0 and failed["errors"], failed
        assert chat.chat.completions.create(model="ragent", messages=messages).choices

        # Elasticsearch comes up at the configured address: everything recovers by itself.
        own_engines.start("elasticsearch")
        _wait_ready(client, "ready")
        job = _ingest(client, "rota.md", ROTA)
        assert job["status"] == "succeeded" and job["progress"]["documents"] == 1, job
        both = chat.chat.completions.create(model="ragent", messages=messages).choices[0]
        assert "every Monday at noon" in (both.message.content or "")
        assert "degraded" not in (both.message.model_extra or {})

        # Elasticsearch goes away mid-run: answers come from Weaviate, marked degraded.
        own_engines.stop("elasticsearch")
        started = time.monotonic()
        one = chat.chat.completions.create(model="ragent", messages=messages).choices[0]
        assert time.monotonic() - started < 30
        extra = one.message.model_extra or {}
        assert "every Monday at noon" in (one.message.content or ""), one
        assert extra["degraded"] == ["keyword"] and extra["citations"], extra
        stream = chat.chat.completions.create(model="ragent", messages=messages, stream=True)
        last: dict[str, Any] = {}
        for chunk in stream:
            if chunk.choices:
                last = chunk.choices[0].delta.model_extra or last
        assert last.get("degraded") == ["keyword"], last
        _wait_ready(client, "degraded")

        # Both gone: a clear 503 in the API's error shape, quickly, never a 500 or a hang.
        own_engines.stop("weaviate")
        blocked = _wait_ready(client, "not_ready")["blocking"]
        assert set(blocked) == {"keyword_index (elasticsearch)", "vector_index (weaviate)"}
        started = time.monotonic()
        response = client.post("/v1/chat/completions", json={"messages": messages})
        assert time.monotonic() - started < 30
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "search_unavailable"
        assert response.headers["retry-after"]
        streamed = client.post("/v1/chat/completions", json={"messages": messages, "stream": True})
        assert streamed.status_code == 200
        assert '"code": "search_unavailable"' in streamed.text, streamed.text
        output = "".join(log)
        at = output.find("Traceback")
        assert at < 0, output[max(0, at - 1500) : at + 3000]


def _doc(i: int, version: int) -> str:
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    paragraphs = [
        f"Section {n} of runbook {i}, version {version}: the {words[n]} service restarts "
        f"after {n + version * 7} minutes and pages team {i}-{n}-{version}. " * 6
        for n in range(len(words))
    ]
    return f"# Runbook {i}\n\n" + "\n\n".join(paragraphs) + "\n"


def _visible(
    profile: RemoteProfile,
    tenant: str,
    doc_id: str,
    wv: WeaviateVectorIndex,
    es: ElasticKeywordIndex,
) -> tuple[set[str], set[str]]:
    """The chunk ids each engine lets readers see: stored, and listed by the marker if any."""
    stored_es, stored_wv = profile.chunk_ids(tenant, doc_id)
    out = []
    for stored, markers in ((stored_wv, wv.commits), (stored_es, es.commits)):
        committed = markers.committed(tenant, [doc_id]).get(doc_id)
        out.append(stored if committed is None else stored & committed)
    return out[0], out[1]


def test_an_engine_killed_mid_ingest_leaves_no_half_written_document(
    own_engines: Engines, tmp_path: Path
) -> None:
    own_engines.start("weaviate")
    own_engines.start("elasticsearch")
    profile = own_engines.profile("b")
    data = tmp_path / "data"
    docs = tmp_path / "docs"
    docs.mkdir()
    count = 16
    for i in range(count):
        (docs / f"runbook-{i:02}.md").write_text(_doc(i, 1), encoding="utf-8")
    first = ragent("ingest", str(docs), "--json", env=profile.env(data), timeout=600)
    assert first.returncode == 0, first.stderr
    v1_objects = len(profile.weaviate_chunks("default"))
    assert v1_objects >= count * 2

    for i in range(count):  # every document changes: new chunk ids throughout
        (docs / f"runbook-{i:02}.md").write_text(_doc(i, 2), encoding="utf-8")
    ingest = subprocess.Popen(
        [str(BIN / "ragent"), "ingest", str(docs), "--json"],
        env={**os.environ, **profile.env(data)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Kill Weaviate once the second version has started to land in it.
        deadline = time.monotonic() + 300
        while len(profile.weaviate_chunks("default")) <= v1_objects + 2:
            assert ingest.poll() is None, ingest.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        own_engines.kill("weaviate")
        out, err = ingest.communicate(timeout=600)
    finally:
        if ingest.poll() is None:
            ingest.kill()
    assert ingest.returncode == 1, err
    assert err.startswith("ragent: error:"), err

    own_engines.start("weaviate")  # back at the same address, with its data
    with wv_connect(profile.weaviate_url, grpc_port=profile.weaviate_grpc_port) as wclient:
        wv = WeaviateVectorIndex(wclient, profile.collection)
        with es_connect(profile.es_url) as eclient:
            es = ElasticKeywordIndex(eclient, profile.index)
            records = EmbeddedIndex(data / "index.sqlite", dim=384)
            try:
                seen_versions = set()
                for record in records.documents("default"):
                    visible_wv, visible_es = _visible(profile, "default", record.doc_id, wv, es)
                    # Each engine shows exactly the committed version, the same in both.
                    assert visible_wv == visible_es == set(record.chunk_ids), record.source
                    texts = {
                        c["text"]
                        for c in profile.es_chunks("default", record.doc_id)
                        if c["chunk_id"] in visible_es
                    }
                    versions = {"version 1" in t for t in texts}
                    assert len(versions) == 1, record.source  # never a mix of versions
                    seen_versions |= versions
                # The kill interrupted the run: some documents still show version 1.
                assert True in seen_versions
            finally:
                records.close()

    # The next ingest finishes the job: every document at version 2, no leftovers stored.
    again = ragent("ingest", str(docs), "--json", env=profile.env(data), timeout=600)
    assert again.returncode == 0, again.stderr
    stored_es, stored_wv = profile.chunk_ids("default")
    assert stored_es == stored_wv
    assert all("version 2" in c["text"] for c in profile.es_chunks("default"))
    assert all("version 2" in c["text"] for c in profile.weaviate_chunks("default"))
