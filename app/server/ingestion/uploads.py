"""Files to ingest: where uploads and fetched documents are kept, under which source name.

A file is kept in ``<data_dir>/uploads/<digest of tenant, author and source>/``, where the
author is the key's tenant and user together with the ACL groups the upload assigns. The
pipeline derives the document id from that path, so the same source sent again by the
same author lands on the same path: the pipeline sees an unchanged file (and skips it) or
a changed one (and replaces its chunks). Another user, or the same user with another ACL,
gets another folder and so another document: no upload can replace, relabel or delete a
document that someone else wrote or that carries other groups.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from app.settings import Settings

PIECE_BYTES = 1 << 20
"""Uploads are copied in pieces of this size: a process never holds a whole file."""

__all__ = [
    "PIECE_BYTES",
    "Author",
    "Upload",
    "keep",
    "keep_path",
    "keep_stream",
    "safe_name",
    "upload_dir",
]


@dataclass(frozen=True)
class Author:
    """Who writes a document over the API: the key's ``tenant/user`` and the ACL it assigns."""

    owner: str
    """``tenant/user`` of the API key (the key's own tenant, not the namespace)."""
    acl: tuple[str, ...]
    """The groups the document is readable by (empty: the whole tenant)."""

    @classmethod
    def of(cls, owner: str, acl: Sequence[str]) -> Author:
        """Return the author of ``owner`` assigning ``acl`` (order and repeats ignored)."""
        return cls(owner, tuple(sorted(set(acl))))


@dataclass(frozen=True)
class Upload:
    """A file to ingest: where it lies here, and the source name it is indexed under."""

    path: Path
    source: str


def safe_name(name: str, default: str = "document") -> str:
    """A file name without directories or unusual characters."""
    base = PurePosixPath(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or default
    return cleaned[:120]


def upload_dir(settings: Settings, tenant: str, source: str, *, author: Author) -> Path:
    """The folder of one source of one author in one (namespaced) tenant."""
    key = json.dumps([tenant, author.owner, list(author.acl), source])
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return settings.data_dir / "uploads" / digest


def keep_path(settings: Settings, tenant: str, source: str, name: str, *, author: Author) -> Path:
    """Where ``source`` is kept as ``name``: its folder made, files of other names removed.

    Blocking: call it in a thread.
    """
    folder = upload_dir(settings, tenant, source, author=author)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / safe_name(name)
    for old in folder.iterdir():  # one file per source: a new type replaces the old one
        if old != path:
            old.unlink()
    return path


def keep(
    settings: Settings, tenant: str, source: str, name: str, data: bytes, *, author: Author
) -> Upload:
    """Write ``data`` as the one file of ``source`` (blocking: call it in a thread)."""
    path = keep_path(settings, tenant, source, name, author=author)
    path.write_bytes(data)
    return Upload(path, source)


async def keep_stream(
    settings: Settings,
    tenant: str,
    source: str,
    name: str,
    pieces: AsyncIterable[bytes],
    *,
    author: Author,
) -> Upload:
    """Write ``pieces`` as the one file of ``source``, one piece in memory at a time.

    The bytes go to a hidden ``.part`` file renamed into place once complete; when
    ``pieces`` raises (a file over the size limit) or the task is cancelled, the part
    is removed and the error propagates.
    """
    path = await asyncio.to_thread(keep_path, settings, tenant, source, name, author=author)
    part = path.with_name(f".{path.name}.part")  # safe names never start with a dot
    try:
        with open(part, "wb") as out:  # noqa: ASYNC230 - each write runs in a thread
            async for piece in pieces:
                await asyncio.to_thread(out.write, piece)
        await asyncio.to_thread(part.replace, path)
    except BaseException:
        with contextlib.suppress(OSError):
            part.unlink()
        raise
    return Upload(path, source)
