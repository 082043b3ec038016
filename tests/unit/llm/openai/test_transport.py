"""The streaming model client's wire: server-sent events cut anywhere, errors as httpx's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest

from app.llm.openai.transport import WirePool, as_httpx, sse_data
from tests.servers import free_port


async def pieces(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def events(body: bytes, size: int) -> list[str]:
    return [data async for data in sse_data(pieces(body, size))]


BODY = (
    b": a comment line\n"
    b'data: {"a": "\xc3\xa9 \xe2\x9c\x93"}\n\n'  # multi-byte characters, cut anywhere below
    b"event: ping\r\n"
    b"id: 7\r\n"
    b"data:first\r\n"
    b"data: second\r\n"
    b"\r\n"
    b"retry: 100\n\n"  # no data: nothing to dispatch
    b"data: [DONE]\n\n"
    b"data: cut short"  # the body ends before the blank line
)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 4096])
async def test_events_are_the_same_however_the_body_is_cut(size: int) -> None:
    assert await events(BODY, size) == ['{"a": "é ✓"}', "first\nsecond", "[DONE]"]


async def test_only_one_space_after_the_colon_is_dropped() -> None:
    assert await events(b"data:  two spaces\n\ndata:\n\n", 5) == [" two spaces", ""]


def test_errors_of_the_connection_become_httpx_errors() -> None:
    cases: list[tuple[Exception, type[httpx.HTTPError]]] = [
        (aiohttp.ServerTimeoutError("read"), httpx.ReadTimeout),
        (aiohttp.ConnectionTimeoutError("connect"), httpx.ConnectTimeout),
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (aiohttp.ClientPayloadError("truncated"), httpx.RemoteProtocolError),
        (aiohttp.ClientError("other"), httpx.TransportError),
    ]
    for raised, expected in cases:
        with pytest.raises(expected) as caught, as_httpx("http://model/v1/chat/completions"):
            raise raised
        assert caught.value.__cause__ is raised


def test_other_errors_pass_unchanged() -> None:
    with pytest.raises(ValueError, match="not ours"), as_httpx("http://model"):
        raise ValueError("not ours")


async def test_a_refused_connection_is_an_httpx_connect_error() -> None:
    pool = WirePool()
    url = f"http://127.0.0.1:{free_port()}/v1/chat/completions"  # nothing listens there
    with pytest.raises(httpx.ConnectError), as_httpx(url):
        async with pool.session().post(url, data=b"{}"):
            pass
    await pool.aclose()


def test_each_event_loop_gets_its_own_session_and_closes_it() -> None:
    pool = WirePool()

    async def use() -> tuple[aiohttp.ClientSession, aiohttp.ClientSession]:
        first = pool.session()
        again = pool.session()
        await pool.aclose()
        return first, again

    one, same = asyncio.run(use())
    two, _ = asyncio.run(use())
    assert one is same and one is not two
    assert one.closed and two.closed


def test_the_proxy_comes_from_the_environment_once_per_origin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "vllm.internal")
    pool = WirePool()
    assert pool.proxy("http://gateway.example/v1/chat/completions") == "http://proxy.internal:3128"
    assert pool.proxy("http://vllm.internal:8000/v1/chat/completions") is None
    assert pool.proxy("https://api.example/v1/chat/completions") is None  # no HTTPS_PROXY
    monkeypatch.setenv("HTTP_PROXY", "http://other:3128")
    # Read once, as httpx's client reads it when made; a new pool reads it again.
    assert pool.proxy("http://gateway.example/v1/models") == "http://proxy.internal:3128"
    assert WirePool().proxy("http://gateway.example/v1/models") == "http://other:3128"
