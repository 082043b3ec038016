"""``langgraph dev`` serves the Agent Protocol and our API in one process, with auth on ours."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import openai
import pytest

from app.server import api_keys
from tests.e2e.conftest import QUESTION, Corpus, check_citations
from tests.e2e.test_langgraph_dev import (
    DevServer,
    check_final_state,
    check_no_blocking_call,
    langgraph_dev,
    new_thread,
    run_wait,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def dev(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with langgraph_dev(corpus, tmp_path_factory.mktemp("lg-api"), {}) as server:
        yield server


def make_key(dev: DevServer, user: str) -> str:
    store = api_keys.SqliteKeyStore(dev.data_dir / "server.sqlite")
    try:
        return api_keys.create(store, tenant_id="default", user_id=user)[1]
    finally:
        store.close()


def test_agent_protocol_and_our_routes_side_by_side(dev: DevServer) -> None:
    # The Agent Protocol: LangGraph's own routes, untouched by our auth.
    thread_id = new_thread(dev.client)
    state = run_wait(dev, thread_id, QUESTION)
    assert "1000 pages" in check_final_state(state, dev.data_dir)
    assert dev.client.get("/ok").status_code == 200
    missing = dev.client.get(f"/threads/{uuid.uuid4()}")
    assert missing.status_code == 404 and "error" not in missing.json()  # their shape

    # Ours, in the same process: keys required, the openai client works.
    refused = dev.client.post("/v1/chat/completions", json={"messages": []})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "missing_api_key"
    key = make_key(dev, "studio-user")
    client = openai.OpenAI(
        base_url=f"{str(dev.client.base_url).rstrip('/')}/v1", api_key=key, max_retries=0
    )
    answer = client.chat.completions.create(
        model="ragent", messages=[{"role": "user", "content": QUESTION}]
    )
    message = answer.choices[0].message
    assert message.content and "1000 pages" in message.content
    check_citations(message.content, (message.model_extra or {})["citations"], dev.data_dir)

    streamed = client.chat.completions.create(
        model="ragent", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert "1000 pages" in text

    threads = dev.client.get("/v1/threads", headers={"Authorization": f"Bearer {key}"}).json()
    assert len(threads["data"]) == 2
    flagged = [line for line in dev.log if "BlockingError" in line]
    assert not flagged, "".join(flagged[:5])


def test_wrong_key_is_refused_inside_langgraph_dev(dev: DevServer) -> None:
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(
            base_url=f"{str(dev.client.base_url).rstrip('/')}/v1", api_key="rgt_0_0", max_retries=0
        ).models.list()


def test_a_tool_call_through_v1_chat_completions_inside_langgraph_dev(dev: DevServer) -> None:
    client = openai.OpenAI(
        base_url=f"{str(dev.client.base_url).rstrip('/')}/v1",
        api_key=make_key(dev, "tool-user"),
        max_retries=0,
    )
    question = [{"role": "user", "content": "What is 17 * 23?"}]
    answer = client.chat.completions.create(model="ragent", messages=question)
    assert "391" in (answer.choices[0].message.content or ""), dev.output()
    streamed = client.chat.completions.create(model="ragent", messages=question, stream=True)
    assert "391" in "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    check_no_blocking_call(dev)
