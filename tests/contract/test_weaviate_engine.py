"""scripts/engines/weaviate.sh: a second server beside the session's, and a clean stop."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import httpx
import psutil

from app.retrieval.remote.weaviate import connect
from tests import engines


def _listening(pid: int) -> list[tuple[str, int]]:
    return [
        (c.laddr.ip, c.laddr.port)
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN
    ]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_second_instance_gets_its_own_ports_and_stops_clean(
    weaviate_env: dict[str, str], tmp_path: Path
) -> None:
    env = engines.start("weaviate", tmp_path)
    pid = int((tmp_path / "pid").read_text())
    try:
        assert (tmp_path / "engine").read_text().strip() == "weaviate"
        url = urlparse(env["WEAVIATE_URL"])
        grpc_port = int(env["WEAVIATE_GRPC_PORT"])
        assert url.scheme == "http" and url.hostname == "127.0.0.1"
        session = urlparse(weaviate_env["WEAVIATE_URL"])
        if session.hostname == "127.0.0.1":  # the session's server is a local one too
            assert url.port != session.port
            assert grpc_port != int(weaviate_env["WEAVIATE_GRPC_PORT"])
        assert httpx.get(f"{env['WEAVIATE_URL']}/v1/meta").json()["version"] == "1.39.3"
        client = connect(env["WEAVIATE_URL"], grpc_port=grpc_port)
        client.close()
        assert any((tmp_path / "data").iterdir())  # data under RUN_DIR

        # REST, gossip and Raft on loopback; gRPC and the internal data port on every
        # interface (Weaviate has no setting for those two); no profiling or metrics port.
        listening = _listening(pid)
        assert len(listening) == 6, listening
        assert ("127.0.0.1", url.port) in listening
        wildcard = [port for ip, port in listening if ip != "127.0.0.1"]
        assert grpc_port in wildcard and len(wildcard) == 2, listening
        assert all(port not in (6060, 2112) for _, port in listening)  # below the free range
    finally:
        engines.stop(tmp_path)
    assert _gone(pid)
    assert not (tmp_path / "pid").exists() and not (tmp_path / "env").exists()
    engines.stop(tmp_path)  # stopping twice is harmless
