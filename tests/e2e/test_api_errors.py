"""Errors of the real server under attack: a 500 keeps the connection, bad text is a 400,
and every status a route answers is in the OpenAPI spec (405s name every method).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from app.server.platform import KEY_PATHS, OPEN_PATHS
from tests.e2e.api_fixtures import (  # noqa: F401 - fixtures
    MAX_BODY_BYTES,
    MODEL,
    RATE_BURST,
    Api,
    api_fixture,
    model_fixture,
)
from tests.openai_server import Garbage, OpenAIServer

pytestmark = pytest.mark.e2e

LANGGRAPH_API = (*KEY_PATHS, *OPEN_PATHS)

SERVER_ERROR = {
    "error": {
        "message": "internal server error",
        "type": "server_error",
        "param": None,
        "code": "internal_error",
    }
}
NO_RUN = "run_" + "0" * 32
NO_JOB = "job_" + "0" * 32


def _local_port(response: httpx.Response) -> int:
    """The client's port of the connection that carried ``response``."""
    stream = response.extensions["network_stream"]
    return int(stream.get_extra_info("client_addr")[1])


def _is_error(response: httpx.Response, status: int | None = None) -> dict[str, Any]:
    assert response.status_code < 500 if status is None else response.status_code == status, (
        response.status_code,
        response.text,
    )
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return dict(body["error"])


@contextmanager
def _broken_uploads(data_dir: Path) -> Iterator[None]:
    """Make ``<data_dir>/uploads`` a file, so that keeping an upload fails inside the route."""
    uploads = data_dir / "uploads"
    aside = data_dir / "uploads.aside"
    if uploads.exists():
        uploads.rename(aside)
    uploads.write_text("not a folder")
    try:
        yield
    finally:
        uploads.unlink()
        if aside.exists():
            aside.rename(uploads)


# -- 1. a 500 is a normal response, and the keep-alive connection stays usable ------------


def test_a_500_keeps_the_connection_and_tells_nothing(api: Api) -> None:
    key = api.key("errors-500")
    with api.http(key) as client, _broken_uploads(api.data_dir):
        failed = client.post("/v1/ingest", files={"files": ("notes.md", b"# Notes\n")})
        assert failed.status_code == 500, failed.text
        assert failed.json() == SERVER_ERROR
        assert "Error" not in failed.text and str(api.data_dir) not in failed.text
        assert failed.headers.get("connection", "").lower() != "close"

        after = client.get("/v1/models")  # on the same connection

        assert after.status_code == 200, after.text
        assert _local_port(after) == _local_port(failed), "the server closed the connection"
    assert "Exception in ASGI application" not in api.output()
    assert "Cannot change state" not in api.output()


def test_a_model_that_fails_with_no_offline_answerer_is_a_502(
    api: Api, model: OpenAIServer
) -> None:
    # The fixture's server has llm.offline_fallback off: nothing stands in for the model.
    model.plan(MODEL, Garbage())
    client = api.openai(api.key("errors-502"))
    with pytest.raises(openai.InternalServerError) as failed:
        client.with_options(max_retries=0).chat.completions.create(
            model="ragent", messages=[{"role": "user", "content": "What is WAL?"}]
        )
    assert failed.value.status_code == 502
    body = failed.value.body
    assert isinstance(body, dict)
    assert (body["code"], body["message"]) == ("model_error", "the model failed (malformed)")
    assert "Traceback" not in api.output()[-4000:]


# -- 2. text that is not valid Unicode is a 400 on every input path -----------------------

SURROGATE = "\ud800"


def _chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "ragent", "messages": list(messages), **extra}


def _user(text: str = "hello") -> dict[str, Any]:
    return {"role": "user", "content": text}


