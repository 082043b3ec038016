"""How the ``ragent serve --workers N`` parent deals connections to its workers."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from app.server.workers.supervisor import Supervisor, _Worker


class _Alive:
    pid = os.getpid()

    def is_alive(self) -> bool:
        return True


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    made = [socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) for _ in range(3)]
    for parent, _ in made:
        parent.setblocking(False)
    yield made
    for parent, child in made:
        parent.close()
        child.close()


def _supervisor(pairs: list[tuple[socket.socket, socket.socket]]) -> Supervisor:
    supervisor = Supervisor(uvicorn.Config("app.server.app:app"), len(pairs))
    process: Any = _Alive()
    supervisor._pool = [_Worker(process, parent, None, ready=True) for parent, _ in pairs]
    return supervisor


def _received(child: socket.socket) -> int:
    """How many connections arrived on a worker's end (closing each one)."""
    child.setblocking(False)
    count = 0
    while True:
        try:
            _, fds, _, _ = socket.recv_fds(child, 16, 4)
        except BlockingIOError:
            return count
        for fd in fds:
            os.close(fd)
        count += len(fds)


def _deal(supervisor: Supervisor, times: int) -> None:
    for _ in range(times):
        client, server = socket.socketpair()
        with client, server:
            supervisor._hand(server)


def test_connections_go_to_the_ready_workers_in_turn(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    supervisor = _supervisor(pairs)
    supervisor._pool[1].ready = False  # still starting: it gets nothing yet
    _deal(supervisor, 4)
    assert [_received(child) for _, child in pairs] == [2, 0, 2]
    supervisor._pool[1].ready = True
    _deal(supervisor, 6)
    assert [_received(child) for _, child in pairs] == [2, 2, 2]


def test_a_handed_connection_is_the_same_socket(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    supervisor = _supervisor(pairs[:1])
    client, server = socket.socketpair()
    with client, server:
        supervisor._hand(server)
        _, fds, _, _ = socket.recv_fds(pairs[0][1], 16, 4)
        with socket.socket(fileno=fds[0]) as handed:
            client.sendall(b"ping")
            assert handed.recv(4) == b"ping"


def test_a_gone_worker_is_skipped_and_no_longer_ready(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    supervisor = _supervisor(pairs)
    pairs[0][1].close()  # the worker died: its end of the pair is closed
    _deal(supervisor, 4)
    assert not supervisor._pool[0].ready
    assert [_received(child) for _, child in pairs[1:]] == [2, 2]


def test_a_worker_behind_on_its_queue_is_passed_over(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    supervisor = _supervisor(pairs[:2])
    parent = pairs[0][0]
    filled = 0
    with pytest.raises(BlockingIOError):
        while True:  # fill worker 0's queue
            parent.send(b"x" * 1024)
            filled += 1
    _deal(supervisor, 3)
    assert supervisor._pool[0].ready  # slow is not gone
    assert _received(pairs[1][1]) == 3
    assert filled > 0


def test_with_no_ready_worker_the_connection_is_closed(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    supervisor = _supervisor(pairs)
    for worker in supervisor._pool:
        worker.ready = False
    client, server = socket.socketpair()
    with client:
        with server:
            supervisor._hand(server)
        assert client.recv(1) == b""  # closed, not left hanging
    assert [_received(child) for _, child in pairs] == [0, 0, 0]
