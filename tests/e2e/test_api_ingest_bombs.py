"""``POST /v1/ingest`` of hostile files: each refused with its reason, nothing kept, server healthy.

The server runs with a 1 GB parser memory cap, so that a bomb the checks cannot see (zlib
under ASCIIHexDecode in a PDF) is stopped by the parser process's cap in seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from app.server import api_keys
from tests import hostile_files as hostile
from tests.e2e.conftest import Corpus, fresh_data_dir, running
from tests.e2e.test_api_ingest import NOTES, wait_job
from tests.e2e.test_api_ingest_rejections import _files
from tests.servers import BIN, free_port

pytestmark = pytest.mark.e2e

PARSE_MEMORY_BYTES = 1_000_000_000
HOSTILE: dict[str, tuple[Callable[[], bytes], str]] = {
    "report.docx": (hostile.docx_bomb, "decompression bomb: a part inflates"),
    "laughs.docx": (hostile.docx_billion_laughs, "an XML part declares a DTD"),
    "xxe.docx": (hostile.docx_external_entity, "an XML part declares a DTD"),
    "scan.pdf": (hostile.pdf_bomb, "decompression bomb: its streams inflate to more than"),
    "deep.html": (hostile.deep_html, "HTML elements nested more than 255 deep"),
    "deep.md": (lambda: hostile.deep_markdown_list(600), "line 258 is nested 257 levels deep"),
    "hidden.pdf": (
        lambda: hostile.pdf_hidden_bomb(1500 << 20),
        "exceeded the parse memory limit (ingest.parse_memory_bytes)",
    ),
}


@pytest.fixture(scope="module", name="server")
def server_fixture(
    corpus: Corpus, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("bombs")
    data_dir = fresh_data_dir(corpus, root)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "RAGENT_DATA_DIR": str(data_dir),
        "RAGENT_INGEST_PARSE_MEMORY_BYTES": str(PARSE_MEMORY_BYTES),
        "RAGENT_SERVER_RATE_LIMIT": "600/minute",
    }
    args = [str(BIN / "ragent"), "serve", "--port", str(port)]
    with running(args, health_url=f"{url}/healthz", env=env, cwd=root):
        yield url, data_dir


def _client(url: str, data_dir: Path) -> httpx.Client:
    store = api_keys.SqliteKeyStore(data_dir / "server.sqlite")
    try:
        _, key = api_keys.create(store, tenant_id="default", user_id="bomber")
    finally:
        store.close()
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


class _HealthWatch:
    """Polls ``/healthz`` in a thread; records each latency, or the failure."""

    def __init__(self, url: str) -> None:
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, args=(url,), daemon=True)

    def _poll(self, url: str) -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    status = client.get("/healthz").status_code
                except httpx.HTTPError as exc:
                    self.failures.append(type(exc).__name__)
                else:
                    if status != 200:
                        self.failures.append(f"HTTP {status}")
                self.latencies.append(time.perf_counter() - started)
                time.sleep(0.05)

    def __enter__(self) -> _HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(15)


def test_hostile_uploads_are_refused_with_reasons_and_leave_nothing(
    server: tuple[str, Path],
) -> None:
    url, data_dir = server
    with _client(url, data_dir) as client:
        accepted = client.post("/v1/ingest", files=[("files", ("rota.md", NOTES.encode()))])
        assert wait_job(client, accepted.json())["progress"]["documents"] == 1
        before = _files(data_dir)
        with _HealthWatch(url) as health:
            for name, (make, reason) in HOSTILE.items():
                queued = client.post("/v1/ingest", files=[("files", (name, make()))])
                assert queued.status_code == 202, queued.text
                job = wait_job(client, queued.json())
                assert job["status"] == "succeeded" and job["progress"]["documents"] == 0, job
                [error] = job["errors"]
                assert error["source"] == name and error["reason"].startswith(reason), error
                assert _files(data_dir) == before, name
        # Served throughout, never a failure; a stall of seconds (as before) shows here too.
        assert health.failures == [] and len(health.latencies) > 10
        assert max(health.latencies) < 5, max(health.latencies)
        # The parser process was replaced: an ordinary file still goes in.
        again = client.post(
            "/v1/ingest",
            files=[
                ("files", ("memo.md", b"# Memo\n\nLunch is at noon on Fridays in the canteen.\n"))
            ],
        )
        assert wait_job(client, again.json())["progress"]["documents"] == 1