JSON_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "user message": ("/v1/chat/completions", _chat(_user(SURROGATE))),
    "system message": (
        "/v1/chat/completions",
        _chat({"role": "system", "content": f"be brief {SURROGATE}"}, _user()),
    ),
    "developer message": (
        "/v1/chat/completions",
        _chat({"role": "developer", "content": SURROGATE}, _user()),
    ),
    "tool message": (
        "/v1/chat/completions",
        _chat(
            _user(),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "search", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": SURROGATE},
            _user(),
        ),
    ),
    "tool arguments": (
        "/v1/chat/completions",
        _chat(
            _user(),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "search", "arguments": '{"q": "' + SURROGATE + '"}'},
                    }
                ],
            },
            _user(),
        ),
    ),
    "content part": (
        "/v1/chat/completions",
        _chat({"role": "user", "content": [{"type": "text", "text": SURROGATE}]}),
    ),
    "conversation id": ("/v1/chat/completions", _chat(_user(), conversation_id=f"t{SURROGATE}")),
    "namespace": ("/v1/chat/completions", _chat(_user(), retrieval={"namespace": SURROGATE})),
    "model name": ("/v1/chat/completions", {"model": SURROGATE, "messages": [_user()]}),
    "stop sequence": ("/v1/chat/completions", _chat(_user(), stop=[SURROGATE])),
    "a key": ("/v1/chat/completions", _chat(_user(), **{SURROGATE: 1})),
    "tool name": (
        "/v1/chat/completions",
        _chat(_user(), tools=[{"type": "function", "function": {"name": SURROGATE}}]),
    ),
    "ask question": ("/v1/ask", {"question": f"what is {SURROGATE}?"}),
    "ask thread id": ("/v1/ask", {"question": "hi", "thread_id": SURROGATE}),
    "resume decision": ("/v1/threads/t1/resume", {"decision": {SURROGATE: "approve"}}),
}


@pytest.mark.parametrize("case", list(JSON_CASES))
def test_a_lone_surrogate_in_json_is_a_400(api: Api, model: OpenAIServer, case: str) -> None:
    path, body = JSON_CASES[case]
    raw = json.dumps(body).encode()  # ensure_ascii: the surrogate travels as "\ud800"
    assert b"\\ud800" in raw
    with api.http(api.key("errors-text")) as client:
        response = client.post(path, content=raw, headers={"Content-Type": "application/json"})
        error = _is_error(response, 400)
        assert error["code"] == "invalid_text" and "surrogate" in error["message"]
        assert client.get("/v1/models").status_code == 200
    assert model.calls("scripted-model") == 0  # refused before anything ran


BYTES_CASES: dict[str, tuple[str, bytes]] = {
    "chat, not UTF-8": (
        "/v1/chat/completions",
        b'{"messages": [{"role": "user", "content": "caf\xff"}]}',
    ),
    "chat, a surrogate in UTF-8's form": (
        "/v1/chat/completions",
        b'{"messages": [{"role": "user", "content": "\xed\xa0\x80"}]}',
    ),
    "ask, not UTF-8": ("/v1/ask", b'{"question": "\xc3\x28"}'),
    "ask, a surrogate in UTF-8's form": ("/v1/ask", b'{"question": "\xed\xb0\x80"}'),
    "resume, not UTF-8": ("/v1/threads/t1/resume", b'{"decision": "\xfe"}'),
}


@pytest.mark.parametrize("case", list(BYTES_CASES))
def test_bytes_that_are_not_utf8_are_a_400(api: Api, case: str) -> None:
    path, raw = BYTES_CASES[case]
    with api.http(api.key("errors-bytes")) as client:
        response = client.post(path, content=raw, headers={"Content-Type": "application/json"})
        error = _is_error(response, 400)
        assert error["code"] == "invalid_text", error
        assert client.get("/v1/models").status_code == 200


def _multipart(fields: list[tuple[bytes, bytes]], file_name: bytes | None = None) -> bytes:
    """A multipart body built by hand, so that names and values may be any bytes."""
    parts = [
        b'--b\r\nContent-Disposition: form-data; name="' + name + b'"\r\n\r\n' + value + b"\r\n"
        for name, value in fields
    ]
    if file_name is not None:
        parts.append(
            b'--b\r\nContent-Disposition: form-data; name="files"; filename="' + file_name
            + b'"\r\nContent-Type: text/markdown\r\n\r\n# Notes\r\n'
        )  # fmt: skip
    return b"".join(parts) + b"--b--\r\n"


FORM_CASES: dict[str, bytes] = {
    "namespace": _multipart([(b"namespace", b"ns\xed\xa0\x80"), (b"urls", b"http://x/")]),
    "acl": _multipart([(b"acl", b"ops,\xff")], file_name=b"notes.md"),
    "urls": _multipart([(b"urls", b"http://\xed\xa0\x80/doc")]),
    "field name": _multipart([(b"\xed\xa0\x80", b"x")]),
}


