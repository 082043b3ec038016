"""Parser processes: every file is parsed in a child process with capped memory and time.

Parsers (pdfminer, lxml, python-docx, Python-Markdown) run arbitrary files through C and
Python code that nobody bounded for hostile input. The cheap checks of
:mod:`app.ingest.loaders.expansion` stop the known bombs; this is the backstop for the rest.
Each worker is a ``spawn``-ed process (``fork`` would copy the parent's ONNX Runtime and
server threads) that, before it imports any parser:

* caps its address space with ``RLIMIT_AS`` (:attr:`SandboxLimits.memory_bytes`): an
  allocation past it fails with ``MemoryError`` (or kills the process, from C code), so a
  file that needs more fails alone and the parent never grows with it;
* before each file, caps its CPU time with ``RLIMIT_CPU``, so that a worker left behind by
  a dead parent cannot spin forever;
* lowers its scheduling priority (``nice`` 10), so that on a busy machine the server's own
  process (health checks, chat) gets the CPU first.

The parent hands one file at a time to each worker and waits with a per-file wall-clock
deadline (:attr:`SandboxLimits.timeout_s`); a worker past it is killed. A killed or crashed
worker gives its file a one-line error and is replaced for the next file. The parent only
waits on pipes meanwhile, so a server's event loop keeps its GIL and answers.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnProcess
from types import TracebackType

from app.ingest.worker import OUT_OF_MEMORY, ParseJob, ParseResult, parse_file

__all__ = ["ParseSandbox", "SandboxLimits"]

_STOP_GRACE_S = 2.0
_NICENESS = 10
# Parser libraries' thread pools each reserve address space; the parse needs none of them.
_ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """What one parser process may use (``ingest.parse_memory_bytes``/``parse_timeout_s``)."""

    memory_bytes: int = 3_000_000_000
    """Address space of the process (``RLIMIT_AS``), libraries included."""
    timeout_s: float = 120.0
    """Wall time for one file."""


def _serve(conn: Connection, limits: SandboxLimits) -> None:
    """A worker's main loop: parse the jobs it receives until it gets None or the pipe closes."""
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    os.nice(_NICENESS)
    for name in _ONE_THREAD:
        os.environ[name] = "1"
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        used = resource.getrusage(resource.RUSAGE_SELF)
        budget = int(used.ru_utime + used.ru_stime + limits.timeout_s) + 5
        if cpu_hard == resource.RLIM_INFINITY or budget < cpu_hard:
            resource.setrlimit(resource.RLIMIT_CPU, (budget, cpu_hard))
        result = parse_file(job)
        conn.send(result)
        if result.error == OUT_OF_MEMORY:
            return  # a fresh process for the next file, not a fragmented heap


class _Worker:
    """One parser process and the file it is parsing, if any."""

    def __init__(self, limits: SandboxLimits) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process: SpawnProcess = context.Process(
            target=_serve, args=(child, limits), name="ragent-parser", daemon=True
        )
        self.process.start()
        child.close()
        self.index = -1
        self.job: ParseJob | None = None
        self.started = 0.0

    def send(self, index: int, job: ParseJob) -> None:
        self.index, self.job, self.started = index, job, time.monotonic()
        self.conn.send(job)

    def stop(self, *, kill: bool = False) -> None:
        if not kill:
            try:
                self.conn.send(None)
            except OSError:
                kill = True
            self.process.join(_STOP_GRACE_S)
        if self.process.is_alive():
            self.process.kill()
        self.process.join(_STOP_GRACE_S)
        self.conn.close()


