"""The output guard on the LangGraph API: every stream mode, results, state and history.

``langgraph_sdk`` against ``ragent serve``; the scripted model calls a tool with personal
data in its arguments, then answers with personal data and a secret, or recites the
system prompt. No event of any stream mode, no run result, thread, state or checkpoint
of the history may carry them raw: each carries the redactions of ``/v1``'s answer.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient

from app import prompts
from tests.e2e.api_fixtures import MODEL, Api, api_fixture, model_fixture  # noqa: F401 - fixtures
from tests.e2e.conftest import QUESTION
from tests.e2e.langgraph_scenarios import ask, text_of
from tests.e2e.test_api_stream_guard import PARAPHRASE, PII_REPLY, RAW, RECITAL, REDACTED
from tests.openai_server import OpenAIServer, Reply, ToolCalls

pytestmark = pytest.mark.e2e

MODES = ["values", "updates", "debug", "checkpoints", "tasks", "messages", "messages-tuple"]
TOOL_ARGS = json.dumps({"expression": "jane.roe@example.org + 1"})
RAW_ALL = [*RAW, "jane.roe@example.org"]
PROMPT_WORDS = "ragent, a careful"
"""Words of the system prompt (a recital holds them; a refusal does not)."""


@pytest.fixture
def client(api: Api) -> Iterator[SyncLangGraphClient]:
    """An SDK client of ``ragent serve`` with a key of its own."""
    with get_sync_client(url=api.url, api_key=api.key(f"guard-{uuid.uuid4().hex[:8]}")) as c:
        yield c


def plan_pii(model: OpenAIServer) -> None:
    """A tool call with an e-mail in its arguments, then a reply full of personal data."""
    model.plan(MODEL, ToolCalls([("calculator", TOOL_ARGS)]), Reply(PII_REPLY, piece=3))


def raw_in(payload: Any) -> list[str]:
    text = json.dumps(payload, ensure_ascii=False)
    return [raw for raw in [*RAW_ALL, PROMPT_WORDS] if raw in text]


@pytest.mark.parametrize("mode", MODES)
def test_each_stream_mode_carries_only_guarded_text(
    client: SyncLangGraphClient, model: OpenAIServer, mode: str
) -> None:
    plan_pii(model)
    thread_id = client.threads.create()["thread_id"]
    events = list(
        client.runs.stream(thread_id, "agent", input=ask(QUESTION), stream_mode=mode)  # type: ignore[arg-type]
    )
    assert "error" not in [e.event for e in events], events
    assert [(e.event, raw_in(e.data)) for e in events if raw_in(e.data)] == []
    sent = json.dumps([e.data for e in events], ensure_ascii=False)
    assert "[EMAIL]" in sent and "[PHONE]" in sent, sent[-2000:]
    # The result is the one a plain wait gives (and /v1's answer, less the tool round).
    assert text_of(client.threads.get_state(thread_id)["values"]["messages"][-1]) == REDACTED


def test_a_recited_prompt_is_refused_in_every_mode(
    client: SyncLangGraphClient, model: OpenAIServer
) -> None:
    model.plan(MODEL, Reply(RECITAL, piece=5))
    thread_id = client.threads.create()["thread_id"]
    events = list(
        client.runs.stream(
            thread_id,
            "agent",
            input=ask(PARAPHRASE),
            stream_mode=[*MODES[:5], "messages"],  # type: ignore[list-item]
        )
    )
    assert [(e.event, raw_in(e.data)) for e in events if raw_in(e.data)] == []
    assert prompts.LEAKED_PROMPT in json.dumps([e.data for e in events], ensure_ascii=False)
    history = client.threads.get_history(thread_id, limit=50)
    assert raw_in(history) == []


def test_wait_join_thread_state_and_history_are_guarded(
    client: SyncLangGraphClient, model: OpenAIServer
) -> None:
    plan_pii(model)
    thread_id = client.threads.create()["thread_id"]
    waited = client.runs.wait(thread_id, "agent", input=ask(QUESTION))
    assert isinstance(waited, dict) and raw_in(waited) == [], waited
    assert text_of(waited["messages"][-1]) == REDACTED

    plan_pii(model)
    run = client.runs.create(thread_id, "agent", input=ask(QUESTION), stream_mode="updates")
    joined = client.runs.join(thread_id, run["run_id"])
    assert raw_in(joined) == [] and text_of(joined["messages"][-1]) == REDACTED

    assert raw_in(client.threads.get(thread_id)) == []
    assert raw_in(client.threads.get_state(thread_id)) == []
    history = client.threads.get_history(thread_id, limit=50)
    assert len(history) > 10 and raw_in(history) == []
    replies = [
        text_of(m)
        for state in history
        for m in state["values"].get("messages", [])
        if m["type"] == "ai" and text_of(m)
    ]
    assert REDACTED in replies and all("@" not in r for r in replies), replies
    # Checkpoints written before guard_output ran hold the raw reply: read them one by one.
    unchecked = [s for s in history if s["next"] == ["guard_output"]]
    assert len(unchecked) == 2, [s["next"] for s in history]
    for state in unchecked:
        at = client.threads.get_state(thread_id, checkpoint_id=state["checkpoint"]["checkpoint_id"])
        assert raw_in(at) == [] and REDACTED in json.dumps(at), at["checkpoint"]
