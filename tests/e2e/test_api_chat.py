"""``POST /v1/chat/completions`` on the real server, driven by the official ``openai`` client.

Answers with citations and usage, streaming, tools, approval and resume, a new
conversation built from the messages, and conversations that continue.
"""

from __future__ import annotations

import json

import openai
import pytest
from openai.types.chat import ChatCompletion

from tests.e2e.api_fixtures import MODEL, Api, api_fixture, model_fixture, sse_data  # noqa: F401 - fixtures
from tests.e2e.conftest import QUESTION, check_citations
from tests.openai_server import OpenAIServer, Reply, ToolCalls

pytestmark = pytest.mark.e2e

ANSWER = "By default SQLite runs a checkpoint when the WAL file reaches 1000 pages. [S1]"


def ask(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}]


def test_answer_has_citations_usage_and_a_conversation(api: Api, model: OpenAIServer) -> None:
    client = api.openai(api.key("chat-answer"))
    model.plan(MODEL, Reply(ANSWER), Reply("It is 1000 pages. [S1]"))

    first = client.chat.completions.create(model="ragent", messages=ask(QUESTION))

    choice = first.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.content == ANSWER
    extra = choice.message.model_extra or {}
    assert extra["refused"] is False
    check_citations(ANSWER, extra["citations"], api.data_dir)
    assert first.usage is not None and first.usage.prompt_tokens > 0
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens
    conversation = (first.model_extra or {})["conversation_id"]

    second = client.chat.completions.create(
        model="ragent",
        messages=ask("And what is the default size of that threshold?"),
        extra_body={"conversation_id": conversation},
    )
    assert (second.model_extra or {})["conversation_id"] == conversation
    sent = json.dumps(model.requests[-1]["messages"])
    assert QUESTION in sent and ANSWER.split(" [S1]")[0] in sent  # the thread's history


