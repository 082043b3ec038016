"""``POST /v1/ingest`` jobs (uploads and URLs) and the ``retrieval`` options of chat."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.e2e.api_fixtures import MODEL, Api, api_fixture, model_fixture  # noqa: F401 - fixtures
from tests.e2e.conftest import QUESTION
from tests.openai_server import OpenAIServer, Reply

pytestmark = pytest.mark.e2e

NOTES = "# Rota\n\nThe on-call rota for the billing service changes every Monday at noon.\n"


def wait_job(client: httpx.Client, job: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while job["status"] in {"queued", "running"}:
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
        response = client.get(f"/v1/jobs/{job['id']}")
        assert response.status_code == 200, response.text
        job = response.json()
    return job


def prompt_of(model: OpenAIServer) -> str:
    return json.dumps(model.requests[-1]["messages"][0]["content"])


def test_uploads_are_ingested_by_a_job_into_a_namespace(api: Api, model: OpenAIServer) -> None:
    with api.http(api.key("ingester")) as client:
        queued = client.post(
            "/v1/ingest",
            files=[
                ("files", ("rota.md", NOTES.encode(), "text/markdown")),
                ("files", ("broken.pdf", b"%PDF-1.4 not really", "application/pdf")),
            ],
            data={"namespace": "ops", "acl": ""},
        )
        assert queued.status_code == 202, queued.text
        assert queued.headers["location"] == f"/v1/jobs/{queued.json()['id']}"
        job = wait_job(client, queued.json())
        assert job["status"] == "succeeded", job
        assert job["progress"]["files_total"] == job["progress"]["files_done"] == 2
        assert job["progress"]["documents"] == 1 and job["progress"]["chunks"] >= 1
        [error] = job["errors"]
        assert error["source"] == "broken.pdf" and error["reason"]

        model.plan(MODEL, Reply("Every Monday. [S1]"), Reply("No idea."), Reply("Mondays."))
        question = {"role": "user", "content": "When does the billing on-call rota change?"}
        found = client.post(
            "/v1/chat/completions",
            json={"messages": [question], "retrieval": {"namespace": "ops", "top_k": 1}},
        )
        assert found.status_code == 200, found.text
        [citation] = found.json()["choices"][0]["message"]["citations"]
        assert citation["source"] == "rota.md"
        assert "every Monday at noon" in prompt_of(model)

        only_one = {"top_k": 1}  # the tenant's main documents: the WAL page, many chunks
        client.post("/v1/chat/completions", json={"messages": [question], "retrieval": only_one})
        assert "every Monday at noon" not in prompt_of(model)
        assert "\\n[S1] " in prompt_of(model) and "\\n[S2] " not in prompt_of(model)

        dense = {"namespace": "ops", "hybrid": False}
        client.post("/v1/chat/completions", json={"messages": [question], "retrieval": dense})
        assert "every Monday at noon" in prompt_of(model)

        resent = [("files", ("rota.md", NOTES.encode()))]
        again = client.post("/v1/ingest", files=resent, data={"namespace": "ops"}).json()
        again = wait_job(client, again)
        assert again["progress"]["unchanged"] == 1 and again["progress"]["documents"] == 0

    with api.http(api.key("someone-else")) as other:
        assert other.get(f"/v1/jobs/{job['id']}").status_code == 404


def test_urls_are_fetched_from_allowlisted_hosts_only(api: Api, model: OpenAIServer) -> None:
    with api.http(api.key("fetcher")) as client:
        refused = client.post("/v1/ingest", data={"urls": "http://127.0.0.9:1/x.md"})
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "url_not_allowed"
        empty = client.post("/v1/ingest", data={})
        assert empty.status_code == 400 and empty.json()["error"]["code"] == "nothing_to_ingest"

        urls = [f"{api.site}/staging.md", f"{api.site}/away", f"{api.site}/missing.md"]
        queued = client.post("/v1/ingest", data={"urls": urls, "namespace": "web"})
        assert queued.status_code == 202, queued.text
        job = wait_job(client, queued.json())
        assert job["status"] == "succeeded" and job["progress"]["documents"] == 1, job
        reasons = {e["source"]: e["reason"] for e in job["errors"]}
        assert reasons[f"{api.site}/away"].startswith("host not in server.ingest_url_allowlist")
        assert reasons[f"{api.site}/missing.md"] == "HTTP 404"

        model.plan(MODEL, Reply("On Tuesdays. [S1]"))
        asked = client.post(
            "/v1/chat/completions",
            json={
                "messages": [{"role": "user", "content": "When is the staging cluster rebuilt?"}],
                "retrieval": {"namespace": "web"},
            },
        )
        [citation] = asked.json()["choices"][0]["message"]["citations"]
        assert citation["source"] == f"{api.site}/staging.md"


def test_retrieval_options_are_validated(api: Api) -> None:
    with api.http(api.key("validator")) as client:
        for retrieval in ({"namespace": "a/b"}, {"top_k": 0}, {"hybrid": "maybe"}, {"x": 1}):
            response = client.post(
                "/v1/chat/completions",
                json={"messages": [{"role": "user", "content": QUESTION}], "retrieval": retrieval},
            )
            assert response.status_code == 400, (retrieval, response.text)
            assert response.json()["error"]["message"].startswith("retrieval")
