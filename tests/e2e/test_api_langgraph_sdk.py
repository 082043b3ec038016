"""``ragent serve`` speaks the LangGraph API: ``langgraph_sdk`` against the real server.

The scenarios (:mod:`tests.e2e.langgraph_scenarios`) are the ones Studio and SDK users
rely on; here they run with API keys, tenancy and the scripted model of the API tests.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient

from app.memory.namespaces import namespace
from tests.e2e import langgraph_scenarios as scenarios
from tests.e2e.api_fixtures import MODEL, Api, api_fixture, model_fixture  # noqa: F401 - fixtures
from tests.e2e.conftest import QUESTION
from tests.e2e.langgraph_scenarios import ANSWER, Target, ask
from tests.openai_server import OpenAIServer, Reply

pytestmark = pytest.mark.e2e

SLOW = "one two three four five six seven eight nine ten eleven twelve [S1]"


def sdk(api: Api, key: str) -> SyncLangGraphClient:
    return get_sync_client(url=api.url, api_key=key, timeout=60)


@pytest.fixture
def user(
    api: Api, model: OpenAIServer, request: pytest.FixtureRequest
) -> Iterator[tuple[SyncLangGraphClient, Target]]:
    """An SDK client with a key of its own, and the server it drives."""
    name = f"sdk-{request.node.name[-40:]}"
    target = Target(api.data_dir, "default", name, lambda *b: model.plan(MODEL, *b))
    with sdk(api, api.key(name)) as client:
        yield client, target
    sys.stdout.write(api.output())  # shown when the test failed


def status_of(error: pytest.ExceptionInfo[httpx.HTTPStatusError]) -> int:
    return error.value.response.status_code


def test_assistants_search_get_graph_and_schemas(user: tuple[SyncLangGraphClient, Target]) -> None:
    client, _ = user
    scenarios.assistants_search(client)
    [indexer] = client.assistants.search(graph_id="indexer")
    graphs = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")  # LangGraph's server's
    assert indexer["assistant_id"] == str(uuid.uuid5(graphs, "indexer"))


def test_run_wait_answers_with_citations_and_keeps_the_thread(
    user: tuple[SyncLangGraphClient, Target], api: Api
) -> None:
    client, target = user
    thread_id = scenarios.run_wait_keeps_the_thread(client, target)
    # The same conversation on /v1: one thread store, one owner.
    with api.http(api.key(target.user_id)) as http:
        listed = http.get(f"/v1/threads/{thread_id}").json()
    assert [m["role"] for m in listed["messages"]] == ["user", "assistant"] * 2


def test_run_stream_streams_tokens_and_ends_with_the_answer(
    user: tuple[SyncLangGraphClient, Target],
) -> None:
    scenarios.run_stream_messages(*user)


def test_stateless_stream_of_updates_and_message_tuples(
    user: tuple[SyncLangGraphClient, Target],
) -> None:
    scenarios.run_stream_updates_and_tuples(*user)


def test_a_tool_call_runs(user: tuple[SyncLangGraphClient, Target]) -> None:
    scenarios.tool_calls(*user)


def test_an_approval_interrupt_is_resumed_with_a_command(
    user: tuple[SyncLangGraphClient, Target], api: Api
) -> None:
    client, target = user
    # Identity in the body's context is ignored: the key says who runs.
    forged = {"tenant_id": "other", "user_id": "mallory", "acl_groups": ["admins"]}
    scenarios.approval_resumed_with_command(client, target, context=forged)
    with sdk(api, api.key("mallory", tenant="other")) as mallory:
        scope = list(namespace("notes", "other", "mallory"))
        assert mallory.store.search_items(scope)["items"] == []
        assert mallory.threads.search() == []


def test_threads_search_state_and_history(user: tuple[SyncLangGraphClient, Target]) -> None:
    scenarios.threads_search_state_history(*user)


def test_store_put_get_search_delete(user: tuple[SyncLangGraphClient, Target]) -> None:
    scenarios.store_items(user[0], user[1])


def test_background_run_join_and_list(user: tuple[SyncLangGraphClient, Target]) -> None:
    client, target = user
    target.say(Reply(ANSWER, piece=4, gap_s=0.05))
    thread_id = client.threads.create()["thread_id"]
    run = client.runs.create(thread_id, "agent", input=ask(QUESTION))
    assert run["status"] in {"pending", "running"}
    with pytest.raises(httpx.HTTPStatusError) as busy:  # multitask_strategy reject
        client.runs.create(thread_id, "agent", input=ask("again?"))
    assert status_of(busy) == 409
    state = client.runs.join(thread_id, run["run_id"])
    assert isinstance(state, dict)
    scenarios.check_final_state(state, target.data_dir)
    assert client.runs.get(thread_id, run["run_id"])["status"] == "success"
    assert [r["run_id"] for r in client.runs.list(thread_id)] == [run["run_id"]]


def test_join_stream_of_a_background_run(user: tuple[SyncLangGraphClient, Target]) -> None:
    client, target = user
    target.say(Reply(ANSWER, piece=4, gap_s=0.05))
    thread_id = client.threads.create()["thread_id"]
    run = client.runs.create(
        thread_id, "agent", input=ask(QUESTION), stream_mode=["values", "messages"]
    )
    events = list(client.runs.join_stream(thread_id, run["run_id"]))
    kinds = [e.event for e in events]
    assert kinds[0] == "metadata" and kinds[-1] == "values", kinds
    assert "messages/partial" in kinds
    again = list(client.runs.join_stream(thread_id, run["run_id"]))  # replayed from the log
    assert [e.event for e in again] == kinds


def test_cancel_stops_a_run_and_the_thread_goes_on(
    user: tuple[SyncLangGraphClient, Target],
) -> None:
    client, target = user
    target.say(Reply(SLOW * 20, piece=2, gap_s=0.1), Reply(ANSWER))
    thread_id = client.threads.create()["thread_id"]
    run = client.runs.create(thread_id, "agent", input=ask(QUESTION))
    deadline = time.monotonic() + 30
    while client.runs.get(thread_id, run["run_id"])["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    started = time.monotonic()
    client.runs.cancel(thread_id, run["run_id"], wait=True)
    assert time.monotonic() - started < 10
    assert client.runs.get(thread_id, run["run_id"])["status"] == "interrupted"
    state = client.runs.wait(thread_id, "agent", input=ask(QUESTION))
    assert isinstance(state, dict)
    scenarios.check_final_state(state, target.data_dir)


def test_another_keys_threads_runs_and_items_are_invisible(
    user: tuple[SyncLangGraphClient, Target], api: Api
) -> None:
    client, target = user
    target.say(Reply(ANSWER))
    thread_id = client.threads.create()["thread_id"]
    client.runs.wait(thread_id, "agent", input=ask(QUESTION))
    [run] = client.runs.list(thread_id)
    mine = ["notes", *namespace("notes", target.tenant_id, target.user_id)[1:]]
    client.store.put_item(mine, "k", {"text": "private"})

    with sdk(api, api.key("eve")) as eve:
        for call in (
            lambda: eve.threads.get(thread_id),
            lambda: eve.threads.get_state(thread_id),
            lambda: eve.threads.get_history(thread_id),
            lambda: eve.runs.list(thread_id),
            lambda: eve.runs.get(thread_id, run["run_id"]),
            lambda: eve.runs.wait(thread_id, "agent", input=ask("hi")),
            lambda: eve.threads.delete(thread_id),
            lambda: eve.store.get_item(mine, "k"),
        ):
            with pytest.raises(httpx.HTTPStatusError) as hidden:
                call()
            assert status_of(hidden) == 404
        assert eve.threads.search() == []
        assert eve.store.search_items(mine)["items"] == []
        with pytest.raises(httpx.HTTPStatusError) as refused:
            eve.store.put_item(mine, "k", {"text": "overwritten"})
        assert status_of(refused) == 403
    assert client.store.get_item(mine, "k")["value"] == {"text": "private"}


def test_keys_limits_and_errors(api: Api) -> None:
    with httpx.Client(base_url=api.url, timeout=30) as anonymous:
        assert anonymous.get("/ok").json() == {"ok": True}
        refused = anonymous.post("/threads", json={})
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "missing_api_key"
    with api.http(api.key("sdk-limits")) as http:  # Bearer works as X-Api-Key does
        thread_id = http.post("/threads", json={}).json()["thread_id"]
        run = {"assistant_id": "agent", "input": ask(QUESTION)}
        bad = http.post(
            f"/threads/{thread_id}/runs/wait", json={**run, "context": {"top_k": 10**6}}
        )
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "context"
        long = http.post(f"/threads/{thread_id}/runs/wait", json={**run, "input": ask("x" * 5000)})
        assert long.status_code == 400 and long.json()["error"]["code"] == "question_too_long"
        huge = http.post("/threads", json={"metadata": {"x": "y" * 30_000}})
        assert huge.status_code == 413
        indexer = http.post(
            f"/threads/{thread_id}/runs/wait",
            json={"assistant_id": "indexer", "input": {"paths": ["/etc"]}},
        )
        assert indexer.status_code == 400
        resume = http.post(
            f"/threads/{thread_id}/runs/wait",
            json={"assistant_id": "agent", "command": {"resume": "approve"}},
        )
        assert resume.status_code == 409 and resume.json()["error"]["code"] == "nothing_to_resume"
