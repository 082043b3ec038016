"""An OpenAI-protocol chat server that streams the way vLLM does, with scripted faults.

The wire format follows vLLM's ``serving_chat.py``: a first chunk carrying only the role
and empty content, content deltas, tool calls whose first delta holds the id and the
name and whose arguments then arrive in fragments (the finish chunk may carry the last
fragment), a finish chunk with ``stop_reason``, a usage chunk with ``choices: []`` when
``stream_options.include_usage`` is set, and ``data: [DONE]``.

Each request is answered by the next behaviour planned for its ``model``; with none
planned, the model replies ``Hello from <model>.``. Behaviours: :class:`Reply`,
:class:`ToolCalls`, :class:`Fail` (any status), :class:`Hang` (no response at all),
:class:`Stall` (stops mid-stream), :class:`Garbage` (a non-JSON event) and
:class:`ErrorEvent` (vLLM's in-stream error). Every request body is recorded.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tests.servers import free_port


@dataclass
class Reply:
    """Stream ``text`` in pieces of ``piece`` characters after ``delay_s``."""

    text: str
    piece: int = 4
    delay_s: float = 0.0
    gap_s: float = 0.0


@dataclass
class ToolCalls:
    """Call tools; each call's JSON arguments arrive in ``fragment``-character pieces."""

    calls: list[tuple[str, str]]
    """``(name, arguments as a JSON string)``; the string is sent as is, valid or not."""
    fragment: int = 3
    text: str = ""


@dataclass
class Fail:
    """Answer with an HTTP error status and an OpenAI-shaped error body."""

    status: int
    message: str = "simulated failure"


@dataclass
class Hang:
    """Send nothing at all, not even headers, until the client gives up."""

    seconds: float = 3600.0


@dataclass
class Stall:
    """Stream the first ``after`` pieces of ``text``, then go silent with the stream open."""

    text: str
    after: int = 2
    piece: int = 4


@dataclass
class Garbage:
    """Start a stream, then send an event whose data is not JSON."""


@dataclass
class ErrorEvent:
    """Start a stream, then report an error inside it, as vLLM does on an engine fault."""

    after_text: str = "Partial"


Behaviour = Reply | ToolCalls | Fail | Hang | Stall | Garbage | ErrorEvent


def _dump(obj: dict[str, Any]) -> str:
    return f"data: {json.dumps(obj, separators=(',', ':'))}\n\n"


@dataclass
class _Stream:
    model: str
    include_usage: bool
    prompt_tokens: int
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))
    completion_tokens: int = 0

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> str:
        choice: dict[str, Any] = {
            "index": 0,
            "delta": delta,
            "logprobs": None,
            "finish_reason": finish,
        }
        if finish is not None:
            choice["stop_reason"] = None
        self.completion_tokens += 1
        return _dump(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [choice],
            }
        )

    def tail(self) -> Iterator[str]:
        if self.include_usage:
            yield _dump(
                {
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": self.prompt_tokens,
                        "total_tokens": self.prompt_tokens + self.completion_tokens,
                        "completion_tokens": self.completion_tokens,
                    },
                }
            )
        yield "data: [DONE]\n\n"


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


async def _stream(behaviour: Behaviour, s: _Stream) -> AsyncIterator[str]:
    yield s.chunk({"role": "assistant", "content": ""})
    if isinstance(behaviour, Reply):
        pieces = _pieces(behaviour.text, behaviour.piece) or [""]
        for piece in pieces[:-1]:
            yield s.chunk({"content": piece})
            if behaviour.gap_s:
                await asyncio.sleep(behaviour.gap_s)
        yield s.chunk({"content": pieces[-1]}, finish="stop")
    elif isinstance(behaviour, ToolCalls):
        for piece in _pieces(behaviour.text, 4):
            yield s.chunk({"content": piece})
        last: dict[str, Any] = {}
        for index, (name, arguments) in enumerate(behaviour.calls):
            yield s.chunk(
                {
                    "tool_calls": [
                        {
                            "id": f"chatcmpl-tool-{uuid.uuid4().hex}",
                            "type": "function",
                            "index": index,
                            "function": {"name": name},
                        }
                    ]
                }
            )
            fragments = _pieces(arguments, behaviour.fragment)
            final_call = index == len(behaviour.calls) - 1
            # vLLM sends the arguments it had not streamed yet with the finish chunk.
            held = fragments.pop() if final_call and fragments else None
            for fragment in fragments:
                delta = {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}
                yield s.chunk(delta)
            if held is not None:
                last = {"tool_calls": [{"index": index, "function": {"arguments": held}}]}
        yield s.chunk(last, finish="tool_calls")
    elif isinstance(behaviour, Stall):
        for piece in _pieces(behaviour.text, behaviour.piece)[: behaviour.after]:
            yield s.chunk({"content": piece})
        await asyncio.sleep(3600)
    elif isinstance(behaviour, Garbage):
        yield "data: {this is not json\n\n"
    elif isinstance(behaviour, ErrorEvent):
        yield s.chunk({"content": behaviour.after_text})
        yield _dump({"error": {"object": "error", "message": "engine fault", "code": 500}})
    for line in s.tail():
        yield line


