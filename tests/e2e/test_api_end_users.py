"""End users behind one API key (a front end such as Open WebUI), with the ``openai`` client.

A key with the ``end_users`` scope names the end user in OpenAI's ``user`` field or in
a header (``X-Ragent-User``, Open WebUI's ``X-OpenWebUI-User-Id``); each end user has
their own memories, conversations, idempotency keys and rate limit, inside the key's
tenant. A key without the scope that names someone else gets ``openai.BadRequestError``.
"""

from __future__ import annotations

import json

import openai
import pytest

from tests.e2e.api_fixtures import (  # noqa: F401 - fixtures
    MODEL,
    RATE_BURST,
    Api,
    api_fixture,
    model_fixture,
)
from tests.openai_server import OpenAIServer, Reply

pytestmark = pytest.mark.e2e

FRONT_END = ("chat", "end_users")


def ask(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}]


def prompt(model: OpenAIServer) -> str:
    return json.dumps(model.requests[-1]["messages"])


def test_end_users_of_one_key_keep_their_memories_and_conversations_apart(
    api: Api, model: OpenAIServer
) -> None:
    key = api.key("webui", scopes=FRONT_END)
    client = api.openai(key)
    model.plan(MODEL, Reply("I will remember that."), Reply("I don't know your name."))

    said = client.chat.completions.create(
        model="ragent", messages=ask("Remember that my name is Ada."), user="ada-1"
    )
    conversation = (said.model_extra or {})["conversation_id"]
    other = client.chat.completions.create(
        model="ragent", messages=ask("What is my name?"), user="bob-2"
    )

    assert other.choices[0].message.content == "I don't know your name."
    assert "Ada" not in prompt(model)  # not the other end user's memory
    model.plan(MODEL, Reply("Your name is Ada."))
    client.chat.completions.create(model="ragent", messages=ask("What is my name?"), user="ada-1")
    assert "Ada" in prompt(model)  # the end user's own memory is recalled

    with api.http(key) as http:
        ada, bob = {"X-Ragent-User": "ada-1"}, {"X-OpenWebUI-User-Id": "bob-2"}
        mine = http.get("/v1/memories", headers=ada).json()["data"]
        assert [m["text"] for m in mine] and "Ada" in mine[0]["text"]
        assert http.get("/v1/memories", headers=bob).json()["data"] == []
        assert http.get("/v1/memories").json()["data"] == []  # nor the key's own user's
        listed = http.get("/v1/threads", headers=ada).json()["data"]
        assert conversation in {t["id"] for t in listed}
        assert conversation not in {
            t["id"] for t in http.get("/v1/threads", headers=bob).json()["data"]
        }
        assert http.get(f"/v1/threads/{conversation}", headers=bob).status_code == 404
        assert http.delete(f"/v1/threads/{conversation}", headers=bob).status_code == 404
        assert http.get(f"/v1/threads/{conversation}", headers=ada).status_code == 200

    model.plan(MODEL, Reply("Hello Bob."))
    client.chat.completions.create(
        model="ragent",
        messages=ask("Go on."),
        user="bob-2",
        extra_body={"conversation_id": conversation},
    )
    assert "my name is Ada" not in prompt(model)  # Bob's thread of that id is his own, empty


def test_a_key_without_the_scope_may_not_act_for_end_users(api: Api, model: OpenAIServer) -> None:
    key = api.key("plain-owner")
    client = api.openai(key)

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="ragent", messages=ask("Hi"), user="someone-else")
    error = caught.value.body
    assert isinstance(error, dict)
    assert (error["code"], error["param"], error["type"]) == (
        "end_users_not_allowed",
        "user",
        "invalid_request_error",
    )
    with api.http(key) as http:
        refused = http.get("/v1/memories", headers={"X-Ragent-User": "someone-else"})
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["param"] == "X-Ragent-User"
    assert model.requests == []  # refused before any model call

    model.plan(MODEL, Reply("Hello."))  # naming the key's own user changes nothing
    done = client.chat.completions.create(model="ragent", messages=ask("Hi"), user="plain-owner")
    assert done.choices[0].message.content == "Hello."


@pytest.mark.parametrize("user", ["tenant-b/webui", "a#b", "../x", "x" * 129, " ada", "ada\u00e9"])
def test_a_bad_end_user_id_is_a_bad_request(api: Api, model: OpenAIServer, user: str) -> None:
    client = api.openai(api.key("webui-bad", scopes=FRONT_END))
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="ragent", messages=ask("Hi"), user=user)
    assert caught.value.body["param"] == "user"  # type: ignore[index]
    assert caught.value.body["code"] == "invalid_user"  # type: ignore[index]
    assert model.requests == []


def test_end_users_stay_in_their_key_s_tenant(api: Api, model: OpenAIServer) -> None:
    here = api.key("webui-t", tenant="tenant-a", scopes=FRONT_END)
    there = api.key("webui-t", tenant="tenant-b", scopes=FRONT_END)
    model.plan(MODEL, Reply("Noted."))
    api.openai(there).chat.completions.create(
        model="ragent", messages=ask("Remember that my locker code is 4512."), user="eve"
    )
    with api.http(here) as http, api.http(there) as other:
        assert other.get("/v1/memories", headers={"X-Ragent-User": "eve"}).json()["data"]
        assert http.get("/v1/memories", headers={"X-Ragent-User": "eve"}).json()["data"] == []
        for name in ("tenant-b/webui/eve", "webui/eve", "tenant-b#eve"):  # no path out
            refused = http.get("/v1/memories", headers={"X-Ragent-User": name})
            assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_user"
        named = http.get("/v1/memories", headers={"X-Ragent-User": "tenant-b"})
        assert named.json()["data"] == []  # just an end user of tenant-a


def test_each_end_user_has_a_rate_limit_of_their_own(api: Api, model: OpenAIServer) -> None:
    with api.http(api.key("webui-rate", scopes=FRONT_END)) as http:

        def status(user: str) -> int:
            return http.get("/v1/memories", headers={"X-Ragent-User": user}).status_code

        busy = [status("busy")]
        while busy[-1] == 200 and len(busy) < 5 * RATE_BURST:  # the bucket refills meanwhile
            busy.append(status("busy"))
        assert busy[-1] == 429 and len(busy) > RATE_BURST
        calm = [status("calm") for _ in range(5)]  # another end user of the same key
        assert calm == [200] * 5


def test_an_idempotency_key_replays_only_for_the_same_end_user(
    api: Api, model: OpenAIServer
) -> None:
    client = api.openai(api.key("webui-idem", scopes=FRONT_END))
    model.plan(MODEL, Reply("Answer for Ada."), Reply("Answer for Bob."))
    sent = {"model": "ragent", "messages": ask("Hello")}
    same = {"Idempotency-Key": "retry-1"}

    ada = client.chat.completions.create(
        **sent,
        extra_headers={**same, "X-Ragent-User": "ada"},  # type: ignore[arg-type]
    )
    bob = client.chat.completions.create(
        **sent,
        extra_headers={**same, "X-Ragent-User": "bob"},  # type: ignore[arg-type]
    )

    assert ada.choices[0].message.content == "Answer for Ada."
    assert bob.choices[0].message.content == "Answer for Bob."  # not Ada's, replayed
    with pytest.raises(openai.BadRequestError) as caught:  # body and header disagree
        client.chat.completions.create(
            **sent,
            user="ada",
            extra_headers={"X-Ragent-User": "bob"},  # type: ignore[arg-type]
        )
    assert caught.value.body["param"] == "user"  # type: ignore[index]
