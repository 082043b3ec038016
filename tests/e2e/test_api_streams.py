"""Resumable streams, idempotency keys and thread ownership on the real server (httpx)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.api_fixtures import MODEL, Api, api_fixture, model_fixture, sse_data  # noqa: F401 - fixtures
from tests.e2e.conftest import QUESTION
from tests.openai_server import OpenAIServer, Reply

pytestmark = pytest.mark.e2e

SLOW = "one two three four five six seven eight nine ten eleven twelve [S1]"


def body(question: str = QUESTION, **extra: object) -> dict[str, object]:
    return {"model": "ragent", "messages": [{"role": "user", "content": question}], **extra}


def text_of(events: list[str]) -> str:
    out = ""
    for data in events:
        if data != "[DONE]":
            choices = json.loads(data)["choices"]
            out += (choices[0]["delta"].get("content") or "") if choices else ""
    return out


def test_last_event_id_sends_the_rest_without_a_second_run(api: Api, model: OpenAIServer) -> None:
    model.plan(MODEL, Reply(SLOW, piece=4, gap_s=0.1))
    with api.http(api.key("stream-resume")) as http:
        with http.stream("POST", "/v1/chat/completions", json=body(stream=True)) as response:
            assert response.status_code == 200
            run_id = response.headers["x-run-id"]
            head = []
            for event_id, data in sse_data(response):
                head.append((event_id, data))
                if len(head) == 3:
                    break  # the connection drops mid-answer
        last_id = head[-1][0]
        assert last_id == f"{run_id}:3"

        resumed = {"Last-Event-ID": last_id}
        with http.stream(
            "POST", "/v1/chat/completions", json=body(stream=True), headers=resumed
        ) as response:
            tail = list(sse_data(response))
        assert [i for i, _ in tail] == [f"{run_id}:{n}" for n in range(4, 4 + len(tail))]
        assert tail[-1][1] == "[DONE]"
        assert text_of([d for _, d in head + tail]) == SLOW
        assert model.calls(MODEL) == 1  # the model ran once

        # EventSource style: GET the run's events, from the start or after an id.
        with http.stream("GET", f"/v1/runs/{run_id}/events") as response:
            assert [d for _, d in sse_data(response)] == [d for _, d in head + tail]
        with http.stream("GET", f"/v1/runs/{run_id}/events", headers=resumed) as response:
            assert list(sse_data(response)) == tail

    with api.http(api.key("stream-thief")) as other:
        stolen = other.get(f"/v1/runs/{run_id}/events")
        assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "not_found"
        bad = other.post("/v1/chat/completions", json=body(), headers={"Last-Event-ID": "x"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_event_id"


def test_idempotency_key_replays_the_response(api: Api, model: OpenAIServer) -> None:
    model.plan(MODEL, Reply("First answer. [S1]"), Reply("Other answer."))
    key = {"Idempotency-Key": "order-42"}
    with api.http(api.key("idem")) as http:
        first = http.post("/v1/chat/completions", json=body(), headers=key)
        again = http.post("/v1/chat/completions", json=body(), headers=key)
        assert first.status_code == again.status_code == 200, first.text
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert model.calls(MODEL) == 1

        changed = http.post("/v1/chat/completions", json=body("Something else?"), headers=key)
        assert changed.status_code == 409
        assert changed.json()["error"]["code"] == "idempotency_key_reused"

        stream_key = {"Idempotency-Key": "stream-7"}
        with http.stream(
            "POST", "/v1/chat/completions", json=body(stream=True), headers=stream_key
        ) as response:
            first_events = [d for _, d in sse_data(response)]
        with http.stream(
            "POST", "/v1/chat/completions", json=body(stream=True), headers=stream_key
        ) as response:
            assert response.headers["idempotent-replayed"] == "true"
            assert [d for _, d in sse_data(response)] == first_events
        assert text_of(first_events) == "Other answer."
        assert model.calls(MODEL) == 2

    # Keys are per API key: someone else's "order-42" is another request.
    model.plan(MODEL, Reply("Third answer."))
    with api.http(api.key("idem-other")) as http:
        other = http.post("/v1/chat/completions", json=body(), headers=key)
        assert other.json()["choices"][0]["message"]["content"] == "Third answer."


def test_threads_are_listed_read_and_deleted_by_their_owner_only(
    api: Api, model: OpenAIServer
) -> None:
    model.plan(MODEL, Reply("Alice's answer."), Reply("Bob's answer."))
    alice, bob = api.http(api.key("alice-t")), api.http(api.key("bob-t"))
    with alice, bob:
        made = alice.post("/v1/chat/completions", json=body(conversation_id="shared-name"))
        assert made.status_code == 200, made.text
        [listed] = alice.get("/v1/threads").json()["data"]
        assert (listed["id"], listed["title"]) == ("shared-name", QUESTION[:80])
        history = alice.get("/v1/threads/shared-name").json()
        assert [(m["role"], m["content"]) for m in history["messages"]] == [
            ("user", QUESTION),
            ("assistant", "Alice's answer."),
        ]

        assert bob.get("/v1/threads").json()["data"] == []
        assert bob.get("/v1/threads/shared-name").status_code == 404
        assert bob.delete("/v1/threads/shared-name").status_code == 404
        # The same id is a new, separate thread for Bob.
        bob.post("/v1/chat/completions", json=body("Hi there", conversation_id="shared-name"))
        assert "Alice" not in json.dumps(model.requests[-1]["messages"])
        bob_history = bob.get("/v1/threads/shared-name").json()["messages"]
        assert [m["content"] for m in bob_history] == ["Hi there", "Bob's answer."]

        deleted = alice.delete("/v1/threads/shared-name")
        assert deleted.status_code == 200 and deleted.json()["deleted"] is True
        assert alice.get("/v1/threads/shared-name").status_code == 404
        assert alice.get("/v1/threads").json()["data"] == []
        assert len(bob.get("/v1/threads/shared-name").json()["messages"]) == 2


def test_a_conversation_takes_one_request_at_a_time(api: Api, model: OpenAIServer) -> None:
    model.plan(MODEL, Reply(SLOW, piece=4, gap_s=0.1))
    with api.http(api.key("busy")) as http:
        # A stream names its new conversation in its first event, while the run goes on.
        with http.stream("POST", "/v1/chat/completions", json=body(stream=True)) as response:
            events = sse_data(response)
            conversation = json.loads(next(events)[1])["conversation_id"]
            again = http.post("/v1/chat/completions", json=body(conversation_id=conversation))
            assert again.status_code == 409, again.text
            assert again.json()["error"]["code"] == "conversation_busy"
            assert again.headers["retry-after"] == "1"
            assert list(events)[-1][1] == "[DONE]"

        # A JSON turn on a named conversation holds it too.
        model.plan(MODEL, Reply(SLOW, piece=4, gap_s=0.1))
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(
                http.post, "/v1/chat/completions", json=body(conversation_id=conversation)
            )
            # Room for a loaded machine: the turn embeds and retrieves before its model call.
            deadline = time.monotonic() + 120
            while model.calls(MODEL) < 2:  # the slow turn has reached the model
                assert time.monotonic() < deadline
                time.sleep(0.02)
            again = http.post("/v1/chat/completions", json=body(conversation_id=conversation))
            assert again.status_code == 409 and again.json()["error"]["code"] == "conversation_busy"
            assert slow.result().status_code == 200
        model.plan(MODEL, Reply("Done. [S1]"))
        after = http.post("/v1/chat/completions", json=body(conversation_id=conversation))
        assert after.status_code == 200, after.text  # free again once the run is over


def test_the_openai_client_reads_a_stream_through_keep_alives(
    api: Api, model: OpenAIServer
) -> None:
    # The model is quiet for longer than the server's keep-alive interval (5 s) both before
    # its first token and mid-answer: the keep-alives that go out meanwhile must not reach
    # the client as events (the openai client's SSE decoder keeps the last event id, so a
    # comment followed by a blank line would read as an event with no data and break it).
    model.plan(MODEL, Reply("Kept alive across the quiet [S1]", piece=16, delay_s=6.0, gap_s=6.0))
    client = api.openai(api.key("keep-alive"))
    stream = client.chat.completions.create(
        model="ragent", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    text = "".join((c.choices[0].delta.content or "") for c in stream if c.choices)
    assert text.startswith("Kept alive across the quiet")
