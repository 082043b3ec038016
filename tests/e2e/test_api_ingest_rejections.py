"""Every refused upload of ``POST /v1/ingest`` leaves nothing in the uploads folder or data dir."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.api_fixtures import Api, api_fixture  # noqa: F401 - fixtures
from tests.e2e.test_api_ingest import NOTES, wait_job

pytestmark = pytest.mark.e2e

MAX_FILE_BYTES = 50_000_000  # ingest.max_file_bytes, the default the server runs with


def _files(data_dir: Path) -> set[str]:
    """The files under the data dir, and every entry under its uploads folder.

    Left out: the indexes' own files (SQLite's side files come and go, and the keyword
    index writes its segments as it catches up with the log), which hold no upload.
    """
    found = {
        str(p.relative_to(data_dir))
        for p in data_dir.rglob("*")
        if p.is_file() and not p.name.endswith(("-wal", "-shm", "-journal"))
    }
    found = {f for f in found if not f.startswith("index.tantivy")}
    uploads = data_dir / "uploads"
    return found | {str(p.relative_to(data_dir)) for p in uploads.rglob("*")}


def _refused(client: httpx.Client, api: Api, name: str, data: bytes) -> dict[str, str]:
    before = _files(api.data_dir)
    queued = client.post("/v1/ingest", files=[("files", (name, data))])
    assert queued.status_code == 202, queued.text
    job = wait_job(client, queued.json())
    assert job["status"] == "succeeded" and job["progress"]["documents"] == 0, job
    assert job["progress"]["files_done"] == job["progress"]["files_total"] == 1
    assert _files(api.data_dir) == before
    [error] = job["errors"]
    return dict(error)


def test_refused_uploads_leave_no_file_behind(api: Api) -> None:
    with api.http(api.key("refused")) as client:
        # One accepted upload first: its file stays, and the run makes the stores it needs.
        accepted = client.post("/v1/ingest", files=[("files", ("rota.md", NOTES.encode()))])
        job = wait_job(client, accepted.json())
        assert job["status"] == "succeeded" and job["progress"]["documents"] == 1, job
        [kept] = [p for p in (api.data_dir / "uploads").rglob("*") if p.is_file()]
        assert kept.name == "rota.md"
        too_large = _refused(client, api, "big.txt", b"word " * (MAX_FILE_BYTES // 5 + 1))
        assert too_large["source"] == "big.txt" and "too large" in too_large["reason"]
        unsupported = _refused(client, api, "tool.exe", b"MZ\x90\x00")
        assert unsupported["reason"] == "unsupported file type '.exe'"
        bad_name = _refused(client, api, "../../etc/", b"no name left")
        assert bad_name["reason"].startswith("unsupported file type")
        broken = _refused(client, api, "broken.pdf", b"%PDF-1.4 not really")
        assert broken["source"] == "broken.pdf" and broken["reason"]


def test_uploads_refused_for_scope_leave_no_file_behind(api: Api) -> None:
    big = [("files", ("rota.md", b"# Rota\n" * 200_000))]  # spooled to disk by the parser
    chat_key, ops_key = api.key("chatter", scopes=("chat",)), api.key("op", groups=("ops",))
    before = _files(api.data_dir)
    with api.http(chat_key) as client:
        denied = client.post("/v1/ingest", files=big)
        assert denied.status_code == 403, denied.text
    with api.http(ops_key) as client:
        wider = client.post("/v1/ingest", files=big, data={"acl": "ops,hr"})
        assert wider.status_code == 403, wider.text
        bad_namespace = client.post("/v1/ingest", files=big, data={"namespace": "a/b"})
        assert bad_namespace.status_code in {400, 422}, bad_namespace.text
    assert _files(api.data_dir) == before
