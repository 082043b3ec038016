"""Finding the files to ingest, and grouping the parse results into batches.

Folders are walked without trusting symbolic links: a link (to a file or a folder) is
followed only when its target resolves inside one of the folders given to the run, and
each real file and folder is visited once, so a link loop ends. A link that leaves those
folders, is broken or loops is not followed and is reported (:class:`RefusedLink`). A path
given explicitly is taken as given, even if it is a link: the user named it. A file or
folder whose name is not UTF-8 is not ingested either, and is reported with its name escaped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.ingest.worker import ParseResult

__all__ = ["Discovery", "RefusedLink", "batches", "discover", "shown", "utf8_name", "within"]

_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class RefusedLink:
    """A symbolic link inside a walked folder that was not followed, and why."""

    path: Path
    reason: str


@dataclass(slots=True)
class Discovery:
    """The files a run ingests, and the links it refused on the way."""

    files: list[tuple[Path, bool]] = field(default_factory=list)
    """``(file, explicit)`` in walk order; explicit: given as a path, not found in a folder."""
    refused: list[RefusedLink] = field(default_factory=list)
    roots: list[Path] = field(default_factory=list)
    """The given folders, resolved: the only places a link may lead."""


def utf8_name(name: str) -> bool:
    """Whether a file name was valid UTF-8 (the OS's bytes that are not come as surrogates)."""
    return _SURROGATE.search(name) is None


def shown(path: Path | str) -> str:
    """``path`` as text that can be printed and stored: bytes that are not UTF-8 escaped."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def within(path: Path, roots: Iterable[Path]) -> bool:
    """Whether ``path`` is one of ``roots`` or lies under one (compared as given, no I/O)."""
    return any(path == root or root in path.parents for root in roots)


def _real(path: Path) -> Path | None:
    """The fully resolved target of ``path``, or None if it is broken or loops."""
    real = Path(os.path.realpath(path))
    try:
        os.stat(real)
    except (OSError, ValueError):
        return None
    return real


def discover(paths: Sequence[Path]) -> Discovery:
    """List the files of ``paths``: files as given, folders walked in sorted order.

    Hidden entries (names starting with ``.``) inside folders are skipped. A symbolic link
    found in a folder is followed only if its target lies inside one of the given folders
    (resolved); a real file reached twice (through links) is listed once, under its own
    path when the walk meets it there, and a real folder is walked once.

    Raises:
        FileNotFoundError: A given path does not exist (checked before walking any).
    """
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"no such file or directory: {path}")
    found = Discovery(roots=[path.resolve() for path in paths if path.is_dir()])
    walked: set[Path] = set()
    listed: dict[Path, int] = {}  # real file -> index in found.files
    linked: set[int] = set()  # indexes of files listed under a link's path

    def add(path: Path, real: Path, explicit: bool, via_link: bool) -> None:
        index = listed.get(real)
        if index is None:
            listed[real] = len(found.files)
            found.files.append((path, explicit))
            if via_link:
                linked.add(len(found.files) - 1)
        elif index in linked and not via_link:  # prefer the file's own path to a link's
            link = found.files[index][0]
            found.files[index] = (path, explicit or found.files[index][1])
            linked.discard(index)
            found.refused.append(RefusedLink(link, f"symlink to a file already listed: {path}"))
        elif via_link:
            found.refused.append(
                RefusedLink(path, f"symlink to a file already listed: {found.files[index][0]}")
            )

    def walk(folder: Path, via_link: bool) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = folder / entry.name
            if not utf8_name(entry.name):  # no source, id or report could hold the name
                found.refused.append(RefusedLink(Path(shown(path)), "a name that is not UTF-8"))
                continue
            link = entry.is_symlink() or via_link
            if entry.is_symlink():
                real = _real(path)
                if real is None:
                    found.refused.append(RefusedLink(path, "broken symlink or symlink loop"))
                    continue
                if not within(real, found.roots):
                    found.refused.append(
                        RefusedLink(path, f"symlink to {real}, outside the ingested folders")
                    )
                    continue
            else:
                real = Path(os.path.realpath(path))
            if real.is_dir():
                if entry.is_symlink():  # after the real folders, so that they keep their paths
                    pending.append((path, real))
                elif real not in walked:
                    walked.add(real)
                    walk(path, link)
            elif real.is_file():
                add(path, real, explicit=False, via_link=link)

    pending: list[tuple[Path, Path]] = []  # folder links met, with their targets
    for path in paths:
        if path.is_dir():
            real = path.resolve()
            if real not in walked:
                walked.add(real)
                walk(path, via_link=False)
        else:
            add(path, path.resolve(), explicit=True, via_link=False)
    while pending:
        path, real = pending.pop(0)
        if real in walked:
            found.refused.append(RefusedLink(path, f"symlink to a folder already walked: {real}"))
        else:
            walked.add(real)
            walk(path, via_link=True)
    return found


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
