"""schemathesis, run against our OpenAPI spec on the real server, finds no 5xx.

The run is kept short (a few examples per operation, requests paced under the rate
limit, one worker) so CI stays fast; it runs the ``examples``, ``coverage`` and
``fuzzing`` phases with the ``not_a_server_error`` check.
"""

from __future__ import annotations

import re
import subprocess

import httpx
import pytest

from tests.e2e.api_fixtures import Api, api_fixture, model_fixture  # noqa: F401 - fixtures
from tests.openai_server import OpenAIServer
from tests.servers import BIN

pytestmark = pytest.mark.e2e


def test_spec_lists_our_routes(api: Api) -> None:
    spec = httpx.get(f"{api.url}/openapi.json").json()
    assert {
        "/v1/chat/completions",
        "/v1/threads",
        "/v1/threads/{thread_id}",
        "/v1/threads/{thread_id}/resume",
        "/v1/runs/{run_id}/events",
        "/v1/memories",
        "/v1/ingest",
        "/v1/jobs/{job_id}",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= set(spec["paths"])
    chat = spec["paths"]["/v1/chat/completions"]["post"]
    assert {"400", "401", "413", "429"} <= set(chat["responses"])
    statuses = {
        s for item in spec["paths"].values() for op in item.values() for s in op["responses"]
    }
    assert "422" not in statuses  # validation errors are OpenAI's 400


def test_schemathesis_finds_no_server_error(api: Api, model: OpenAIServer) -> None:
    key = api.key("schemathesis")
    result = subprocess.run(
        [
            str(BIN / "st"),
            "run",
            f"{api.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "6",
            "--phases",
            "examples,coverage,fuzzing",
            "--header",
            f"Authorization: Bearer {key}",
            "--rate-limit",
            "16/s",
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--generation-deterministic",
            # Hypothesis's health checks judge the generator, not the API: a strict request
            # schema can make it discard many examples, which is not a failure of ours.
            "--suppress-health-check",
            "filter_too_much,too_slow",
            "--exclude-path",
            "/metrics",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=600,
        env={"SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1", "PATH": str(BIN)},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert re.search(r"\b[1-9]\d* passed", output), output[-3000:]
