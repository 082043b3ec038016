"""``response_format`` on the real server, through the official ``openai`` client and LangChain.

The scripted model first answers off-format and then in JSON (one repair), or never in
JSON (a 502 the client does not retry); streams send the checked JSON whole; a server
with no model server answers ``json_object`` and one-string-field schemas offline.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from app.server import api_keys
from tests.e2e.api_fixtures import MODEL, Api, api_fixture, model_fixture  # noqa: F401 - fixtures
from tests.e2e.conftest import QUESTION, Corpus, check_citations, fresh_data_dir, running
from tests.openai_server import OpenAIServer, Reply, ToolCalls
from tests.servers import BIN, free_port

pytestmark = pytest.mark.e2e

VALID = '{"pages": 1000, "summary": "A checkpoint runs when the WAL reaches 1000 pages. [S1]"}'


class Checkpoint(BaseModel):
    pages: int
    summary: str


class Summary(BaseModel):
    answer: str


def ask(question: str = QUESTION) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}]


def error_of(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.response.json()
    assert isinstance(body, dict)
    error = body["error"]
    assert isinstance(error, dict)
    return error


def test_parse_repairs_a_reply_that_is_not_json(api: Api, model: OpenAIServer) -> None:
    client = api.openai(api.key("structured-repair"))
    model.plan(MODEL, Reply("It is 1000 pages. [S1]"), Reply(VALID))

    done = client.chat.completions.parse(model="ragent", messages=ask(), response_format=Checkpoint)

    parsed = done.choices[0].message.parsed
    assert parsed is not None and parsed.pages == 1000
    check_citations(
        parsed.summary, (done.choices[0].message.model_extra or {})["citations"], api.data_dir
    )
    first, repair = model.requests
    for request in (first, repair):
        sent = request["response_format"]
        assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True
        assert sent["json_schema"]["schema"]["required"] == ["pages", "summary"]
    assert "does not conform" in repair["messages"][-1]["content"]
    assert "It is 1000 pages." in json.dumps(repair["messages"])
    calls = (done.usage.model_extra or {})["calls"] if done.usage else []
    assert [c["role"] for c in calls] == ["answer", "repair"]


def test_labels_inside_json_strings_keep_it_valid(api: Api, model: OpenAIServer) -> None:
    client = api.openai(api.key("structured-labels"))
    model.plan(MODEL, Reply('{"pages": 1000, "summary": "1000 pages [S1] [S9]"}'))

    done = client.chat.completions.parse(model="ragent", messages=ask(), response_format=Checkpoint)

    parsed = done.choices[0].message.parsed
    assert parsed is not None and "[S1]" in parsed.summary and "[S9]" not in parsed.summary
    labels = [c["label"] for c in (done.choices[0].message.model_extra or {})["citations"]]
    assert labels == ["S1"]
    assert model.requests[0]["response_format"]["json_schema"]["name"] == "Checkpoint"


def test_a_model_that_never_conforms_is_a_502_not_retried(api: Api, model: OpenAIServer) -> None:
    client = openai.OpenAI(base_url=f"{api.url}/v1", api_key=api.key("structured-fail"))
    model.plan(MODEL, Reply("Not JSON."), Reply('{"pages": "many"}'))

    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.parse(model="ragent", messages=ask(), response_format=Checkpoint)

    assert raised.value.status_code == 502
    error = error_of(raised.value)
    assert error["code"] == "invalid_model_output" and error["param"] == "response_format"
    assert "does not conform" in error["message"] and "summary" in error["message"]
    assert len(model.requests) == 2  # the answer and its repair: the client did not retry


def test_json_object_stream_sends_the_checked_json_whole(api: Api, model: OpenAIServer) -> None:
    client = api.openai(api.key("structured-stream"))
    model.plan(MODEL, Reply('```json\n{"pages": 1000}\n```', piece=3))

    chunks = list(
        client.chat.completions.create(
            model="ragent",
            messages=ask(),
            response_format={"type": "json_object"},
            stream=True,
        )
    )

    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta]
    content = "".join(d for d in deltas if d)
    assert json.loads(content) == {"pages": 1000}  # the code fence is gone
    assert model.requests[0]["response_format"] == {"type": "json_object"}


def test_stream_helper_parses_and_an_invalid_stream_ends_in_an_error(
    api: Api, model: OpenAIServer
) -> None:
    client = api.openai(api.key("structured-stream-parse"))
    model.plan(MODEL, Reply(VALID, piece=5))
    with client.chat.completions.stream(
        model="ragent", messages=ask(), response_format=Checkpoint
    ) as stream:
        final = stream.get_final_completion()
    parsed = final.choices[0].message.parsed
    assert parsed is not None and parsed.pages == 1000

    model.plan(MODEL, Reply("Not JSON."), Reply("Still not."))
    with (
        pytest.raises(openai.APIError, match="does not conform"),
        client.chat.completions.stream(
            model="ragent", messages=ask(), response_format=Checkpoint
        ) as stream,
    ):
        stream.get_final_completion()


def test_json_answer_after_a_server_tool_call(api: Api, model: OpenAIServer) -> None:
    client = api.openai(api.key("structured-tools"))
    model.plan(
        MODEL,
        ToolCalls([("calculator", json.dumps({"expression": "12*7"}))]),
        Reply('{"product": 84}'),
    )

    done = client.chat.completions.create(
        model="ragent",
        messages=ask("What is 12 times 7?"),
        response_format={"type": "json_object"},
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(done)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert json.loads(text) == {"product": 84}
    first, second = model.requests
    assert first["response_format"] == second["response_format"] == {"type": "json_object"}
    assert "calculator" in [t["function"]["name"] for t in first["tools"]]
    [result] = [m for m in second["messages"] if m["role"] == "tool"]
    assert result["content"].strip() == "84"
    usage = chunks[-1].usage
    assert usage is not None
    assert [c["role"] for c in (usage.model_extra or {})["calls"]] == ["answer", "answer"]


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        ({"type": 12}, "not a valid JSON Schema"),
        ({"type": "object", "properties": {"a": {"pattern": "("}}}, "not a valid JSON Schema"),
        ({"type": "array", "items": json.loads("[" * 30 + "]" * 30)}, "nests deeper"),
        ({"properties": {"a": {"$ref": "http://127.0.0.1:9/a.json"}}}, "within the schema"),
    ],
)
def test_schemas_are_checked_and_bounded(api: Api, schema: dict[str, Any], says: str) -> None:
    client = api.openai(api.key("structured-bounds"))
    response_format: Any = {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}

    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="ragent", messages=ask(), response_format=response_format
        )

    error = error_of(raised.value)
    assert error["param"] == "response_format.json_schema.schema"
    assert says in error["message"]


def test_langchain_with_structured_output(api: Api, model: OpenAIServer) -> None:
    key = api.key("structured-langchain")
    chat = ChatOpenAI(base_url=f"{api.url}/v1", api_key=key, model="ragent", max_retries=0)  # type: ignore[arg-type]
    model.plan(MODEL, Reply(VALID), Reply('{"pages": 1000, "summary": "json mode"}'))

    parsed = chat.with_structured_output(Checkpoint).invoke(QUESTION)
    assert isinstance(parsed, Checkpoint) and parsed.pages == 1000
    assert model.requests[-1]["response_format"]["type"] == "json_schema"

    parsed = chat.with_structured_output(Checkpoint, method="json_mode").invoke(
        f"{QUESTION} Answer in JSON."
    )
    assert isinstance(parsed, Checkpoint) and parsed.summary == "json mode"
    assert model.requests[-1]["response_format"] == {"type": "json_object"}

    # The third method: the schema as a client tool that tool_choice forces.
    model.plan(MODEL, ToolCalls([("Checkpoint", '{"pages": 1000, "summary": "a call"}')]))
    parsed = chat.with_structured_output(Checkpoint, method="function_calling").invoke(QUESTION)
    assert parsed == Checkpoint(pages=1000, summary="a call")
    assert model.requests[-1]["tool_choice"]["function"]["name"] == "Checkpoint"


@dataclass
class Offline:
    url: str
    data_dir: Path

    def openai(self) -> openai.OpenAI:
        store = api_keys.SqliteKeyStore(self.data_dir / "server.sqlite")
        try:
            _, key = api_keys.create(store, tenant_id="default", user_id="offline")
        finally:
            store.close()
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def offline(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Offline]:
    root = tmp_path_factory.mktemp("offline-api")
    data_dir = fresh_data_dir(corpus, root)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"RAGENT_DATA_DIR": str(data_dir), "RAGENT_SERVER_RATE_LIMIT": "600/minute"}
    args = [str(BIN / "ragent"), "serve", "--port", str(port)]
    with running(args, health_url=f"{url}/healthz", env=env, cwd=root):
        yield Offline(url, data_dir)


def test_offline_json_object_and_one_string_schema(offline: Offline) -> None:
    client = offline.openai()

    done = client.chat.completions.create(
        model="ragent", messages=ask(), response_format={"type": "json_object"}
    )
    content = done.choices[0].message.content or ""
    assert "1000" in json.loads(content)["answer"]

    parsed = (
        client.chat.completions.parse(model="ragent", messages=ask(), response_format=Summary)
        .choices[0]
        .message.parsed
    )
    # The citation labels stay inside the JSON string.
    assert parsed is not None and "1000" in parsed.answer
    assert re.search(r"\[S\d+\]", parsed.answer), parsed.answer


def test_offline_refuses_a_schema_it_cannot_fill(offline: Offline) -> None:
    client = offline.openai()

    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.parse(model="ragent", messages=ask(), response_format=Checkpoint)

    error = error_of(raised.value)
    assert error["code"] == "response_format_unsupported"
    assert error["param"] == "response_format.json_schema.schema"
