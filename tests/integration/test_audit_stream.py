"""The audit trail in a Redis stream (``tools.audit_redis_url``), shared by every replica."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import redis

from app.tools.audit import AUDIT_STREAM, AuditRecord, AuditSink
from tests.servers import redis_server

pytestmark = pytest.mark.integration


def _record(i: int) -> AuditRecord:
    return AuditRecord(
        tenant="acme",
        user="alice",
        thread="t1",
        tool="calculator",
        risk="read",
        call_id=f"call_{i}",
        args={"expression": "1+1"},
        outcome="ok",
        latency_ms=1.0,
    )


def test_records_go_to_a_capped_stream_and_not_to_disk(tmp_path: Path) -> None:
    with redis_server() as server:
        sink = AuditSink(None, redis_url=server.url, max_records=1000)

        async def write(count: int) -> None:
            for i in range(count):
                await sink.write(_record(i))

        asyncio.run(write(2500))
        client = redis.Redis.from_url(server.url)
        try:
            length = client.xlen(AUDIT_STREAM)
            newest = client.xrevrange(AUDIT_STREAM, count=1)[0][1]
        finally:
            client.close()
    assert 1000 <= length < 1300  # trimmed near the cap, not grown with every record
    line = json.loads(newest[b"r"])
    assert line["call_id"] == "call_2499" and line["at"]
    assert not list(tmp_path.iterdir())


def test_an_unreachable_stream_never_fails_the_call(caplog: pytest.LogCaptureFixture) -> None:
    sink = AuditSink(None, redis_url="redis://127.0.0.1:1/0")
    asyncio.run(sink.write(_record(1)))  # no exception
    assert "cannot append to the audit stream" in caplog.text
