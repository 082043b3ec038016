"""Files to ingest: where uploads and fetched documents are kept, under which source name.

A file is kept in ``<data_dir>/uploads/<digest of tenant and source>/``, so the same
source sent again lands on the same path: the pipeline sees an unchanged file (and
skips it) or a changed one (and replaces its chunks).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from app.settings import Settings

__all__ = ["Upload", "keep", "safe_name", "upload_dir"]


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


def upload_dir(settings: Settings, tenant: str, source: str) -> Path:
    """The folder of one source of one (namespaced) tenant."""
    digest = hashlib.sha256(f"{tenant}\x1f{source}".encode()).hexdigest()[:32]
    return settings.data_dir / "uploads" / digest


def keep(settings: Settings, tenant: str, source: str, name: str, data: bytes) -> Upload:
    """Write ``data`` as the one file of ``source`` (blocking: call it in a thread)."""
    folder = upload_dir(settings, tenant, source)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / safe_name(name)
    for old in folder.iterdir():  # one file per source: a new type replaces the old one
        if old != path:
            old.unlink()
    path.write_bytes(data)
    return Upload(path, source)
