"""A keep-alive connection the server closed between two requests is not a failed call.

The server here is a real socket server that keeps a connection alive after its first
response and drops it, unanswered, when the next request arrives on it, as llama.cpp's
server does past its keep-alive count. The client's pool learns the connection is dead
only then: the request never reached the server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from langchain_core.messages import HumanMessage

from app.llm.factory import build_models
from app.settings import LLMSettings

CHUNK = {
    "id": "c",
    "object": "chat.completion.chunk",
    "created": 0,
    "model": "m",
    "choices": [
        {"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}
    ],
}
LAST = {**CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
BODY = f"data: {json.dumps(CHUNK)}\n\ndata: {json.dumps(LAST)}\n\ndata: [DONE]\n\n".encode()


@pytest.fixture
async def one_request_per_connection() -> AsyncIterator[tuple[str, list[int]]]:
    served: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = True
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            if not first:  # the next request on this connection: drop it unanswered
                break
            first = False
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            await reader.readexactly(length)
            served.append(1)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                + f"Content-Length: {len(BODY)}\r\n\r\n".encode()
                + BODY
            )
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1", served
    finally:
        server.close()
        await server.wait_closed()


async def test_a_dead_pooled_connection_is_retried_on_a_new_one(
    one_request_per_connection: tuple[str, list[int]],
) -> None:
    url, served = one_request_per_connection
    cfg = LLMSettings(base_url=url, model="m", max_retries=0, offline_fallback=False)
    models = build_models(cfg)
    try:
        for _ in range(3):
            reply = await models.default.model.ainvoke([HumanMessage("hello")])
            assert reply.text == "hi"
    finally:
        await models.aclose()
    assert len(served) == 3
