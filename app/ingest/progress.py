"""A rich progress bar for ingestion, with documents/s and chunks/s."""

from __future__ import annotations

import sys
import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["IngestProgress"]


class IngestProgress:
    """Shows files processed out of total, with throughput; silent when disabled.

    Output goes to stderr, so ``--json`` output on stdout stays one clean object.
    """

    def __init__(self, total: int, *, enabled: bool | None = None) -> None:
        """Prepare a bar for ``total`` files; ``enabled=None`` means "when stderr is a TTY"."""
        self._enabled = sys.stderr.isatty() if enabled is None else enabled
        self._started = time.perf_counter()
        self._docs = 0
        self._chunks = 0
        self._progress = Progress(
            TextColumn("[bold]ingest"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=not self._enabled,
        )
        self._task = self._progress.add_task("ingest", total=total, rate="")

    def __enter__(self) -> IngestProgress:
        """Start drawing."""
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop drawing."""
        self._progress.stop()

    def update(self, *, files: int, documents: int, chunks: int) -> None:
        """Advance by ``files`` finished files; ``documents`` and ``chunks`` are totals so far."""
        self._docs = documents
        self._chunks = chunks
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        rate = f"{self._docs / elapsed:.1f} docs/s {self._chunks / elapsed:.0f} chunks/s"
        self._progress.update(self._task, advance=files, rate=rate)

    @property
    def rates(self) -> tuple[float, float]:
        """Documents/s and chunks/s so far."""
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        return self._docs / elapsed, self._chunks / elapsed
