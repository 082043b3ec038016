"""Fixtures for integration tests: a small ingested corpus, deployments, CLI runs.

Every ``ragent`` process loads the embedding model (about 8 to 10 s), so the corpus is
ingested once per session and its index copied into each deployment's data dir.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.servers import BIN, REPO, RedisServer, redis_server

# Two documents on unrelated topics, so that a question can be shown to retrieve from
# one or the other.
CORPUS = ("sqlite-wal.html", "python-sorting-howto.txt")
BACKENDS = ("sqlite", "redis")
REDISVL_ASYNC_FACTORY = "get_async_redis_connection will become a coroutine"
"""Start of a DeprecationWarning that AsyncRedisSaver/AsyncRedisStore set off at creation."""


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """The current environment without any ``RAGENT_*`` variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGENT_")}
    return {**env, **extra}


def run_ragent(*args: str, env: dict[str, str], timeout: float = 120) -> dict[str, Any]:
    """Run the ``ragent`` CLI with exactly ``env`` for settings; return its ``--json`` output."""
    proc = subprocess.run(
        [str(BIN / "ragent"), *args, "--json"],
        cwd=REPO,
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"ragent {args[0]} exited {proc.returncode}:\n{proc.stderr}"
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def run_python(
    code: str, *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code args...`` of this venv with exactly ``env`` for settings."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def ingested_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding the index of :data:`CORPUS`, ingested once with ``ragent ingest``."""
    root = tmp_path_factory.mktemp("corpus")
    docs = root / "docs"
    docs.mkdir()
    for name in CORPUS:
        shutil.copy(REPO / "samples" / name, docs / name)
    data = root / "data"
    report = run_ragent("ingest", str(docs), env={"RAGENT_DATA_DIR": str(data)})
    assert report["documents"] == len(CORPUS) and not report["failed"], report
    return data


@dataclass
class Deployment:
    """One ragent deployment: its data dir and checkpoint backend (and Redis server)."""

    backend: str
    data_dir: Path
    redis: RedisServer | None = None
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.env = {
            "RAGENT_DATA_DIR": str(self.data_dir),
            "RAGENT_CHECKPOINT_BACKEND": self.backend,
        }
        if self.redis is not None:
            self.env["RAGENT_CHECKPOINT_REDIS_URL"] = self.redis.url

    def ask(self, question: str, *, thread: str, user: str = "local") -> dict[str, Any]:
        """One turn in a new ``ragent ask`` process; returns its JSON answer."""
        return run_ragent("ask", question, "--thread", thread, "--user", user, env=self.env)

    def state(self, thread: str, *, user: str = "local") -> dict[str, Any]:
        """Read the thread's checkpointed state in this process, as the app would open it."""
        return asyncio.run(_state(self.env, thread, user))


async def _state(env: dict[str, str], thread: str, user: str) -> dict[str, Any]:
    from app.context import Context
    from app.conversations import thread_key
    from app.graphs.agent import compile_agent
    from app.memory.checkpoint import open_checkpointer
    from app.settings import load_settings

    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("RAGENT_")]:
            mp.delenv(key)
        for key, value in env.items():
            mp.setenv(key, value)
        settings = load_settings()
    assert settings.checkpoint.backend == env["RAGENT_CHECKPOINT_BACKEND"]
    key = thread_key(Context(tenant_id=settings.tenant_id, user_id=user), thread)
    with warnings.catch_warnings():
        # AsyncRedisSaver calls redisvl's get_async_redis_connection, which always warns.
        warnings.filterwarnings("ignore", REDISVL_ASYNC_FACTORY, DeprecationWarning)
        async with open_checkpointer(settings) as saver:
            snapshot = await compile_agent(saver).aget_state({"configurable": {"thread_id": key}})
    return dict(snapshot.values)


@contextmanager
def deployment(backend: str, directory: Path, index: Path) -> Iterator[Deployment]:
    """A deployment in ``directory`` with a copy of ``index`` (and a Redis when asked)."""
    data = directory / "data"
    shutil.copytree(index, data, ignore=shutil.ignore_patterns("checkpoints.sqlite*"))
    if backend == "redis":
        with redis_server() as server:
            yield Deployment(backend, data, server)
    else:
        yield Deployment(backend, data)
