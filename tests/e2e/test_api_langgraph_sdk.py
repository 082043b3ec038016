"""``ragent serve`` speaks the LangGraph API: ``langgraph_sdk`` against the real server.

The scenarios (:mod:`tests.e2e.langgraph_scenarios`) are the ones Studio and SDK users
rely on. Each runs against ``ragent serve`` (API keys, tenancy, the scripted model of the
API tests) and against ``langgraph dev`` on the same graphs and model, so both servers are
held to the same client. Then what only ``ragent serve`` promises: tenancy, identity from
the key, limits, replayed streams, and runs shared by workers over Redis.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient

from app.memory.namespaces import namespace
from tests.e2e import langgraph_scenarios as scenarios
from tests.e2e.api_fixtures import MODEL, Api, api_fixture, model_fixture  # noqa: F401 - fixtures
from tests.e2e.conftest import QUESTION, Corpus, fresh_data_dir, running
from tests.e2e.langgraph_scenarios import ANSWER, SLOW, Target, ask
from tests.e2e.test_langgraph_dev import DevServer, langgraph_dev
from tests.openai_server import OpenAIServer, Reply, ToolCalls, openai_server
from tests.servers import BIN, free_port, redis_server

pytestmark = pytest.mark.e2e

User = tuple[SyncLangGraphClient, Target]
STUDIO = "https://smith.langchain.com"


def sdk(url: str, key: str | None) -> SyncLangGraphClient:
    return get_sync_client(url=url, api_key=key, timeout=60)


def scripted_env(model: OpenAIServer) -> dict[str, str]:
    return {
        "RAGENT_LLM_BASE_URL": model.base_url,
        "RAGENT_LLM_MODEL": MODEL,
        "RAGENT_LLM_OFFLINE_FALLBACK": "false",
        "RAGENT_LLM_MAX_RETRIES": "0",
        "RAGENT_MEMORY_EXTRACTION": "explicit",
        "RAGENT_MEMORY_SUMMARIZER": "extractive",
    }


@pytest.fixture(scope="module")
def dev(
    corpus: Corpus, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DevServer, OpenAIServer]]:
    """``langgraph dev`` on the scripted model (identity from each run's context)."""
    with openai_server() as model:
        env = {**scripted_env(model), "RAGENT_SERVER_AUTH": "false"}
        with langgraph_dev(corpus, tmp_path_factory.mktemp("lg-sdk"), env) as server:
            yield server, model


def _name(request: pytest.FixtureRequest) -> str:
    return f"sdk-{uuid.uuid4().hex[:6]}-{request.node.originalname[-30:]}"


@pytest.fixture
def own(api: Api, model: OpenAIServer, request: pytest.FixtureRequest) -> Iterator[User]:
    """An SDK client of ``ragent serve`` with a key of its own."""
    name = _name(request)
    target = Target(api.data_dir, "default", name, lambda *b: model.plan(MODEL, *b))
    with sdk(api.url, api.key(name)) as client:
        yield client, target
    sys.stdout.write(api.output())  # shown when the test failed


@pytest.fixture(params=["ragent-serve", "langgraph-dev"])
def user(request: pytest.FixtureRequest) -> Iterator[User]:
    """An SDK client of each server, as one user."""
    if request.param == "ragent-serve":
        yield request.getfixturevalue("own")
        return
    server, model = request.getfixturevalue("dev")
    model.reset()
    name = _name(request)
    context = {"tenant_id": "default", "user_id": name, "acl_groups": []}
    plan = lambda *b: model.plan(MODEL, *b)  # noqa: E731
    with sdk(str(server.client.base_url), None) as client:
        yield client, Target(server.data_dir, "default", name, plan, context=context)
    model.reset()
    sys.stdout.write(server.output())


def status_of(error: pytest.ExceptionInfo[httpx.HTTPStatusError]) -> int:
    return error.value.response.status_code


def test_assistants_search_get_graph_and_schemas(user: User) -> None:
    client, _ = user
    scenarios.assistants_search(client)
    [indexer] = client.assistants.search(graph_id="indexer")
    graphs = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")  # LangGraph's server's
    assert indexer["assistant_id"] == str(uuid.uuid5(graphs, "indexer"))


def test_run_wait_answers_with_citations_and_keeps_the_thread(user: User) -> None:
    scenarios.run_wait_keeps_the_thread(*user)


def test_a_thread_is_also_a_v1_conversation(own: User, api: Api) -> None:
    client, target = own
    thread_id = scenarios.run_wait_keeps_the_thread(client, target)
    # The same conversation on /v1: one thread store, one owner.
    with api.http(api.key(target.user_id)) as http:
        listed = http.get(f"/v1/threads/{thread_id}").json()
    assert [m["role"] for m in listed["messages"]] == ["user", "assistant"] * 2
    assert listed["title"] == QUESTION  # the first question, as for a /v1 conversation


def test_run_stream_streams_tokens_and_ends_with_the_answer(user: User) -> None:
    scenarios.run_stream_messages(*user)


def test_stateless_stream_of_updates_and_message_tuples(user: User) -> None:
    scenarios.run_stream_updates_and_tuples(*user)


def test_a_tool_call_runs(user: User) -> None:
    scenarios.tool_calls(*user)


def test_an_approval_interrupt_is_resumed_with_a_command(user: User) -> None:
    scenarios.approval_resumed_with_command(*user)


def test_identity_in_a_runs_context_is_ignored(own: User, api: Api) -> None:
    client, target = own
    forged = {"tenant_id": "other", "user_id": "mallory", "acl_groups": ["admins"]}
    scenarios.approval_resumed_with_command(client, target, context=forged)
    with sdk(api.url, api.key("mallory", tenant="other")) as mallory:
        scope = list(namespace("notes", "other", "mallory"))
        assert mallory.store.search_items(scope)["items"] == []
        assert mallory.threads.search() == []


def test_threads_search_state_and_history(user: User) -> None:
    scenarios.threads_search_state_history(*user)


def test_store_put_get_search_delete(user: User) -> None:
    scenarios.store_items(*user)


def test_background_run_join_and_list(user: User) -> None:
    scenarios.background_run_join_and_list(*user)


def test_cancel_stops_a_run_and_the_thread_goes_on(user: User) -> None:
    scenarios.cancel_stops_a_run(*user)


def test_a_joined_stream_is_replayed_from_the_run_log(own: User) -> None:
    client, target = own
    target.say(Reply(ANSWER, piece=4, gap_s=0.05))
    thread_id = client.threads.create()["thread_id"]
    run = client.runs.create(
        thread_id, "agent", input=ask(QUESTION), stream_mode=["values", "messages"]
    )
    events = list(client.runs.join_stream(thread_id, run["run_id"]))
    kinds = [e.event for e in events]
    assert kinds[0] == "metadata" and kinds[-1] == "values", kinds
    assert "messages/partial" in kinds
    again = list(client.runs.join_stream(thread_id, run["run_id"]))  # after the run
    assert [e.event for e in again] == kinds
    rest = list(client.runs.join_stream(thread_id, run["run_id"], last_event_id="3"))
    assert [e.event for e in rest] == kinds[3:]


def test_another_keys_threads_runs_and_items_are_invisible(own: User, api: Api) -> None:
    client, target = own
    target.say(Reply(ANSWER))
    thread_id = client.threads.create()["thread_id"]
    client.runs.wait(thread_id, "agent", input=ask(QUESTION))
    [run] = client.runs.list(thread_id)
    mine = ["notes", *namespace("notes", target.tenant_id, target.user_id)[1:]]
    client.store.put_item(mine, "k", {"text": "private"})

    with sdk(api.url, api.key("eve")) as eve:
        for call in (
            lambda: eve.threads.get(thread_id),
            lambda: eve.threads.get_state(thread_id),
            lambda: eve.threads.get_history(thread_id),
            lambda: eve.runs.list(thread_id),
            lambda: eve.runs.get(thread_id, run["run_id"]),
            lambda: eve.runs.join(thread_id, run["run_id"]),
            lambda: eve.runs.wait(thread_id, "agent", input=ask("hi")),
            lambda: eve.threads.delete(thread_id),
            lambda: eve.store.get_item(mine, "k"),
        ):
            with pytest.raises(httpx.HTTPStatusError) as hidden:
                call()
            assert status_of(hidden) == 404
        assert eve.threads.search() == []
        assert eve.store.search_items(mine)["items"] == []
        assert mine not in eve.store.list_namespaces()["namespaces"]
        with pytest.raises(httpx.HTTPStatusError) as refused:
            eve.store.put_item(mine, "k", {"text": "overwritten"})
        assert status_of(refused) == 403
    assert client.store.get_item(mine, "k")["value"] == {"text": "private"}
    assert client.threads.get(thread_id)["thread_id"] == thread_id


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
        big = {"x": "y" * 17_000}  # within the body cap, above 16 KiB of metadata
        assert http.post("/threads", json={"metadata": big}).status_code == 400
        tagged = http.post(f"/threads/{thread_id}/runs/wait", json={**run, "metadata": big})
        assert tagged.status_code == 400 and tagged.json()["error"]["param"] == "metadata"
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


def frozen_pids(url: str) -> set[str]:
    """The workers that are up (each reports its start-up heap once warm)."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return set(re.findall(r'^ragent_gc_frozen_objects\{pid="(\d+)"\}', text, re.M))


@pytest.fixture(scope="module")
def workers(
    corpus: Corpus, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, OpenAIServer]]:
    """``ragent serve --workers 2`` on Redis and the scripted model, auth off, Studio's origin."""
    root = tmp_path_factory.mktemp("lg-workers")
    data_dir = fresh_data_dir(corpus, root)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [str(BIN / "ragent"), "serve", "--port", str(port), "--no-auth", "--workers", "2"]
    with openai_server() as model, redis_server() as redis:
        env = {
            **scripted_env(model),
            "RAGENT_DATA_DIR": str(data_dir),
            "RAGENT_SERVER_REDIS_URL": redis.url,
            "RAGENT_SERVER_CORS_ORIGINS": json.dumps([STUDIO]),
        }
        with running(args, health_url=f"{url}/healthz", env=env, cwd=root) as log:
            deadline = time.monotonic() + 180
            while len(frozen_pids(url)) < 2:  # each worker reports itself once warm
                assert time.monotonic() < deadline, "".join(log)
                time.sleep(0.5)
            yield url, model
            sys.stdout.write("".join(log)[-6000:])


def test_workers_share_runs_over_redis(workers: tuple[str, OpenAIServer]) -> None:
    url, model = workers
    model.plan(MODEL, Reply(SLOW * 10, piece=2, gap_s=0.1), Reply(ANSWER, piece=4, gap_s=0.05))

    def fresh() -> SyncLangGraphClient:  # a new connection: the next worker in turn
        return sdk(url, None)

    with fresh() as client:
        thread_id = client.threads.create()["thread_id"]
    with fresh() as client:
        slow = client.runs.create(thread_id, "agent", input=ask(QUESTION))
    deadline = time.monotonic() + 30
    while True:
        with fresh() as client:
            if client.runs.get(thread_id, slow["run_id"])["status"] == "running":
                break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with fresh() as client:  # cancelled from either worker, stopped by the one running it
        client.runs.cancel(thread_id, slow["run_id"], wait=True)
    for _ in range(2):
        with fresh() as client:
            assert client.runs.get(thread_id, slow["run_id"])["status"] == "interrupted"

    with fresh() as client:
        run = client.runs.create(thread_id, "agent", input=ask(QUESTION), stream_mode="values")
    joined = []
    for _ in range(2):
        with fresh() as client:
            joined.append([e.event for e in client.runs.join_stream(thread_id, run["run_id"])])
    assert joined[0] == joined[1] and joined[0][-1] == "values", joined
    with fresh() as client:
        state = client.runs.join(thread_id, run["run_id"])
    assert isinstance(state, dict)
    assert "1000 pages" in scenarios.text_of(state["messages"][-1])


def preflight(url: str, origin: str) -> httpx.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-api-key",
        "Access-Control-Request-Private-Network": "true",
    }
    return httpx.options(f"{url}/threads/search", headers=headers, timeout=30)