def test_stream_with_the_openai_client(api: Api, model: OpenAIServer) -> None:
    client = api.openai(api.key("chat-stream"))
    model.plan(MODEL, Reply(ANSWER, piece=5))

    chunks = list(
        client.chat.completions.create(
            model="ragent",
            messages=ask(QUESTION),
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    deltas = [c.choices[0].delta.content for c in chunks if c.choices]
    deltas = [d for d in deltas if d]
    assert len(deltas) > 5 and "".join(deltas) == ANSWER
    [last] = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert last.choices[0].finish_reason == "stop"
    check_citations(ANSWER, (last.choices[0].delta.model_extra or {})["citations"], api.data_dir)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    assert len({c.id for c in chunks}) == 1


def test_tools_name_the_server_tools_the_run_may_use(api: Api, model: OpenAIServer) -> None:
    client = api.openai(api.key("chat-tools"))
    model.plan(
        MODEL,
        ToolCalls([("calculator", json.dumps({"expression": "12*7"}))]),
        Reply("12 times 7 is 84."),
    )
    tools = [{"type": "function", "function": {"name": "calculator", "parameters": {}}}]

    done = client.chat.completions.create(
        model="ragent",
        messages=ask("What is 12 times 7?"),
        tools=tools,  # type: ignore[arg-type]
    )

    assert done.choices[0].message.content == "12 times 7 is 84."
    first, second = model.requests[-2:]
    assert [t["function"]["name"] for t in first["tools"]] == ["calculator"]
    [result] = [m for m in second["messages"] if m["role"] == "tool"]
    assert result["content"].strip() == "84"

    model.plan(MODEL, Reply("No tools here."))
    client.chat.completions.create(model="ragent", messages=ask("Hello there"), tool_choice="none")
    assert "tools" not in model.requests[-1]

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="ragent",
            messages=ask("What is 1+1?"),
            tools=[{"type": "function", "function": {"name": "http_get", "parameters": {}}}],
        )
    assert caught.value.body["code"] == "unknown_tool"  # type: ignore[index]


def test_approval_pauses_the_run_and_resume_finishes_it(api: Api, model: OpenAIServer) -> None:
    key = api.key("chat-approve")
    client = api.openai(key)
    note = {"title": "Groceries", "text": "buy oat milk"}
    model.plan(MODEL, ToolCalls([("create_note", json.dumps(note))]), Reply("Saved your note."))

    paused = client.chat.completions.create(model="ragent", messages=ask("Save a note: oat milk"))

    choice = paused.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.function.name == "create_note" and json.loads(call.function.arguments) == note
    [approval] = (choice.message.model_extra or {})["approvals"]
    assert (approval["id"], approval["tool"], approval["risk"]) == (call.id, "create_note", "write")
    conversation = (paused.model_extra or {})["conversation_id"]

    with pytest.raises(openai.ConflictError) as caught:  # a new message while the run waits
        client.chat.completions.create(
            model="ragent", messages=ask("hello?"), extra_body={"conversation_id": conversation}
        )
    assert caught.value.body["code"] == "approval_pending"  # type: ignore[index]
    with api.http(key) as http:
        assert http.get("/v1/memories", params={"kind": "notes"}).json()["data"] == []
        assert http.get(f"/v1/threads/{conversation}").json()["approvals"] == [approval]

        done = client.post(
            f"/threads/{conversation}/resume", body={"decision": "approve"}, cast_to=ChatCompletion
        )
        assert done.choices[0].message.content == "Saved your note."
        assert done.choices[0].finish_reason == "stop"

        [saved] = http.get("/v1/memories", params={"kind": "notes"}).json()["data"]
        assert (saved["title"], saved["text"]) == ("Groceries", "buy oat milk")
        again = http.post(f"/v1/threads/{conversation}/resume", json={"decision": "approve"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "nothing_to_resume"
        gone = http.delete(f"/v1/memories/{saved['id']}", params={"kind": "notes"})
        assert gone.status_code == 200, gone.text
        assert http.get("/v1/memories", params={"kind": "notes"}).json()["data"] == []


def test_streamed_approval_and_streamed_resume(api: Api, model: OpenAIServer) -> None:
    model.plan(
        MODEL,
        ToolCalls([("create_note", json.dumps({"title": "t", "text": "x"}))]),
        Reply("Not saved, as you wish."),
    )
    with api.http(api.key("chat-stream-approve")) as http:
        body = {"model": "ragent", "messages": ask("Save a note: x"), "stream": True}
        with http.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            events = [data for _, data in sse_data(response)]
        assert events[-1] == "[DONE]"
        last = json.loads(events[-2])
        choice = last["choices"][0]
        assert choice["finish_reason"] == "tool_calls"
        assert choice["delta"]["tool_calls"][0]["function"]["name"] == "create_note"
        call_id = choice["delta"]["approvals"][0]["id"]

        resume = {"decision": {call_id: "deny"}, "stream": True}
        path = f"/v1/threads/{last['conversation_id']}/resume"
        with http.stream("POST", path, json=resume) as response:
            events = [data for _, data in sse_data(response)]
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-1])
    assert text == "Not saved, as you wish."
    [denied] = [m for m in model.requests[-1]["messages"] if m["role"] == "tool"]
    assert "did not approve" in denied["content"]


def test_a_new_conversation_starts_from_the_messages(api: Api, model: OpenAIServer) -> None:
    client = api.openai(api.key("chat-history"))
    model.plan(MODEL, Reply("Bonjour Ann."))
    messages = [
        {"role": "system", "content": "Answer in French. Use {braces} literally."},
        {"role": "user", "content": "Hi, I am Ann."},
        {"role": "assistant", "content": "Hello Ann."},
        {"role": "user", "content": "Hello again"},
    ]
    done = client.chat.completions.create(model="ragent", messages=messages)  # type: ignore[arg-type]
    assert done.choices[0].message.content == "Bonjour Ann."
    sent = model.requests[-1]["messages"]
    assert "Answer in French. Use {braces} literally." in sent[0]["content"]
    assert [(m["role"], m["content"]) for m in sent[1:]] == [
        ("user", "Hi, I am Ann."),
        ("assistant", "Hello Ann."),
        ("user", "Hello again"),
    ]
