"""Finding the files to ingest and feeding them through the parse workers in order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from pathlib import Path

from app.ingest.worker import ParseJob, ParseResult, parse_file

__all__ = ["batches", "discover", "ordered"]


def discover(paths: Sequence[Path]) -> Iterator[tuple[Path, bool]]:
    """Yield ``(file, explicit)`` for each path, walking folders in sorted order.

    Raises:
        FileNotFoundError: A given path does not exist (checked before yielding any).
    """
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"no such file or directory: {path}")
    for path in paths:
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if not any(part.startswith(".") for part in child.relative_to(path).parts):
                    yield child, False
        else:
            yield path, True


def ordered(pool: Executor, jobs: list[ParseJob], *, ahead: int) -> Iterator[ParseResult]:
    """Yield results in job order, keeping at most ``ahead`` jobs in flight."""
    pending: list[Future[ParseResult]] = []
    it = iter(jobs)
    for job in it:
        pending.append(pool.submit(parse_file, job))
        if len(pending) >= ahead:
            break
    while pending:
        result = pending.pop(0).result()
        for job in it:
            pending.append(pool.submit(parse_file, job))
            break
        yield result


def batches(items: Iterable[ParseResult], size: int) -> Iterator[list[ParseResult]]:
    """Group results into lists of ``size`` (the last may be shorter)."""
    batch: list[ParseResult] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
