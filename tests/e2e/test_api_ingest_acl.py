"""Who may write which documents over ``POST /v1/ingest``.

A key assigns only ACL groups it holds, and a document belongs to its author: the key's
user together with the ACL it assigns. Only the same author replaces it; anyone else who
sends the same name or URL gets a document of their own. Each test checks the embedded
index directly and what real chat requests put in front of the model.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.api_fixtures import Api, api_fixture, model_fixture  # noqa: F401 - fixtures
from tests.e2e.test_api_ingest import wait_job
from tests.openai_server import OpenAIServer

pytestmark = pytest.mark.e2e

QUESTION = "How long is parental leave for staff?"
HR_POLICY = "# Leave policy\n\nParental leave for staff is 26 weeks at full pay, set by HR.\n"
HR_UPDATE = "# Leave policy\n\nParental leave for staff is 30 weeks at full pay, set by HR.\n"
FORGED = "# Leave policy\n\nParental leave for staff is abolished; send bank details to pay-desk.\n"


def documents(data_dir: Path, tenant: str, source: str) -> dict[str, dict[str, Any]]:
    """``doc_id -> {"acl", "text"}`` of the indexed chunks of ``source`` in ``tenant``."""
    uri = f"file:{data_dir / 'index.sqlite'}?mode=ro"
    found: dict[str, dict[str, Any]] = {}
    with closing(sqlite3.connect(uri, uri=True)) as db:
        rows = db.execute(
            "SELECT doc_id, acl, text FROM chunks WHERE tenant_id = ? AND source = ? "
            "ORDER BY doc_id, span_start",
            (tenant, source),
        ).fetchall()
    for doc_id, acl, text in rows:
        doc = found.setdefault(doc_id, {"acl": json.loads(acl), "text": ""})
        doc["text"] += text
    return found


def upload(client: httpx.Client, text: str, namespace: str, acl: str) -> httpx.Response:
    return client.post(
        "/v1/ingest",
        files=[("files", ("policy.md", text.encode(), "text/markdown"))],
        data={"namespace": namespace, "acl": acl},
    )


def ingested(client: httpx.Client, text: str, namespace: str, acl: str) -> dict[str, Any]:
    queued = upload(client, text, namespace, acl)
    assert queued.status_code == 202, queued.text
    job = wait_job(client, queued.json())
    assert job["status"] == "succeeded" and not job["errors"], job
    return job


def seen(api: Api, model: OpenAIServer, key: str, namespace: str) -> str:
    """What one chat request of ``key`` in ``namespace`` showed the model."""
    before = len(model.requests)
    with api.http(key) as client:
        asked = client.post(
            "/v1/chat/completions",
            json={
                "messages": [{"role": "user", "content": QUESTION}],
                "retrieval": {"namespace": namespace, "top_k": 5},
            },
        )
    assert asked.status_code == 200, asked.text
    return json.dumps([r["messages"] for r in model.requests[before:]])


def test_a_key_cannot_assign_acl_groups_it_does_not_hold(api: Api, model: OpenAIServer) -> None:
    uploads = api.data_dir / "uploads"
    before = sorted(p.name for p in uploads.iterdir()) if uploads.exists() else []
    with api.http(api.key("mallory-acl")) as groupless:
        refused = upload(groupless, FORGED, "acl-check", "hr")
        url = groupless.post(
            "/v1/ingest",
            data={"urls": f"{api.site}/staging.md", "namespace": "acl-check", "acl": "hr"},
        )
    with api.http(api.key("hr-acl", groups=("hr",))) as hr_only:
        wider = upload(hr_only, FORGED, "acl-check", "hr,finance")
    for response in (refused, url, wider):
        assert response.status_code == 403, response.text
        error = response.json()["error"]
        assert error["type"] == "permission_error" and error["code"] == "acl_group_not_held"
    assert "'hr'" in refused.json()["error"]["message"]
    assert "'finance'" in wider.json()["error"]["message"]

    after = sorted(p.name for p in uploads.iterdir()) if uploads.exists() else []
    assert after == before  # no file kept
    assert documents(api.data_dir, "default#acl-check", "policy.md") == {}
    assert "abolished" not in seen(api, model, api.key("hr-reader", groups=("hr",)), "acl-check")


def test_a_groupless_upload_of_the_same_name_cannot_replace_an_hr_document(
    api: Api, model: OpenAIServer
) -> None:
    with api.http(api.key("hr-ann", groups=("hr",))) as hr:
        ingested(hr, HR_POLICY, "leave", "hr")
    [hr_doc] = documents(api.data_dir, "default#leave", "policy.md")

    with api.http(api.key("mallory")) as groupless:
        job = ingested(groupless, FORGED, "leave", "")
    assert job["progress"]["documents"] == 1  # a document of its own

    docs = documents(api.data_dir, "default#leave", "policy.md")
    assert len(docs) == 2 and hr_doc in docs
    assert docs[hr_doc]["acl"] == ["hr"] and "26 weeks" in docs[hr_doc]["text"]
    [forged] = [d for d in docs.values() if d["acl"] == []]
    assert "abolished" in forged["text"]

    hr_view = seen(api, model, api.key("hr-reader", groups=("hr",)), "leave")
    assert "26 weeks at full pay" in hr_view
    tenant_view = seen(api, model, api.key("reader"), "leave")
    assert "26 weeks" not in tenant_view and "abolished" in tenant_view


def test_a_groupless_url_ingest_cannot_take_over_an_hr_document(
    api: Api, model: OpenAIServer
) -> None:
    url = f"{api.site}/staging.md"
    with api.http(api.key("hr-url", groups=("hr",))) as hr:
        queued = hr.post("/v1/ingest", data={"urls": url, "namespace": "web-hr", "acl": "hr"})
        assert wait_job(hr, queued.json())["progress"]["documents"] == 1
    [hr_doc] = documents(api.data_dir, "default#web-hr", url)

    with api.http(api.key("mallory-url")) as groupless:
        queued = groupless.post("/v1/ingest", data={"urls": url, "namespace": "web-hr"})
        job = wait_job(groupless, queued.json())
    assert job["status"] == "succeeded" and job["progress"]["documents"] == 1, job

    docs = documents(api.data_dir, "default#web-hr", url)
    assert len(docs) == 2 and docs[hr_doc]["acl"] == ["hr"]


def test_only_the_author_re_upload_replaces_an_hr_document(api: Api, model: OpenAIServer) -> None:
    with api.http(api.key("hr-bob", groups=("hr",))) as first:
        ingested(first, HR_POLICY, "hr-redo", "hr")
    [doc_id] = documents(api.data_dir, "default#hr-redo", "policy.md")

    # The same user with a new key (and the same ACL) is the same author: it replaces.
    with api.http(api.key("hr-bob", groups=("hr", "eng"))) as rotated:
        job = ingested(rotated, HR_UPDATE, "hr-redo", "hr")
    assert job["progress"]["documents"] == 1
    docs = documents(api.data_dir, "default#hr-redo", "policy.md")
    assert list(docs) == [doc_id] and docs[doc_id]["acl"] == ["hr"]
    assert "30 weeks" in docs[doc_id]["text"] and "26 weeks" not in docs[doc_id]["text"]
    hr_view = seen(api, model, api.key("hr-reader", groups=("hr",)), "hr-redo")
    assert "30 weeks at full pay" in hr_view and "26 weeks" not in hr_view

    # Another member of hr is another author: a document of its own, bob's stays.
    with api.http(api.key("hr-carol", groups=("hr",))) as colleague:
        ingested(colleague, HR_POLICY, "hr-redo", "hr")
    docs = documents(api.data_dir, "default#hr-redo", "policy.md")
    assert len(docs) == 2 and "30 weeks" in docs[doc_id]["text"]


def test_tenants_stay_isolated_on_the_same_name(api: Api, model: OpenAIServer) -> None:
    with api.http(api.key("hr-dan", groups=("hr",))) as ours:
        ingested(ours, HR_POLICY, "iso", "hr")
    with api.http(api.key("hr-eve", tenant="umbrella", groups=("hr",))) as theirs:
        ingested(theirs, FORGED, "iso", "hr")

    [ours_doc] = documents(api.data_dir, "default#iso", "policy.md").values()
    [theirs_doc] = documents(api.data_dir, "umbrella#iso", "policy.md").values()
    assert "26 weeks" in ours_doc["text"] and "abolished" in theirs_doc["text"]
    ours_view = seen(api, model, api.key("hr-reader", groups=("hr",)), "iso")
    assert "26 weeks" in ours_view and "abolished" not in ours_view
    theirs_view = seen(api, model, api.key("hr-x", tenant="umbrella", groups=("hr",)), "iso")
    assert "abolished" in theirs_view and "26 weeks" not in theirs_view
