"""Scheduled and triggered syncs in one process, on the embedded profile (lock files)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.config.sources import SqlSourceSettings
from app.resources import Resources
from app.settings import Settings
from app.sources.runner import SourceRunner
from app.sources.schedule import SourceSyncs, UnknownSourceError
from app.sources.status import SqliteStatusStore
from tests.sources import CREATE, TENANT, execute, make_sync, visible


def _kb(url: str, **extra: Any) -> SqlSourceSettings:
    return SqlSourceSettings(
        name="kb",
        url=url,
        query="SELECT id, title, body, category, groups, updated_at FROM articles",
        id_column="id",
        title_column="title",
        text_columns=["body"],
        acl_column="groups",
        updated_at_column="updated_at",
        tenant_id=TENANT,
        **extra,
    )


def _syncs(resources: Resources, settings: Settings, url: str, **extra: Any) -> SourceSyncs:
    configured = settings.model_copy(update={"sources": [_kb(url, **extra)]})
    status = SqliteStatusStore(settings.data_dir / "sources.sqlite")
    return SourceSyncs(
        configured, lambda: SourceRunner(sync=make_sync(resources), status=status), tick_s=0.05
    )


async def _until(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := await asyncio.to_thread(check):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError("not within the time allowed")


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'kb.sqlite'}"
    execute(
        url,
        CREATE,
        "INSERT INTO articles VALUES (1, 'Kettles', 'descale the kettle monthly', 'home',"
        " NULL, '2026-01-01 10:00:00')",
    )
    return url


async def test_a_scheduled_source_syncs_on_its_own_every_interval(
    resources: Resources, settings: Settings, url: str
) -> None:
    syncs = _syncs(resources, settings, url, every_s=1)
    runner = await syncs.runner()
    syncs.start()
    try:
        await _until(lambda: runner.status.runs(TENANT, "kb"))
        assert visible(resources, "kettle") == ["source:kb/1"]
        status = await syncs.status("kb", tenant_id=TENANT)
        assert status["state"] == "ok" and status["every_s"] == 1
        assert status["next_run_at"] == pytest.approx(status["finished_at"] + 1)
        assert status["last_result"]["trigger"] == "schedule"
        assert status["last_result"]["indexed"] == 1
        execute(
            url,
            "INSERT INTO articles VALUES (2, 'Bikes', 'oil the bicycle chain', 'home', NULL,"
            " '2026-01-02 10:00:00')",
        )
        await _until(lambda: visible(resources, "bicycle"))
    finally:
        await syncs.close()
    runs = runner.status.runs(TENANT, "kb")
    assert len(runs) >= 2
    for before, after in zip(runs, runs[1:], strict=False):  # one at a time, an interval apart
        assert after["started_at"] >= before["finished_at"] + 1


async def test_a_sync_asked_for_while_one_runs_is_refused(
    resources: Resources, settings: Settings, url: str
) -> None:
    syncs = _syncs(resources, settings, url)
    runner = await syncs.runner()
    held = runner.claim(TENANT, "kb")  # a sync running in another process of this folder
    assert held is not None
    try:
        assert not await syncs.trigger("kb", tenant_id=TENANT)
        assert (await syncs.status("kb", tenant_id=TENANT))["running"] is True
    finally:
        held.release()
    assert await syncs.trigger("kb", tenant_id=TENANT)
    await _until(lambda: runner.status.runs(TENANT, "kb"))
    status = await syncs.status("kb", tenant_id=TENANT)
    assert (status["state"], status["running"], status["next_run_at"]) == ("ok", False, None)
    assert status["last_result"]["trigger"] == "manual"
    await syncs.close()


async def test_a_failing_source_records_its_error(
    resources: Resources, settings: Settings, tmp_path: Path
) -> None:
    syncs = _syncs(resources, settings, f"sqlite:///{tmp_path / 'empty.sqlite'}")
    runner = await syncs.runner()
    assert await syncs.trigger("kb", tenant_id=TENANT)
    (run,) = await _until(lambda: runner.status.runs(TENANT, "kb"))
    assert run["error"].startswith("OperationalError: ")
    assert "no such table: articles" in run["error"]
    assert (await syncs.status("kb", tenant_id=TENANT))["state"] == "failed"
    await syncs.close()


async def test_another_tenants_source_is_unknown(
    resources: Resources, settings: Settings, url: str
) -> None:
    syncs = _syncs(resources, settings, url)
    with pytest.raises(UnknownSourceError):
        await syncs.trigger("kb", tenant_id="someone-else")
    with pytest.raises(UnknownSourceError):
        await syncs.status("nope", tenant_id=TENANT)
    assert await syncs.statuses(tenant_id="someone-else") == []
    await syncs.close()


async def test_a_schedule_that_cannot_start_logs_once_and_keeps_trying(
    settings: Settings, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    attempts = 0

    def broken() -> SourceRunner:
        nonlocal attempts
        attempts += 1
        raise ConnectionError("Redis is away")

    configured = settings.model_copy(update={"sources": [_kb(url, every_s=1)]})
    syncs = SourceSyncs(configured, broken, tick_s=0.02)
    syncs.start()
    await _until(lambda: attempts >= 5)
    await syncs.close()
    logged = [r.getMessage() for r in caplog.records if r.name == "ragent.sources"]
    assert logged == ["source kb: a scheduled sync cannot start: ConnectionError: Redis is away"]
