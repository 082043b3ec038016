"""Uploads kept on disk piece by piece: the limit checked as they come, nothing half-written."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from app.server.ingestion.upload_checks import FileTooLarge, pieces
from app.server.ingestion.uploads import PIECE_BYTES, Author, keep_stream
from app.settings import Settings

AUTHOR = Author.of("acme/ann", [])


class _Part:
    def __init__(self, data: bytes) -> None:
        self.data = io.BytesIO(data)
        self.reads = 0

    async def read(self, size: int = -1) -> bytes:
        self.reads += 1
        return self.data.read(size)


def _files(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "uploads").rglob("*") if p.is_file())


async def test_a_file_is_written_piece_by_piece(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    data = b"x" * (2 * PIECE_BYTES + 5)
    part = _Part(data)
    kept = await keep_stream(
        settings, "acme", "a.txt", "a.txt", pieces(part, len(data)), author=AUTHOR
    )
    assert kept.path.read_bytes() == data and part.reads == 4  # 3 pieces and the end
    assert _files(tmp_path) == ["a.txt"]


async def test_a_file_past_the_limit_leaves_nothing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    part = _Part(b"x" * (3 * PIECE_BYTES))
    with pytest.raises(FileTooLarge, match=f"more than {2 * PIECE_BYTES} bytes"):
        await keep_stream(
            settings, "acme", "a.txt", "a.txt", pieces(part, 2 * PIECE_BYTES), author=AUTHOR
        )
    assert part.reads == 3  # stopped at the first piece past the limit
    assert _files(tmp_path) == []
