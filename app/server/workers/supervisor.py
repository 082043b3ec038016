"""``ragent serve --workers N``: one parent that accepts, N workers that serve.

With several uvicorn workers on one listening socket, the kernel gives a new connection
to whichever worker accepts first, and that worker's event loop accepts every pending
connection at once. A client that opens its keep-alive pool in a burst (a proxy's
upstream pool, a load generator) so lands unevenly: 22 and 10 of 32 connections in a
measured run of bench/api.py, where the busier worker's requests then waited twice as
long (p99 643 ms, against 416 ms when the split happened to be 17 and 15). As Node's
cluster module does by default, the parent here accepts every connection and hands it
to the ready workers in turn, over one Unix socket pair each (``SCM_RIGHTS``); the
worker's side is :mod:`app.server.workers.worker`. The parent also restarts a worker that dies
(unless it failed to start at all) and, on SIGTERM or SIGINT, stops accepting, asks
every worker to finish its requests and waits for them.
"""

from __future__ import annotations

import logging
import multiprocessing
import selectors
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from app.server.workers.shared_metrics import retire_worker
from app.server.workers.worker import READY, HandedWorker

__all__ = ["Supervisor"]

log = logging.getLogger(__name__)
_ACCEPTS_PER_WAKE = 64
_TICK_S = 0.5


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    channel: socket.socket
    """The parent's end of the pair; connections go out through it."""
    child_end: socket.socket | None
    """Held until the worker has its copy (``spawn`` fetches it from this process)."""
    ready: bool = False


@dataclass
class Supervisor:
    """Run ``workers`` processes of ``config`` behind one accepting parent."""

    config: uvicorn.Config
    workers: int
    _stop: threading.Event = field(default_factory=threading.Event)
    _selector: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    _pool: list[_Worker] = field(default_factory=list)
    _turn: int = 0
    _failed: bool = False
    _paused_until: float = 0.0

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT.

        Returns:
            The exit code: 0, or uvicorn's ``STARTUP_FAILURE`` when a worker could not
            start its application (it would fail the same way again).
        """
        listener = self.config.bind_socket()
        listener.listen(self.config.backlog)  # bound only: uvicorn listens in each worker
        listener.setblocking(False)
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        self._selector.register(wake_r, selectors.EVENT_READ, "wake")
        previous = {
            sig: signal.signal(sig, self._signalled(wake_w))
            for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            for _ in range(self.workers):
                self._spawn()
            while not self._stop.is_set():
                self._listen(listener)
                for key, _ in self._selector.select(_TICK_S):
                    if key.data == "wake":
                        wake_r.recv(64)
                    elif key.data == "accept":
                        self._accept(listener)
                    else:
                        self._heard(key.data)
                self._supervise()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            listener.close()
            self._retire_all()
            self._selector.close()
            wake_r.close()
            wake_w.close()
        return STARTUP_FAILURE if self._failed else 0

    def _signalled(self, wake: socket.socket) -> Callable[[int, FrameType | None], None]:
        def handler(signum: int, _: FrameType | None) -> None:
            log.info("received %s, stopping", signal.Signals(signum).name)
            self._stop.set()
            try:
                wake.send(b"x")
            except OSError:
                pass

        return handler

    def _spawn(self) -> None:
        channel, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        context = multiprocessing.get_context("spawn")
        process = context.Process(
            target=HandedWorker(self.config).run, args=(child_end,), name="ragent-worker"
        )
        process.start()
        worker = _Worker(process, channel, child_end)
        channel.setblocking(False)
        self._selector.register(channel, selectors.EVENT_READ, worker)
        self._pool.append(worker)

    def _listen(self, listener: socket.socket) -> None:
        """Accept only while some worker can take the connection; else it waits queued."""
        wanted = time.monotonic() >= self._paused_until and any(w.ready for w in self._pool)
        registered = _has(self._selector, listener)
        if wanted and not registered:
            self._selector.register(listener, selectors.EVENT_READ, "accept")
        elif registered and not wanted:
            self._selector.unregister(listener)

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(_ACCEPTS_PER_WAKE):
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors: pause, not spin
                log.warning("accept failed: %s", exc)
                self._paused_until = time.monotonic() + _TICK_S
                return
            with conn:  # the parent's copy closes; the worker's lives on
                self._hand(conn)

    def _hand(self, conn: socket.socket) -> None:
        pool = self._pool
        for i in range(len(pool)):
            worker = pool[(self._turn + i) % len(pool)]
            if not worker.ready:
                continue
            try:
                socket.send_fds(worker.channel, [b"c"], [conn.fileno()])
            except BlockingIOError:  # this worker is behind on its queue: the next one
                continue
            except OSError:
                worker.ready = False  # it is going away; _supervise replaces it
                continue
            self._turn = (self._turn + i + 1) % len(pool)
            return
        log.warning("no worker could take a connection; it is closed")

    def _heard(self, worker: _Worker) -> None:
        try:
            message = worker.channel.recv(16)
        except BlockingIOError:
            return
        except OSError:
            message = b""
        if message == READY:
            worker.ready = True
            if worker.child_end is not None:
                worker.child_end.close()
                worker.child_end = None
        elif not message:  # the worker closed its end: it is shutting down
            worker.ready = False
            self._selector.unregister(worker.channel)

    def _supervise(self) -> None:
        for worker in list(self._pool):
            if worker.process.is_alive():
                continue
            self._forget(worker)
            if worker.process.pid is not None:
                retire_worker(worker.process.pid)  # a killed worker could not do it itself
            if self._stop.is_set():
                continue
            if worker.process.exitcode == STARTUP_FAILURE:
                log.error("a worker failed to start; stopping")
                self._failed = True
                self._stop.set()
                continue
            log.warning("worker %s died (exit code %s); starting another",
                        worker.process.pid, worker.process.exitcode)  # fmt: skip
            self._spawn()

    def _forget(self, worker: _Worker) -> None:
        if _has(self._selector, worker.channel):
            self._selector.unregister(worker.channel)
        worker.channel.close()
        if worker.child_end is not None:
            worker.child_end.close()
        self._pool.remove(worker)

    def _retire_all(self) -> None:
        """SIGTERM every worker (each drains its requests), then wait; kill stragglers."""
        for worker in self._pool:
            worker.ready = False
            if worker.process.is_alive() and worker.process.pid is not None:
                worker.process.terminate()
        grace = (self.config.timeout_graceful_shutdown or 0) + 10
        for worker in list(self._pool):
            worker.process.join(grace)
            if worker.process.is_alive():
                log.warning("worker %s did not stop in time; killed", worker.process.pid)
                worker.process.kill()
                worker.process.join()
            self._forget(worker)


def _has(selector: selectors.BaseSelector, fileobj: socket.socket) -> bool:
    try:
        selector.get_key(fileobj)
    except KeyError:
        return False
    return True
