"""Auth, scopes, size limits, rate limits, the request timeout and the error shape."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from tests.e2e.api_fixtures import (  # noqa: F401 - fixtures
    MAX_BODY_BYTES,
    MAX_INPUT_CHARS,
    MODEL,
    RATE_BURST,
    TIMEOUT_S,
    Api,
    api_fixture,
    model_fixture,
)
from tests.e2e.conftest import QUESTION
from tests.openai_server import Hang, OpenAIServer, Reply
from tests.servers import ragent

pytestmark = pytest.mark.e2e


def body(question: str = QUESTION) -> dict[str, object]:
    return {"model": "ragent", "messages": [{"role": "user", "content": question}]}


def error_of(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    payload = response.json()
    assert set(payload) == {"error"} and set(payload["error"]) == {
        "message",
        "type",
        "param",
        "code",
    }
    return dict(payload["error"])


def test_requests_without_a_valid_key_get_401(api: Api) -> None:
    with api.http(None) as anonymous:
        missing = error_of(anonymous.post("/v1/chat/completions", json=body()), 401)
        assert missing["code"] == "missing_api_key"
        assert anonymous.get("/v1/threads").headers["www-authenticate"].startswith("Bearer")
        basic = anonymous.get("/v1/threads", headers={"Authorization": "Basic abc"})
        assert error_of(basic, 401)["code"] == "invalid_api_key"
        # Probes stay open.
        assert anonymous.get("/healthz").status_code == 200
    forged = "rgt_000000000000_" + "A" * 43
    with api.http(forged) as client:
        assert error_of(client.get("/v1/models"), 401)["type"] == "authentication_error"
    with pytest.raises(openai.AuthenticationError):
        api.openai("sk-not-ours").chat.completions.create(model="ragent", messages=[])


def test_keys_cli_creates_lists_and_revokes(api: Api) -> None:
    env = {"RAGENT_DATA_DIR": str(api.data_dir)}
    made = ragent("keys", "create", "--tenant", "default", "--user", "carol", "--json", env=env)
    assert made.returncode == 0, made.stderr
    record = json.loads(made.stdout)
    with api.http(record["key"]) as client:
        assert client.get("/v1/models").status_code == 200
        listed = json.loads(ragent("keys", "list", "--json", env=env).stdout)["keys"]
        [mine] = [k for k in listed if k["key_id"] == record["key_id"]]
        assert mine["user"] == "carol" and "key" not in mine and mine["revoked_at"] is None
        stored = (api.data_dir / "server.sqlite").read_bytes()
        assert record["key"].encode() not in stored  # only a hash is kept

        revoked = ragent("keys", "revoke", record["key_id"], env=env)
        assert revoked.returncode == 0, revoked.stderr
        assert error_of(client.get("/v1/models"), 401)["code"] == "invalid_api_key"
    bad = ragent("keys", "create", "--tenant", "a/b", "--user", "x", env=env)
    assert bad.returncode == 2 and bad.stderr.startswith("ragent: error: invalid tenant")
    unknown = ragent("keys", "revoke", "nope", env=env)
    assert unknown.returncode == 2 and "no key 'nope'" in unknown.stderr


def test_a_key_without_a_scope_gets_403(api: Api) -> None:
    with api.http(api.key("reader", scopes=("chat",))) as client:
        refused = client.post("/v1/ingest", data={"urls": "http://127.0.0.1:9/x.md"})
        assert error_of(refused, 403)["code"] == "insufficient_scope"
        assert client.get("/v1/threads").status_code == 200


def test_an_oversized_body_gets_413_and_a_long_message_400(api: Api, model: OpenAIServer) -> None:
    with api.http(api.key("big")) as client:
        huge = body("x" * (MAX_BODY_BYTES + 10))
        assert error_of(client.post("/v1/chat/completions", json=huge), 413)["code"] == (
            "body_too_large"
        )
        chunked = client.post(  # no Content-Length: counted while read
            "/v1/chat/completions",
            content=iter([json.dumps(huge).encode()]),
            headers={"content-type": "application/json"},
        )
        assert error_of(chunked, 413)["code"] == "body_too_large"
        # A message over limits.max_input_chars is OpenAI's 400 context_length_exceeded.
        long = body("why " * (MAX_INPUT_CHARS // 4 + 1))
        too_long = error_of(client.post("/v1/chat/completions", json=long), 400)
        assert (too_long["code"], too_long["param"], too_long["type"]) == (
            "context_length_exceeded",
            "messages[0].content",
            "invalid_request_error",
        )
        long_system = {
            "model": "ragent",
            "messages": [
                {"role": "system", "content": "x" * (MAX_INPUT_CHARS + 1)},
                {"role": "user", "content": "hi"},
            ],
        }
        assert error_of(client.post("/v1/chat/completions", json=long_system), 400)["code"] == (
            "context_length_exceeded"
        )
    assert model.requests == []


def test_each_key_has_its_own_token_bucket(api: Api) -> None:
    with api.http(api.key("greedy")) as greedy, api.http(api.key("patient")) as patient:
        responses = [greedy.get("/v1/models") for _ in range(RATE_BURST + 5)]
        statuses = [r.status_code for r in responses]
        assert statuses.count(200) >= RATE_BURST - 1 and 429 in statuses, statuses
        # The first refusal (a later request may find a token refilled on a slow machine).
        limited = next(r for r in responses if r.status_code == 429)
        error = error_of(limited, 429)
        assert error["code"] == "rate_limited" and error["type"] == "rate_limit_error"
        assert int(limited.headers["retry-after"]) >= 1
        assert patient.get("/v1/models").status_code == 200
        time.sleep(0.2)  # 600/minute refills one token every 0.1 s
        assert greedy.get("/v1/models").status_code == 200
    with pytest.raises(openai.RateLimitError):
        client = api.openai(api.key("greedy-sdk"))
        for _ in range(RATE_BURST + 5):
            client.models.list()


def test_a_request_past_the_timeout_gets_504_and_frees_the_thread(
    api: Api, model: OpenAIServer
) -> None:
    model.plan(MODEL, Hang(), Reply("Back again. [S1]"))
    with api.http(api.key("slow")) as client:
        started = time.monotonic()
        first = client.post("/v1/chat/completions", json={**body(), "conversation_id": "slow"})
        assert error_of(first, 504)["code"] == "timeout"
        assert TIMEOUT_S <= time.monotonic() - started < TIMEOUT_S + 15
        second = client.post("/v1/chat/completions", json={**body(), "conversation_id": "slow"})
        assert second.status_code == 200, second.text


def test_errors_have_one_shape(api: Api) -> None:
    with api.http(api.key("shapes")) as client:
        assert error_of(client.get("/v1/nowhere"), 404)["type"] == "not_found_error"
        assert error_of(client.delete("/v1/models"), 405)["code"] == "method_not_allowed"
        invalid = error_of(client.post("/v1/chat/completions", json={"messages": []}), 400)
        assert invalid["code"] == "invalid_request" and invalid["message"].startswith("messages")
        junk = client.post(
            "/v1/chat/completions", content=b"{nope", headers={"content-type": "application/json"}
        )
        assert error_of(junk, 400)["type"] == "invalid_request_error"
        hot = error_of(client.post("/v1/chat/completions", json={**body(), "temperature": 9}), 400)
        assert hot["message"].startswith("temperature")
        assistant_last = {"messages": [{"role": "assistant", "content": "hi"}]}
        last = error_of(client.post("/v1/chat/completions", json=assistant_last), 400)
        assert last["code"] == "last_message_not_user"


def test_readiness_and_metrics(api: Api) -> None:
    with api.http(None) as client:
        ready = client.get("/readyz").json()
        assert ready["status"] == "ready"
        assert {"checkpointer (sqlite)", "api_keys", "chat_model"} <= set(ready["checks"])
        metrics = client.get("/metrics").text
    assert 'ragent_http_requests_total{method="GET",route="/readyz",status="200"}' in metrics
    assert "ragent_runs_total" in metrics and "ragent_rate_limited_total" in metrics