def _completion(behaviour: Reply | ToolCalls, model: str, prompt_tokens: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": behaviour.text or None}
    finish = "stop"
    if isinstance(behaviour, ToolCalls):
        finish = "tool_calls"
        message["tool_calls"] = [
            {
                "id": f"chatcmpl-tool-{uuid.uuid4().hex}",
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
            for name, arguments in behaviour.calls
        ]
    completion_tokens = len((behaviour.text or "").split()) + 1
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish,
                "stop_reason": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens": completion_tokens,
        },
    }


class OpenAIServer:
    """The app, its scripted behaviours per model, and the requests it received."""

    def __init__(self) -> None:
        self.plans: dict[str, deque[Behaviour]] = defaultdict(deque)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.peers: list[int] = []
        """The client's port per request: one port for two requests means a reused connection."""
        self.arrivals: list[float] = []
        """``time.monotonic()`` when each request's body had been read (one clock for every
        process of the machine, so a client in another process can compare)."""
        self.streams: list[_Stream] = []
        """Each streamed reply's state: the usage it reported once it ended."""
        self.app = self._build()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def plan(self, model: str, *behaviours: Behaviour) -> None:
        """Answer the next requests for ``model`` with ``behaviours``, in order."""
        self.plans[model].extend(behaviours)

    def reset(self) -> None:
        self.plans.clear()
        self.requests.clear()
        self.headers.clear()
        self.peers.clear()
        self.arrivals.clear()
        self.streams.clear()

    def calls(self, model: str) -> int:
        return sum(1 for r in self.requests if r.get("model") == model)

    def _next(self, model: str) -> Behaviour:
        queue = self.plans[model]
        return queue.popleft() if queue else Reply(f"Hello from {model}.")

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/health")
        async def health() -> dict[str, str]:
            return {"status": "ok"}

        @app.get("/debug/arrivals")
        async def arrivals() -> list[float]:
            return self.arrivals

        @app.get("/v1/models")
        async def models() -> dict[str, Any]:
            return {"object": "list", "data": [{"id": m, "object": "model"} for m in self.plans]}

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            body = await request.json()
            self.arrivals.append(time.monotonic())
            self.requests.append(body)
            self.headers.append(dict(request.headers))
            self.peers.append(request.client.port if request.client else 0)
            model = str(body.get("model", ""))
            behaviour = self._next(model)
            prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in body["messages"])
            if isinstance(behaviour, Fail):
                kind = "server_error" if behaviour.status >= 500 else "invalid_request_error"
                return JSONResponse(
                    {"error": {"message": behaviour.message, "type": kind, "code": None}},
                    status_code=behaviour.status,
                )
            if isinstance(behaviour, Hang):
                deadline = time.monotonic() + behaviour.seconds
                while time.monotonic() < deadline and not await request.is_disconnected():
                    await asyncio.sleep(0.02)
                return Response(status_code=504)
            if not body.get("stream"):
                if not isinstance(behaviour, Reply | ToolCalls):
                    return Response("{this is not json", media_type="application/json")
                if isinstance(behaviour, Reply) and behaviour.delay_s:
                    await asyncio.sleep(behaviour.delay_s)
                return JSONResponse(_completion(behaviour, model, prompt_tokens))
            if isinstance(behaviour, Reply) and behaviour.delay_s:
                await asyncio.sleep(behaviour.delay_s)
            options = body.get("stream_options") or {}
            state = _Stream(model, bool(options.get("include_usage")), prompt_tokens)
            self.streams.append(state)
            return StreamingResponse(
                _stream(behaviour, state), media_type="text/event-stream; charset=utf-8"
            )

        return app


@contextmanager
def openai_server() -> Iterator[OpenAIServer]:
    """Run an :class:`OpenAIServer` under uvicorn on a free loopback port."""
    server = OpenAIServer()
    server.port = free_port()
    config = uvicorn.Config(
        server.app,
        host="127.0.0.1",
        port=server.port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not runner.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the OpenAI test server did not start")
        time.sleep(0.01)
    try:
        yield server
    finally:
        runner.should_exit = True
        thread.join(10)


def main() -> None:
    """Serve until interrupted: ``python -m tests.openai_server PORT``."""
    import sys

    server = OpenAIServer()
    uvicorn.run(server.app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")


if __name__ == "__main__":
    main()