def test_studio_may_call_the_server_when_its_origin_is_configured(
    workers: tuple[str, OpenAIServer], api: Api
) -> None:
    url, _ = workers
    allowed = preflight(url, STUDIO)
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == STUDIO
    assert allowed.headers["access-control-allow-private-network"] == "true"
    assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
    served = httpx.post(f"{url}/threads/search", json={}, headers={"Origin": STUDIO}, timeout=30)
    assert served.status_code == 200
    assert served.headers["access-control-allow-origin"] == STUDIO
    other = preflight(url, "https://evil.example")
    assert "access-control-allow-origin" not in other.headers
    # Not configured (the API tests' server): no CORS at all.
    unconfigured = preflight(api.url, STUDIO)
    assert "access-control-allow-origin" not in unconfigured.headers


def test_a_v1_turn_waiting_for_client_tool_results_is_not_overrun(own: User, api: Api) -> None:
    client, target = own
    weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    target.say(ToolCalls([("get_weather", json.dumps({"city": "Paris"}))]))
    chat = api.openai(api.key(target.user_id)).chat.completions.create(
        model="ragent", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=[weather]
    )
    assert chat.choices[0].finish_reason == "tool_calls"
    thread_id = (chat.model_extra or {})["conversation_id"]
    with pytest.raises(httpx.HTTPStatusError) as refused:
        client.runs.wait(thread_id, "agent", input=ask("hello?"))
    assert status_of(refused) == 409
    assert refused.value.response.json()["error"]["code"] == "tool_results_pending"
    with pytest.raises(httpx.HTTPStatusError) as nothing:
        client.runs.wait(thread_id, "agent", command={"resume": "approve"})
    assert nothing.value.response.json()["error"]["code"] == "nothing_to_resume"


