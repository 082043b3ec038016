"""The local model provider's start-up checks, on real files, ports and processes."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.config.llm import LLMSettings
from app.llm.local.process import LocalModelError, LocalModelServer, local_model, server_for
from tests.servers import BIN, free_port


def _server(gguf: Path, port: int) -> LocalModelServer:
    return LocalModelServer(
        gguf,
        port=port,
        context=2048,
        threads=1,
        startup_timeout_s=5.0,
        alias="m",
        log_path=gguf.parent / "logs" / "local-model.log",
    )


def _http(status: int) -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b'{"status": "ok"}')

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def healthy_port() -> Iterator[int]:
    yield from _http(200)


@pytest.fixture
def other_port() -> Iterator[int]:
    yield from _http(404)


def test_a_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(LocalModelError, match=r"llm.local_gguf: no such file: .*nope.gguf"):
        _server(tmp_path / "nope.gguf", free_port()).start()


def test_a_file_that_is_no_gguf_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(LocalModelError, match="is not a GGUF model file"):
        _server(fake, free_port()).start()


def test_a_port_taken_by_another_server_is_refused(tmp_path: Path, other_port: int) -> None:
    with pytest.raises(LocalModelError, match=f"local_port {other_port} is taken"):
        _server(tmp_path / "m.gguf", other_port).start()


def test_a_healthy_server_already_running_is_used_and_left_running(
    tmp_path: Path, healthy_port: int
) -> None:
    server = _server(tmp_path / "never-read.gguf", healthy_port)
    server.start()
    assert server.adopted
    server.stop()
    assert server.healthy()  # not ours to stop


def test_a_server_that_dies_while_loading_fails_the_start(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)  # the magic, then nothing llama.cpp can load
    server = _server(broken, free_port())
    with pytest.raises(LocalModelError, match="exited while loading broken.gguf"):
        server.start()
    assert server.log_path.exists()


def test_settings_point_the_model_at_the_local_server() -> None:
    cfg = LLMSettings(local_gguf=Path("/models/q.gguf"), local_port=9123)
    assert cfg.base_url == "http://127.0.0.1:9123/v1"
    with pytest.raises(ValueError, match="leave base_url unset"):
        LLMSettings(local_gguf=Path("/models/q.gguf"), base_url="http://elsewhere:1/v1")
    assert server_for(LLMSettings(), Path("/tmp")) is None
    with local_model(LLMSettings(), Path("/tmp")) as nothing:
        assert nothing is None


def test_the_cli_says_what_is_wrong_with_the_model_file(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "ragent"), "ask", "What is WAL?"],
        env={
            "PATH": "/usr/bin:/bin",
            "RAGENT_DATA_DIR": str(tmp_path / "data"),
            "RAGENT_LLM_LOCAL_GGUF": str(tmp_path / "missing.gguf"),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"ragent: error: llm.local_gguf: no such file: {tmp_path / 'missing.gguf'}"
    )
