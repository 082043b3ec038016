"""``server.ingest_queue``: refused without Redis, and ``ragent worker`` refuses without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from app.cli.main import cli
from app.config.server import ServerSettings


def test_the_queue_needs_redis() -> None:
    with pytest.raises(ValidationError, match="ingest_queue needs redis_url"):
        ServerSettings(ingest_queue=True)
    queued = ServerSettings(ingest_queue=True, redis_url="redis://redis:6379/2")
    assert queued.ingest_max_attempts == 3 and queued.ingest_claim_idle_s == 60


@pytest.mark.parametrize("bad", [{"ingest_max_attempts": 0}, {"ingest_claim_idle_s": 0}])
def test_attempts_and_claim_time_are_bounded(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        ServerSettings(redis_url="redis://r", ingest_queue=True, **bad)  # type: ignore[arg-type]


def test_worker_refuses_when_the_api_queues_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in [k for k in os.environ if k.startswith("RAGENT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("RAGENT_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["worker"])
    assert result.exit_code != 0
    assert "server.ingest_queue is off" in str(result.exception)