def test_a_run_goes_on_when_its_streaming_client_leaves(own: User, api: Api) -> None:
    client, target = own
    target.say(Reply(ANSWER, piece=4, gap_s=0.05))
    thread_id = client.threads.create()["thread_id"]
    body = {"assistant_id": "agent", "input": ask(QUESTION), "stream_mode": ["messages"]}
    with api.http(api.key(target.user_id)) as http:
        with http.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as response:
            assert response.status_code == 200
            run_path = response.headers["content-location"]
            next(response.iter_lines())  # the first event, then the client goes away
    run_id = run_path.rsplit("/", 1)[1]
    state = client.runs.join(thread_id, run_id)
    assert isinstance(state, dict)
    scenarios.check_final_state(state, target.data_dir)
    assert client.runs.get(thread_id, run_id)["status"] == "success"


def test_a_stateless_run_leaves_no_thread(own: User, api: Api) -> None:
    client, target = own
    target.say(Reply(ANSWER), Reply(ANSWER))

    def stateless(**options: Any) -> int:
        """Run on a fresh thread; how many checkpoints it left."""
        created: list[Any] = []
        state = client.runs.wait(
            None, "agent", input=ask(QUESTION), on_run_created=created.append, **options
        )
        assert isinstance(state, dict)
        scenarios.check_final_state(state, target.data_dir)
        [run] = created
        key = f"{target.tenant_id}/{target.user_id}/{run['thread_id']}"
        uri = f"file:{api.data_dir / 'checkpoints.sqlite'}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as db:
            query = "SELECT count(*) FROM checkpoints WHERE thread_id = ?"
            return int(db.execute(query, (key,)).fetchone()[0])

    assert stateless() == 0
    assert stateless(on_completion="keep") > 0
    assert client.threads.search() == []


def test_debug_stream_for_studios_graph_view(user: User) -> None:
    scenarios.debug_stream(*user)
