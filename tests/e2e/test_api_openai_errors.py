"""The official ``openai`` client against the real server: OpenAI's error statuses and
shape (a bad request is ``openai.BadRequestError`` with its ``param``), request ids on
every response, and ``GET /v1/models/{id}``.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.e2e.api_fixtures import MODEL, Api, api_fixture, model_fixture  # noqa: F401 - fixtures
from tests.e2e.conftest import QUESTION
from tests.openai_server import OpenAIServer, Reply

pytestmark = pytest.mark.e2e


def _ask() -> list[Any]:
    return [{"role": "user", "content": QUESTION}]


@pytest.mark.parametrize(
    ("request_", "param", "code"),
    [
        ({"messages": _ask(), "temperature": 5}, "temperature", "invalid_request"),
        ({"messages": []}, "messages", "invalid_request"),
        ({"messages": [{"role": "user"}, {"role": "robot", "content": "x"}]}, "messages[1].role",
         "invalid_request"),
        ({"messages": _ask(), "n": 2}, "n", "invalid_request"),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "messages",
         "last_message_not_user"),
        ({"messages": [{"role": "user", "content": " "}]}, "messages", "empty_message"),
        ({"messages": _ask(), "tools": [{"type": "function", "function": {"name": "calculator"}},
          {"type": "function", "function": {"name": "http_get"}}]}, "tools[1].function.name",
         "unknown_tool"),
    ],
    ids=["temperature", "no-messages", "bad-role", "n", "assistant-last", "empty", "unknown-tool"],
)  # fmt: skip
def test_a_bad_request_is_a_bad_request_error_naming_the_field(
    api: Api, request_: dict[str, Any], param: str, code: str
) -> None:
    client = api.openai(api.key("openai-400"))
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="ragent", **request_)
    error = caught.value
    assert error.status_code == 400
    assert (error.param, error.code, error.type) == (param, code, "invalid_request_error")
    assert error.request_id and error.request_id.startswith("req_")
    if param == "n":
        assert "only n=1 is supported" in error.message


def test_n_of_one_is_answered(api: Api, model: OpenAIServer) -> None:
    client = api.openai(api.key("openai-n1"))
    model.plan(MODEL, Reply("It is 1000 pages. [S1]"))
    answer = client.chat.completions.create(model="ragent", messages=_ask(), n=1)
    assert len(answer.choices) == 1


def test_every_response_carries_a_request_id(api: Api, model: OpenAIServer) -> None:
    client = api.openai(api.key("openai-request-id"))
    model.plan(MODEL, Reply("It is 1000 pages. [S1]"))

    raw = client.chat.completions.with_raw_response.create(model="ragent", messages=_ask())

    request_id = raw.headers["x-request-id"]
    assert request_id.startswith("req_") and raw.parse().choices
    assert raw.request_id == request_id
    listed = client.models.with_raw_response.list()
    assert listed.headers["x-request-id"] not in {"", request_id}  # one per request
    with api.http(None) as anonymous:  # errors before the route too (a 401 here)
        refused = anonymous.get("/v1/models", headers={"X-Request-Id": "trace-42.a:b"})
        assert refused.status_code == 401 and refused.headers["x-request-id"] == "trace-42.a:b"
        odd = anonymous.get("/v1/models", headers={"X-Request-Id": "a b\tc" + "x" * 200})
        assert odd.headers["x-request-id"].startswith("req_")  # not echoed: not a short token
        assert anonymous.get("/healthz").headers["x-request-id"].startswith("req_")


def test_models_are_retrieved_by_id(api: Api) -> None:
    client = api.openai(api.key("openai-models"))
    listed = client.models.list()
    [card] = listed.data

    retrieved = client.models.retrieve("ragent")

    assert retrieved == card and retrieved.id == "ragent" and retrieved.object == "model"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-4o")
    assert (caught.value.code, caught.value.param) == ("model_not_found", "model")
    assert caught.value.request_id
