"""Ingestion jobs delete the uploads they do not index: refused files, failed or cancelled jobs."""

from __future__ import annotations

import asyncio
from typing import Any

from app.resources import Resources
from app.server.api_metrics import Metrics
from app.server.ingestion.jobs import JobManager
from app.server.ingestion.uploads import Upload
from app.server.shared_state import MemoryState

NOTES = "# Rota\n\nThe on-call rota for the billing service changes every Monday at noon.\n"


def _kept(resources: Resources, name: str, data: bytes) -> Upload:
    folder = resources.settings.data_dir / "uploads" / name.replace(".", "-")
    folder.mkdir(parents=True)
    path = folder / name
    path.write_bytes(data)
    return Upload(path, name)


def _uploads(resources: Resources) -> list[str]:
    root = resources.settings.data_dir / "uploads"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


async def _finished(jobs: JobManager, job: dict[str, Any]) -> dict[str, Any]:
    for _ in range(600):
        found = await jobs.get("t/u", job["id"])
        assert found is not None
        if found["status"] not in {"queued", "running"}:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"job still running: {job}")


async def _submit(jobs: JobManager, uploads: list[Upload]) -> dict[str, Any]:
    return await jobs.submit(
        owner="t/u", tenant="t", uploads=uploads, urls=[], acl=(), namespace=None
    )


async def test_a_job_deletes_the_files_it_refuses_and_keeps_the_indexed(
    resources: Resources,
) -> None:
    jobs = JobManager(resources.settings, resources, MemoryState(), Metrics())
    good = _kept(resources, "rota.md", NOTES.encode())
    broken = _kept(resources, "broken.pdf", b"%PDF-1.4 not really")
    empty = _kept(resources, "empty.txt", b" . \n")
    job = await _finished(jobs, await _submit(jobs, [good, broken, empty]))
    assert job["status"] == "succeeded" and job["progress"]["documents"] == 1, job
    assert [e["source"] for e in job["errors"]] == ["broken.pdf"]
    assert _uploads(resources) == ["rota-md", "rota-md/rota.md"]
    assert good.path.read_text() == NOTES


async def test_a_failed_job_leaves_no_file_behind(resources: Resources) -> None:
    jobs = JobManager(resources.settings, resources, MemoryState(), Metrics())
    uploads = [_kept(resources, "rota.md", NOTES.encode()), _kept(resources, "b.txt", b"x y z")]
    resources.writer.close()  # type: ignore[attr-defined]  # every write now fails
    job = await _finished(jobs, await _submit(jobs, uploads))
    assert job["status"] == "failed", job
    assert _uploads(resources) == []


async def test_a_job_cancelled_before_it_starts_leaves_no_file_behind(
    resources: Resources,
) -> None:
    jobs = JobManager(resources.settings, resources, MemoryState(), Metrics())
    await _submit(jobs, [_kept(resources, "rota.md", NOTES.encode())])
    await jobs.close()  # the process stops before the job ran
    assert _uploads(resources) == []


def test_uploads_are_refused_by_type_and_size_before_they_are_kept() -> None:
    from app.server.ingestion.upload_checks import refusal

    assert refusal("rota.md", 10, 100) is None
    assert refusal("rota.md", None, 100) is None
    assert refusal("big.pdf", 101, 100) == "file too large (101 bytes > 100)"
    assert refusal("tool.exe", 10, 100) == "unsupported file type '.exe'"
    assert refusal("upload-0", 10, 100) == "unsupported file type 'upload-0'"
