"""A recording LangSmith endpoint: every request body the ``langsmith`` client sends, decoded.

:class:`Recorder` wraps any ASGI app (a bare one that accepts everything, or the e2e
fake with datasets and experiments) and keeps each request's method, path and body,
zstd- or gzip-decompressed, and parses the run parts out of ``/runs/multipart`` (one
form part per ``post.<id>``, ``patch.<id>``, ``post.<id>.inputs``, ...) and
``/runs/batch`` bodies. :func:`langsmith_tracing` points the SDK at it.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import pytest
import zstandard
from fastapi import FastAPI
from langchain_core.tracers.langchain import wait_for_all_tracers
from langsmith import run_trees
from langsmith import utils as ls_utils

from tests.servers import asgi_server

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
App = Callable[[Scope, Callable[[], Awaitable[Message]], Any], Awaitable[None]]


@dataclass
class Recorded:
    method: str
    path: str
    body: bytes
    """Decoded: zstd and gzip bodies are decompressed."""
    content_type: str


@dataclass
class Recorder:
    """ASGI middleware that keeps every request's method, path and decoded body."""

    app: App
    requests: list[Recorded] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:  # the whole body first: the app behind may not read it at all
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        raw = b"".join(chunks)

        async def replay() -> Message:
            return {"type": "http.request", "body": raw, "more_body": False}

        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        body = raw
        if headers.get("content-encoding") == "zstd":
            body = zstandard.ZstdDecompressor().stream_reader(raw).read()
        elif headers.get("content-encoding") == "gzip":
            body = gzip.decompress(raw)
        content_type = headers.get("content-type", "")
        self.requests.append(Recorded(scope["method"], scope["path"], body, content_type))
        await self.app(scope, replay, send)

    def text(self, *, runs_only: bool = False) -> str:
        """Every recorded body as text (only those sent to ``/runs...`` with ``runs_only``)."""
        return "\n".join(
            r.body.decode("utf-8", "replace")
            for r in self.requests
            if not runs_only or r.path.startswith("/runs")
        )

    def run_parts(self) -> list[tuple[str, Any]]:
        """Every run part sent (``post.<id>``, ``patch.<id>.outputs``, batch rows), parsed."""
        parts: list[tuple[str, Any]] = []
        for request in self.requests:
            if request.path == "/runs/multipart":
                head = f"Content-Type: {request.content_type}\r\n\r\n".encode()
                form = BytesParser(policy=HTTP).parsebytes(head + request.body)
                for part in form.iter_parts():
                    name = str(part.get_param("name", header="content-disposition"))
                    parts.append((name, json.loads(part.get_payload(decode=True))))
            elif request.path == "/runs/batch":
                batch = json.loads(request.body)
                for op in ("post", "patch"):
                    parts += [(f"{op}.{run['id']}", run) for run in batch.get(op) or []]
        return parts

    def runs(self) -> dict[str, dict[str, Any]]:
        """Runs by id: posts, patches and their parts (``inputs``, ``outputs``...) merged."""
        runs: dict[str, dict[str, Any]] = {}
        for name, payload in self.run_parts():
            _, run_id, *rest = name.split(".")
            run = runs.setdefault(run_id, {})
            if rest:
                run[rest[0]] = payload
            else:
                run.update(payload)
        return runs


def accept_all() -> FastAPI:
    """A LangSmith server that asks for zstd-compressed traces (as LangSmith's does), then
    accepts every request."""
    app = FastAPI()

    @app.get("/info")
    async def info() -> dict[str, Any]:
        return {"version": "0.0-test", "instance_flags": {"zstd_compression_enabled": True}}

    @app.api_route("/{path:path}", methods=["GET", "POST", "PATCH", "PUT"])
    async def accept(path: str) -> dict[str, Any]:
        return {}

    return app


@contextmanager
def langsmith_tracing(app: App, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    """Serve ``app`` behind a :class:`Recorder` and turn LangSmith tracing on towards it.

    Afterwards the pending runs are flushed, the SDK's global client is cleared, the root
    logger (which the process set-up replaces) is restored, and the SDK's cached
    environment is forgotten (``monkeypatch`` restores the variables themselves).
    """
    recorder = Recorder(app)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    with asgi_server(recorder) as url:
        monkeypatch.setenv("LANGSMITH_TRACING", "true")
        monkeypatch.setenv("LANGSMITH_API_KEY", "lsv2-test-key")
        monkeypatch.setenv("LANGSMITH_ENDPOINT", url)
        monkeypatch.delenv("LANGSMITH_PROJECT", raising=False)
        ls_utils.get_env_var.cache_clear()  # the SDK reads its variables once
        ls_utils.get_tracer_project.cache_clear()
        try:
            yield recorder
        finally:
            wait_for_all_tracers()
            run_trees.configure(client=None)
            root.handlers[:], root.level = handlers, level
            ls_utils.get_env_var.cache_clear()
            ls_utils.get_tracer_project.cache_clear()
