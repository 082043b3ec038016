"""Workers that start together on a fresh data folder all open the keyword index."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from app.retrieval.embedded.keyword import TantivyKeywords


def _open(path: str, go: mp.synchronize.Event) -> None:
    go.wait()
    TantivyKeywords(Path(path))


def test_processes_opening_a_fresh_index_at_once_all_succeed(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")  # as uvicorn starts its workers
    for round_ in range(4):
        path = tmp_path / f"round{round_}" / "index.tantivy"
        go = ctx.Event()
        procs = [ctx.Process(target=_open, args=(str(path), go)) for _ in range(4)]
        for proc in procs:
            proc.start()
        go.set()
        for proc in procs:
            proc.join(60)
        assert [p.exitcode for p in procs] == [0, 0, 0, 0], f"round {round_}"