@pytest.mark.parametrize("case", list(FORM_CASES))
def test_bad_text_in_an_ingest_form_is_a_4xx(api: Api, case: str) -> None:
    with api.http(api.key("errors-form")) as client:
        response = client.post(
            "/v1/ingest",
            content=FORM_CASES[case],
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
        _is_error(response)
        assert 400 <= response.status_code < 500
        assert client.get("/v1/models").status_code == 200


def test_a_file_name_that_is_not_utf8_is_made_safe(api: Api) -> None:
    with api.http(api.key("errors-file-name")) as client:
        response = client.post(
            "/v1/ingest",
            content=_multipart([], file_name=b"caf\xed\xa0\x80\xff.md"),
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
        assert response.status_code == 202, response.text
        assert client.get(response.headers["Location"]).status_code == 200
    for kept in (api.data_dir / "uploads").rglob("*"):
        kept.name.encode()  # every kept name is valid Unicode


def test_bad_text_in_paths_queries_and_headers_is_a_4xx(api: Api) -> None:
    with api.http(api.key("errors-url")) as client:
        for response in (
            client.get("/v1/threads/%ED%A0%80"),
            client.delete("/v1/threads/t%FF"),
            client.post("/v1/threads/%ED%A0%80/resume", json={"decision": "approve"}),
            client.get("/v1/memories?kind=%ED%A0%80"),
            client.delete("/v1/memories/%ED%A0%80"),
            client.get("/v1/jobs/%FF"),
            client.get(f"/v1/runs/{NO_RUN}/events", headers={"Last-Event-ID": b"\xed\xa0\x80"}),
            client.post(
                "/v1/chat/completions",
                json=_chat(_user()),
                headers={"Last-Event-ID": b"run_\xff:1"},
            ),
            client.post(
                "/v1/ingest",
                content=b"urls=http%3A%2F%2F%ED%A0%80%2Fdoc",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ),
        ):
            _is_error(response)
        assert client.get("/healthz").status_code == 200


# -- 3. the spec lists every status; a 405 names every method of its path -----------------


@dataclass
class Case:
    """A request that a route answers with ``status``."""

    method: str
    path: str
    """The route's path as the spec names it."""
    status: int
    url: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)
    key: str = "chat"
    """``chat``, ``ingest``, ``admin`` (a key with that scope alone), ``none`` or ``fresh``."""


def _cases(conversation: str) -> list[Case]:
    thread = f"/v1/threads/{conversation}"
    big = {"content": b"x" * (MAX_BODY_BYTES + 1)}
    surrogate = {
        "content": json.dumps({"question": SURROGATE}).encode(),
        "headers": {"Content-Type": "application/json"},
    }
    chat = "/v1/chat/completions"
    cases = [
        Case("GET", "/healthz", 200),
        Case("GET", "/healthz", 413, kwargs=big),
        Case("GET", "/readyz", 200),
        Case("GET", "/healthz/dependencies", 200),
        Case("GET", "/metrics", 200),
        Case("GET", "/v1/models", 200),
        Case("GET", "/v1/models", 401, key="none"),
        Case("GET", "/v1/models", 403, key="ingest"),
        Case("GET", "/v1/models/{model_id}", 200, url="/v1/models/ragent"),
        Case("GET", "/v1/models/{model_id}", 404, url="/v1/models/gpt-4o"),
        Case("POST", chat, 200, kwargs={"json": _chat(_user())}),
        Case("POST", chat, 400, kwargs=surrogate),
        Case("POST", chat, 401, key="none", kwargs={"json": _chat(_user())}),
        Case("POST", chat, 403, key="ingest", kwargs={"json": _chat(_user())}),
        Case(
            "POST",
            chat,
            404,
            kwargs={"json": _chat(_user()), "headers": {"Last-Event-ID": f"{NO_RUN}:1"}},
        ),  # fmt: skip
        Case("POST", chat, 413, kwargs=big),
        Case("POST", chat, 400, kwargs={"json": {"messages": []}}),
        Case(
            "POST",
            chat,
            409,
            kwargs={"json": _chat(_user("again")), "headers": {"Idempotency-Key": "k-chat"}},
        ),  # fmt: skip
        Case("GET", "/v1/runs/{run_id}/events", 404, url=f"/v1/runs/{NO_RUN}/events"),
        Case("GET", "/v1/runs/{run_id}/events", 400, url="/v1/runs/nope/events"),
        Case("POST", "/v1/ask", 200, kwargs={"json": {"question": "hi"}}),
        Case("POST", "/v1/ask", 400, kwargs=surrogate),
        Case(
            "POST",
            "/v1/ask",
            400,
            kwargs={"json": {"question": "hi"}, "headers": {"Idempotency-Key": "k" * 256}},
        ),  # fmt: skip
        Case(
            "POST",
            "/v1/ask",
            409,
            kwargs={"json": {"question": "again"}, "headers": {"Idempotency-Key": "k-ask"}},
        ),  # fmt: skip
        Case("POST", "/v1/ask", 400, kwargs={"json": {"question": ""}}),
        Case("GET", "/v1/quota", 401, key="none"),
        Case("GET", "/v1/quota", 403),  # the chat key has no admin scope
        Case("DELETE", "/v1/quota", 401, key="none"),
        Case("DELETE", "/v1/quota", 403),
        Case("GET", "/v1/sources", 200, key="admin"),
        Case("GET", "/v1/sources", 401, key="none"),
        Case("GET", "/v1/sources", 403),  # the chat key has no admin scope
        Case("GET", "/v1/sources/{name}", 404, url="/v1/sources/none-such", key="admin"),
        Case("GET", "/v1/sources/{name}", 403, url="/v1/sources/none-such"),
        Case("POST", "/v1/sources/{name}/sync", 404, url="/v1/sources/nope/sync", key="admin"),
        Case("POST", "/v1/sources/{name}/sync", 401, url="/v1/sources/nope/sync", key="none"),
        Case("POST", "/v1/sources/{name}/sync", 403, url="/v1/sources/nope/sync"),
        Case("GET", "/v1/threads", 200),
        Case("GET", "/v1/threads", 400, url="/v1/threads?limit=0"),
        Case("GET", "/v1/threads/{thread_id}", 200, url=thread),
        Case("GET", "/v1/threads/{thread_id}", 404, url="/v1/threads/none-such"),
        Case("GET", "/v1/threads/{thread_id}", 400, url="/v1/threads/-bad"),
        Case(
            "POST",
            "/v1/threads/{thread_id}/resume",
            404,
            url="/v1/threads/none-such/resume",
            kwargs={"json": {"decision": "approve"}},
        ),  # fmt: skip
        Case(
            "POST",
            "/v1/threads/{thread_id}/resume",
            409,
            url=f"{thread}/resume",
            kwargs={"json": {"decision": "approve"}},
        ),  # fmt: skip
        Case(
            "POST",
            "/v1/threads/{thread_id}/resume",
            400,
            url=f"{thread}/resume",
            kwargs={"json": {"decision": "maybe"}},
        ),  # fmt: skip
        Case("DELETE", "/v1/threads/{thread_id}", 404, url="/v1/threads/none-such"),
        Case("DELETE", "/v1/threads/{thread_id}", 200, url=thread),
        Case("GET", "/v1/memories", 200),
        Case("GET", "/v1/memories", 400, url="/v1/memories?kind=other"),
        Case("DELETE", "/v1/memories", 200),
        Case("DELETE", "/v1/memories/{memory_id}", 404, url="/v1/memories/none-such"),
        Case(
            "POST",
            "/v1/ingest",
            202,
            key="ingest",
            kwargs={"files": {"files": ("spec.md", b"# Spec\n")}},
        ),  # fmt: skip
        Case("POST", "/v1/ingest", 403, kwargs={"files": {"files": ("spec.md", b"# Spec\n")}}),
        Case("POST", "/v1/ingest", 400, key="ingest", kwargs={"data": {"acl": "a"}}),
        Case(
            "POST",
            "/v1/ingest",
            409,
            key="ingest",
            kwargs={
                "files": {"files": ("other.md", b"# Other\n")},
                "headers": {"Idempotency-Key": "k-ingest"},
            },
        ),  # fmt: skip
        Case("GET", "/v1/jobs/{job_id}", 404, url=f"/v1/jobs/{NO_JOB}", key="ingest"),
        Case("GET", "/v1/jobs/{job_id}", 400, url="/v1/jobs/nope", key="ingest"),
        Case("GET", "/v1/models", 429, key="fresh"),
    ]
    for case in cases:
        case.url = case.url or case.path
    return cases


def _prime(client: httpx.Client, ingest: httpx.Client) -> None:
    """Use each idempotency key once, so that the cases' other requests reuse it (409)."""
    first = {"headers": {"Idempotency-Key": "k-chat"}}
    assert client.post("/v1/chat/completions", json=_chat(_user()), **first).status_code == 200
    first = {"headers": {"Idempotency-Key": "k-ask"}}
    assert client.post("/v1/ask", json={"question": "hi"}, **first).status_code == 200
    response = ingest.post(
        "/v1/ingest",
        files={"files": ("first.md", b"# First\n")},
        headers={"Idempotency-Key": "k-ingest"},
    )
    assert response.status_code == 202, response.text


def test_every_status_a_route_answers_is_in_the_spec(api: Api, model: OpenAIServer) -> None:
    spec = httpx.get(f"{api.url}/openapi.json").json()
    chat_key = api.key("errors-spec", scopes=("chat",))
    ingest_key = api.key("errors-spec-ingest", scopes=("ingest",))
    admin_key = api.key("errors-spec-admin", scopes=("admin",))
    with (
        api.http(chat_key) as client,
        api.http(ingest_key) as ingest,
        api.http(admin_key) as admin,
        api.http(None) as anon,
    ):
        started = client.post("/v1/chat/completions", json=_chat(_user()))
        assert started.status_code == 200, started.text
        _prime(client, ingest)
        cases = _cases(started.json()["conversation_id"])
        clients = {"chat": client, "ingest": ingest, "admin": admin, "none": anon}
        undocumented: list[str] = []
        for case in cases:
            if case.key == "fresh":  # the key's bucket runs dry: 429
                with api.http(api.key("errors-spec-429")) as fresh:
                    answers = [fresh.get(case.url) for _ in range(RATE_BURST + 10)]
                response = next(a for a in answers if a.status_code == 429)
            else:
                response = clients[case.key].request(case.method, case.url, **case.kwargs)
                time.sleep(0.1)  # a token back in the key's bucket (600/minute)
            assert response.status_code == case.status, (case, response.text)
            if response.status_code >= 400:
                _is_error(response, case.status)
            documented = spec["paths"][case.path][case.method.lower()]["responses"]
            if str(case.status) not in documented:
                undocumented.append(f"{case.method} {case.path} {case.status}")
    assert not undocumented, undocumented
    # An answer that misses response_format after one repair (test_api_structured_output.py).
    assert "502" in spec["paths"]["/v1/chat/completions"]["post"]["responses"]
    operations = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    # The LangGraph API's routes have their cases in tests/e2e/test_api_langgraph_sdk.py.
    ours = {(method, path) for method, path in operations if not path.startswith(LANGGRAPH_API)}
    assert ours == {(c.method, c.path) for c in cases}, "a route without cases"
    shared = {"400", "401", "403", "413", "429", "500", "503", "504"}
    for (method, path), item in ((o, spec["paths"][o[1]][o[0].lower()]) for o in operations):
        expected = shared if path.startswith("/v1/") else {"413", "500", "503", "504"}
        assert expected <= set(item["responses"]), (method, path)


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("POST", "/v1/memories", {"GET", "DELETE"}),
        ("PUT", "/v1/memories/m1", {"DELETE"}),
        ("POST", "/v1/threads/t1", {"GET", "DELETE"}),
        ("DELETE", "/v1/chat/completions", {"POST"}),
        ("POST", "/healthz", {"GET"}),
    ],
)
def test_a_405_names_every_method_of_the_path(
    api: Api, method: str, url: str, allowed: set[str]
) -> None:
    with api.http(api.key("errors-405")) as client:
        response = client.request(method, url)
    error = _is_error(response, 405)
    assert error["code"] == "method_not_allowed"
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed


def test_an_ingest_retry_with_its_idempotency_key_is_replayed(api: Api) -> None:
    """A form's body is read by the route, so its fingerprint comes from the parsed fields."""
    headers = {"Idempotency-Key": "ingest-retry"}
    with api.http(api.key("errors-idempotent-ingest")) as client:
        sent = [
            client.post(
                "/v1/ingest",
                files={"files": ("retry.md", b"# Retry\n")},
                data={"namespace": "retries"},
                headers=headers,
            )
            for _ in range(2)
        ]
        other = client.post(
            "/v1/ingest", files={"files": ("retry.md", b"# Changed\n")}, headers=headers
        )
    assert [r.status_code for r in sent] == [202, 202], sent[-1].text
    assert sent[1].headers.get("Idempotent-Replayed") == "true"
    assert sent[1].json()["id"] == sent[0].json()["id"]
    assert _is_error(other, 409)["code"] == "idempotency_key_reused"