class ParseSandbox:
    """A few parser processes, started on demand and kept across runs until :meth:`close`.

    One caller at a time: :meth:`parse` is not safe to run from two threads at once.
    """

    def __init__(self, limits: SandboxLimits, *, workers: int = 1) -> None:
        """Set the caps and the number of processes (none is started yet)."""
        self.limits = limits
        self._slots: list[_Worker | None] = [None] * max(1, workers)

    def __enter__(self) -> ParseSandbox:
        """Return the sandbox; its processes stop when the block ends."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Stop the processes."""
        self.close()

    def close(self) -> None:
        """Stop the processes (each finishes or is killed within a few seconds)."""
        for slot, worker in enumerate(self._slots):
            if worker is not None:
                worker.stop(kill=worker.job is not None)
                self._slots[slot] = None

    def parse(self, jobs: Sequence[ParseJob]) -> Iterator[ParseResult]:
        """Parse ``jobs`` in the processes, yielding results in job order.

        At most four files per process are parsed ahead of the one the caller waits for.
        A file that fails (including one whose process was killed) yields its error.
        """
        queue = deque(enumerate(jobs))
        done: dict[int, ParseResult] = {}
        ahead = 4 * len(self._slots)
        try:
            for wanted in range(len(jobs)):
                while wanted not in done:
                    self._hand_out(queue, wanted + ahead)
                    self._collect(done)
                yield done.pop(wanted)
        finally:
            # Left early (the caller failed or stopped): a result still to come would be
            # filed under the next run's jobs, so its process goes.
            for slot, worker in enumerate(self._slots):
                if worker is not None and worker.job is not None:
                    worker.stop(kill=True)
                    self._slots[slot] = None

    def _hand_out(self, queue: deque[tuple[int, ParseJob]], limit: int) -> None:
        """Give the next queued jobs (with an index below ``limit``) to idle processes."""
        for slot, worker in enumerate(self._slots):
            if not queue or queue[0][0] >= limit:
                return
            if worker is None:
                worker = self._slots[slot] = _Worker(self.limits)
            if worker.job is None:
                worker.send(*queue.popleft())

    def _collect(self, done: dict[int, ParseResult]) -> None:
        """Wait for a result or a deadline, and file what came in under its job's index."""
        busy = [w for w in self._slots if w is not None and w.job is not None]
        deadline = min(w.started for w in busy) + self.limits.timeout_s
        handles = [w.conn for w in busy] + [w.process.sentinel for w in busy]
        wait(handles, timeout=max(0.0, deadline - time.monotonic()))
        for slot, worker in enumerate(self._slots):
            if worker is None or worker.job is None:
                continue
            result = self._result(worker)
            if result is None:
                continue
            done[worker.index] = result
            worker.job = None
            if not worker.process.is_alive() or result.error == OUT_OF_MEMORY:
                worker.stop(kill=True)
                self._slots[slot] = None

    def _result(self, worker: _Worker) -> ParseResult | None:
        """The worker's result, an error if it died or ran out of time, or None (still going)."""
        assert worker.job is not None
        elapsed = time.monotonic() - worker.started
        try:
            if worker.conn.poll():
                result: ParseResult = worker.conn.recv()
                return result
        except (EOFError, OSError):
            pass
        else:
            if worker.process.is_alive():
                if elapsed < self.limits.timeout_s:
                    return None
                worker.stop(kill=True)
                return ParseResult(worker.job, error=self._late(), seconds=elapsed)
        worker.process.join(_STOP_GRACE_S)
        return ParseResult(worker.job, error=self._died(worker.process.exitcode), seconds=elapsed)

    def _late(self) -> str:
        return (
            f"took longer than {self.limits.timeout_s:g} s to parse "
            "(ingest.parse_timeout_s); the parser was stopped"
        )

    def _died(self, exitcode: int | None) -> str:
        if exitcode is not None and exitcode < 0:
            number = -exitcode
            if number == signal.SIGXCPU:
                return self._late()
            cause = signal.Signals(number).name if number in signal.valid_signals() else number
        else:
            cause = f"exit code {exitcode}"
        return (
            f"the parser process died ({cause}): the file needs more memory than "
            f"ingest.parse_memory_bytes={self.limits.memory_bytes} or crashes the parser"
        )
