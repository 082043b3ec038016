"""Start, watch and stop the local model server (:mod:`app.llm.local.server`).

With ``llm.local_gguf`` set, a command that needs the chat model (``ragent ask``,
``chat``, ``eval``, ``serve``) first makes sure a llama.cpp server for that file answers
on ``127.0.0.1:<llm.local_port>``: one already running there is used as it is; otherwise
one is started as a child process and the command waits until it reports healthy (at
most ``llm.local_startup_timeout_s``). While the command runs, a watcher thread restarts
the server if it dies (with backoff); when the command ends, the server it started is
stopped (SIGTERM, then SIGKILL after a grace period). The server itself exits when its
parent is gone, so nothing is left behind after a kill -9.

Written here rather than with a process manager (supervisord, circus): those are daemons
with their own configuration and control sockets, while this child lives and dies with
one command.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Final

import httpx

from app.config.llm import LLMSettings

__all__ = ["LocalModelError", "LocalModelServer", "alocal_model", "local_model", "server_for"]

log = logging.getLogger(__name__)

_GGUF_MAGIC: Final = b"GGUF"
_STOP_GRACE_S: Final = 10.0
_POLL_S: Final = 0.25
_MAX_BACKOFF_S: Final = 30.0
_LOG_TAIL: Final = 2000


class LocalModelError(RuntimeError):
    """The local model server cannot be started (a one-line reason)."""


class LocalModelServer:
    """One llama.cpp server process for a GGUF file, on loopback.

    Attributes:
        gguf: The model file.
        port: The loopback port it listens on.
        url: ``http://127.0.0.1:<port>``; the OpenAI API is under ``/v1``.
        adopted: True when a server was already running there (it is never stopped).
    """

    def __init__(
        self,
        gguf: Path,
        *,
        port: int,
        context: int,
        threads: int | None,
        startup_timeout_s: float,
        alias: str,
        log_path: Path,
    ) -> None:
        """Describe the server; nothing starts until :meth:`start`."""
        self.gguf = gguf
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.context = context
        self.threads = threads
        self.startup_timeout_s = startup_timeout_s
        self.alias = alias
        self.log_path = log_path
        self.adopted = False
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._lock = threading.Lock()

    def healthy(self) -> bool:
        """Whether a server on the port answers ``/health`` with ``ok``."""
        try:
            response = httpx.get(f"{self.url}/health", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def _listening(self) -> bool:
        try:
            httpx.get(f"{self.url}/health", timeout=2.0)
        except httpx.HTTPError:
            return False
        return True

    def start(self) -> None:
        """Use the server already on the port, or start one and wait until it is healthy.

        Raises:
            LocalModelError: The file is missing or no GGUF, the port is taken by
                something else, or the server did not become healthy in time.
        """
        if self.healthy():
            self.adopted = True
            log.info("using the local model server already on port %d", self.port)
            return
        if self._listening():
            raise LocalModelError(
                f"llm.local_port {self.port} is taken by a server that is not a healthy "
                "llama.cpp server; choose another port"
            )
        _check_gguf(self.gguf)
        self._spawn()
        self._wait_healthy()
        self._watcher = threading.Thread(target=self._watch, name="local-model", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        """Stop the server if this process started it (an adopted one keeps running)."""
        self._stopping.set()
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            _terminate(process)
        if self._watcher is not None:
            self._watcher.join(timeout=_STOP_GRACE_S)

    def _command(self) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "app.llm.local.server",
            "--model",
            str(self.gguf),
            "--port",
            str(self.port),
            "--context",
            str(self.context),
            "--parent",
            str(os.getpid()),
        ]
        if self.threads:
            command += ["--threads", str(self.threads)]
        if self.alias:
            command += ["--alias", self.alias]
        return command

    def _spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            process = subprocess.Popen(  # noqa: S603 - our own module, no shell
                self._command(), stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        with self._lock:
            self._process = process

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            process = self._process
            if process is None or process.poll() is not None:
                raise LocalModelError(
                    f"the local model server exited while loading {self.gguf.name}: "
                    f"{self._log_tail() or 'no output'}"
                )
            if self.healthy():
                return
            time.sleep(_POLL_S)
        if self._process is not None:
            _terminate(self._process)
        raise LocalModelError(
            f"the local model server did not answer within {self.startup_timeout_s:g} s "
            "(llm.local_startup_timeout_s)"
        )

    def _watch(self) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            process = self._process
            if process is None or process.poll() is None:
                self._stopping.wait(_POLL_S)
                continue
            if self._stopping.is_set():
                return
            log.warning(
                "the local model server exited (code %s); restarting in %.0f s",
                process.returncode,
                backoff,
            )
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, _MAX_BACKOFF_S)
            try:
                self._spawn()
                self._wait_healthy()
            except LocalModelError as exc:
                log.error("restarting the local model server failed: %s", exc)
                continue
            self.restarts += 1
            backoff = 1.0

    def _log_tail(self) -> str:
        try:
            data = self.log_path.read_bytes()[-_LOG_TAIL:]
        except OSError:
            return ""
        lines = [line for line in data.decode(errors="replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _check_gguf(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            magic = handle.read(len(_GGUF_MAGIC))
    except FileNotFoundError:
        raise LocalModelError(f"llm.local_gguf: no such file: {path}") from None
    except OSError as exc:
        raise LocalModelError(f"llm.local_gguf: cannot read {path}: {exc.strerror}") from None
    if magic != _GGUF_MAGIC:
        raise LocalModelError(f"llm.local_gguf: {path} is not a GGUF model file")


def server_for(cfg: LLMSettings, data_dir: Path) -> LocalModelServer | None:
    """Return the local model server ``cfg`` asks for (not started), or None."""
    if cfg.local_gguf is None:
        return None
    return LocalModelServer(
        cfg.local_gguf,
        port=cfg.local_port,
        context=cfg.context_window,
        threads=cfg.local_threads,
        startup_timeout_s=cfg.local_startup_timeout_s,
        alias=cfg.model,
        log_path=data_dir / "logs" / "local-model.log",
    )


@contextmanager
def local_model(cfg: LLMSettings, data_dir: Path) -> Iterator[LocalModelServer | None]:
    """Run the local model server that ``cfg`` asks for while the block runs.

    Args:
        cfg: The ``llm`` settings; without ``local_gguf`` nothing is started.
        data_dir: Where its log goes (``logs/local-model.log``).

    Yields:
        The server, or None when no local model is configured.

    Raises:
        LocalModelError: It could not be started.
    """
    server = server_for(cfg, data_dir)
    if server is None:
        yield None
        return
    server.start()
    try:
        yield server
    finally:
        server.stop()


@asynccontextmanager
async def alocal_model(cfg: LLMSettings, data_dir: Path) -> AsyncIterator[LocalModelServer | None]:
    """:func:`local_model` for async code: starting and stopping run off the event loop."""
    server = server_for(cfg, data_dir)
    if server is None:
        yield None
        return
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)
