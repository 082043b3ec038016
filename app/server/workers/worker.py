"""The worker's side of ``ragent serve --workers N``: connections handed over by the parent.

The parent process (:mod:`app.server.workers.supervisor`) accepts every connection and passes
each one, in turn, to a worker over a Unix socket pair (``SCM_RIGHTS``). A worker here
runs uvicorn without a listening socket of its own: once its application has started,
it says ``ready`` on its pair, and serves each socket it receives exactly as uvicorn
serves one it accepted itself (same protocol class, same server state, so limits,
graceful shutdown and keep-alive are unchanged).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass

import uvicorn

__all__ = ["READY", "HandedServer", "HandedWorker"]

READY = b"ready"
"""What a worker sends on its pair once it serves; the parent hands it nothing before."""

_MAX_FDS = 64
log = logging.getLogger(__name__)


class HandedServer(uvicorn.Server):
    """A uvicorn server that serves the connections arriving on ``channel``."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        """Serve with ``config``; ``channel`` is this worker's end of its socket pair."""
        super().__init__(config)
        self._channel = channel
        self._tasks: set[asyncio.Task[None]] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start the application, then take connections from the parent."""
        await super().startup(sockets=[])  # the lifespan, and no listener of our own
        loop = asyncio.get_running_loop()
        self._channel.setblocking(False)
        loop.add_reader(self._channel.fileno(), self._receive)
        self._channel.send(READY)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Take no more connections, then shut down as uvicorn does."""
        self._close_channel()
        await super().shutdown(sockets)

    def _close_channel(self) -> None:
        if self._channel.fileno() != -1:
            asyncio.get_running_loop().remove_reader(self._channel.fileno())
            self._channel.close()

    def _receive(self) -> None:
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(self._channel, 16, _MAX_FDS)
            except BlockingIOError:
                return
            except OSError:
                message, fds = b"", []
            for fd in fds:
                task = asyncio.ensure_future(self._serve_handed(socket.socket(fileno=fd)))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if not message and not fds:  # the parent is gone: no connection will come
                log.warning("the serve supervisor went away; this worker stops")
                self._close_channel()
                self.should_exit = True
                return

    async def _serve_handed(self, sock: socket.socket) -> None:
        config = self.config

        def protocol() -> asyncio.Protocol:
            made: asyncio.Protocol = config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state
            )
            return made

        try:
            sock.setblocking(False)
            await asyncio.get_running_loop().connect_accepted_socket(protocol, sock, ssl=config.ssl)
        except (OSError, ValueError) as exc:  # the client left, or a TLS handshake failed
            log.debug("handed connection dropped: %s", type(exc).__name__)
            sock.close()


@dataclass(frozen=True)
class HandedWorker:
    """What the parent starts in each worker process (picklable, for ``spawn``)."""

    config: uvicorn.Config

    def run(self, channel: socket.socket) -> None:
        """Serve until told to stop (SIGTERM or SIGINT) or until the parent is gone."""
        from app.observability.setup import configure
        from app.settings import load_settings

        # A spawned process starts bare: the same logs as a lone ``ragent serve``.
        configure(load_settings(), server=True)
        self.config.configure_logging()
        HandedServer(self.config, channel).run()
