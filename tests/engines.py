"""Real Elasticsearch and Weaviate for tests, started by ``scripts/engines.sh``.

A session starts each engine once, on free loopback ports, unless the environment already
names one (``ELASTICSEARCH_URL``; ``WEAVIATE_URL`` with ``WEAVIATE_GRPC_PORT``): then that
server is used as it is. An engine that cannot be installed or started fails the tests that
need it, with the script's message: these tests are never skipped.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "engines.sh"

ENV_KEYS = {
    "elasticsearch": ("ELASTICSEARCH_URL",),
    "weaviate": ("WEAVIATE_URL", "WEAVIATE_GRPC_PORT"),
}


def read_env(path: Path) -> dict[str, str]:
    """The ``KEY=value`` lines that ``engines.sh start`` writes to ``RUN_DIR/env``."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


PORTS = {"elasticsearch": 2, "weaviate": 6}
"""How many ports each engine listens on (``RAGENT_ENGINE_PORTS`` takes them in order:
Elasticsearch HTTP, transport; Weaviate HTTP, gRPC, gossip, data, Raft, Raft RPC)."""


def start(
    engine: str, run_dir: Path, timeout_s: float = 900, ports: Sequence[int] = ()
) -> dict[str, str]:
    """Start ``engine`` with its data in ``run_dir``; return the variables that reach it.

    ``ports`` fixes the ports (all of them, see :data:`PORTS`), so an engine can come
    back at the address its clients already use; by default free ones are picked.
    """
    env = {**os.environ}
    if ports:
        env["RAGENT_ENGINE_PORTS"] = " ".join(str(p) for p in ports)
    proc = subprocess.run(
        [str(SCRIPT), "start", engine, str(run_dir)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"scripts/engines.sh start {engine} failed ({proc.returncode}):\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
    return read_env(run_dir / "env")


def stop(run_dir: Path) -> None:
    """Stop the engine that :func:`start` started in ``run_dir``."""
    subprocess.run([str(SCRIPT), "stop", str(run_dir)], capture_output=True, timeout=120)


@contextmanager
def running(engine: str, run_dir: Path) -> Iterator[dict[str, str]]:
    """The configured server of ``engine`` if the environment names one, else a fresh one."""
    keys = ENV_KEYS[engine]
    if os.environ.get(keys[0]):
        yield {key: os.environ[key] for key in keys if key in os.environ}
        return
    env = start(engine, run_dir)
    try:
        yield env
    finally:
        stop(run_dir)
