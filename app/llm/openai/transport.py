"""The HTTP wire of the streaming model client: aiohttp sessions, SSE lines, httpx errors.

aiohttp, not httpx: a streamed completion from a local model server took 0.7 ms of CPU
through aiohttp against 3.1-3.5 ms through httpx (same server, same body, 500 calls), and
this process spends its CPU on every token of every turn. The rest of the code base knows
httpx's errors, so :func:`as_httpx` raises those for the connection's failures.
"""

from __future__ import annotations

import asyncio
import urllib.parse
import urllib.request
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Mapping
from contextlib import contextmanager

import aiohttp
import httpx

__all__ = [
    "MAX_LINE_BYTES",
    "WirePool",
    "as_httpx",
    "httpx_request",
    "httpx_response",
    "request_timeout",
    "sse_data",
]

MAX_LINE_BYTES = 4 * 1024 * 1024
"""The longest line of a model's event stream: far above any one token's event, and a
bound on what a server that never ends a line can make this process hold."""


class WirePool:
    """One aiohttp session (a keep-alive connection pool) per event loop.

    A session belongs to the loop it was made in, and a model object may be used from
    more than one loop (``asyncio.run`` per CLI command, a loop per test), so each loop
    gets its own. A closed loop's session is dropped the next time a session is made.
    """

    def __init__(self) -> None:
        """Start with no session; the first request makes one."""
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession]
        self._sessions = weakref.WeakKeyDictionary()
        self._proxies: dict[str, str | None] = {}

    def proxy(self, url: str) -> str | None:
        """Return the proxy the environment names for ``url``, read once per origin.

        ``HTTP_PROXY``, ``HTTPS_PROXY`` and ``NO_PROXY`` count as they do for httpx's
        client, which reads them when it is made. aiohttp's own ``trust_env`` reads them
        on every request, which cost 0.55 ms of CPU a call.
        """
        parts = urllib.parse.urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._proxies:
            bypass = parts.hostname is not None and urllib.request.proxy_bypass(parts.hostname)
            found = None if bypass else urllib.request.getproxies().get(parts.scheme)
            self._proxies[origin] = found
        return self._proxies[origin]

    def session(self) -> aiohttp.ClientSession:
        """Return the running loop's session, making it on first use."""
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            for stale in [other for other in self._sessions if other.is_closed()]:
                del self._sessions[stale]
            # Timeouts and the proxy (see proxy()) are set per request.
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout())
            self._sessions[loop] = session
        return session

    async def aclose(self) -> None:
        """Close the running loop's session, if it has one."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()


def request_timeout(seconds: float | None) -> aiohttp.ClientTimeout:
    """Bound connecting and each read by ``seconds`` (None: unbounded), never the whole stream."""
    return aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)


@contextmanager
def as_httpx(url: str) -> Iterator[None]:
    """Raise aiohttp's connection and timeout errors as the httpx errors they correspond to."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        raise httpx.ConnectTimeout(
            str(exc) or "connect timeout", request=httpx_request(url)
        ) from exc
    except aiohttp.ServerTimeoutError as exc:
        raise httpx.ReadTimeout(str(exc) or "read timeout", request=httpx_request(url)) from exc
    except aiohttp.ClientConnectorError as exc:
        raise httpx.ConnectError(str(exc), request=httpx_request(url)) from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
        raise httpx.RemoteProtocolError(str(exc), request=httpx_request(url)) from exc
    except aiohttp.ClientError as exc:
        raise httpx.TransportError(str(exc) or type(exc).__name__) from exc


def httpx_response(
    url: str, status: int, headers: Mapping[str, str], content: bytes
) -> httpx.Response:
    """An httpx response for the openai SDK's errors, which carry one."""
    return httpx.Response(
        status, headers=dict(headers), content=content, request=httpx_request(url)
    )


def httpx_request(url: str) -> httpx.Request:
    """The httpx request a POST to ``url`` stands for, for errors that carry one."""
    return httpx.Request("POST", url)


async def sse_data(
    pieces: AsyncIterable[bytes], *, max_line_bytes: int = MAX_LINE_BYTES
) -> AsyncIterator[str]:
    """Yield the data of each server-sent event in a body that arrives in ``pieces``.

    Follows the event-stream format: ``data:`` lines (one optional space after the colon)
    join with newlines into one event, a blank line dispatches it, comments (``:``) and
    other fields are skipped. Lines end with LF or CRLF. An event the body ends before
    its blank line is dropped, as the format says. A line that arrives in many pieces is
    joined once, when it ends.

    Raises:
        ValueError: A line is longer than ``max_line_bytes``.
    """
    pending: list[bytes] = []
    size = 0
    data: list[str] = []
    async for piece in pieces:
        if b"\n" not in piece:
            pending.append(piece)
            size += len(piece)
            if size > max_line_bytes:
                raise ValueError(f"a stream line is longer than {max_line_bytes} bytes")
            continue
        lines = b"".join([*pending, piece]).split(b"\n")
        tail = lines.pop()
        pending, size = [tail], len(tail)
        for raw in lines:
            if len(raw) > max_line_bytes:
                raise ValueError(f"a stream line is longer than {max_line_bytes} bytes")
            line = raw.removesuffix(b"\r")
            if not line:
                if data:
                    yield "\n".join(data)
                    data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append((value[1:] if value.startswith(b" ") else value).decode())
