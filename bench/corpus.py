"""Corpus for the ingestion benchmark, fetched from Debian packages into a cache folder.

- html: the PostgreSQL 15 manual (``postgresql-doc-15``, 1,169 pages);
- pdf: the R manuals (``r-doc-pdf``; ``fullrefman.pdf`` is a copy of ``refman.pdf`` and
  is left out);
- docx: PostgreSQL pages converted with pandoc (from Debian, run from the unpacked
  package, never installed). Those pages are left out of the html set, so no document
  appears twice.

Only the Debian package registry is reached, through ``apt-get``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "FORMATS",
    "Corpus",
    "CorpusError",
    "build_corpus",
    "default_cache",
]

FORMATS = ("html", "pdf", "docx")
PG_DOC = "postgresql-doc-15"
R_DOC = "r-doc-pdf"
# pandoc's binary needs liblua, and its data files (the docx reference document).
PANDOC = ("pandoc", "pandoc-data", "liblua5.3-0")
PG_HTML = Path("usr/share/doc/postgresql-doc-15/html")
R_PDF = Path("usr/share/R/doc/manual")
APT_LISTS = Path("/var/lib/apt/lists")

Log = Callable[[str], object]


class CorpusError(Exception):
    """The corpus could not be fetched or built."""


@dataclass
class Corpus:
    """A folder of documents, one subfolder per format."""

    root: Path
    files: dict[str, list[Path]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.files.values())

    def bytes(self) -> int:
        return sum(p.stat().st_size for v in self.files.values() for p in v)


def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ragent-bench"


def _run(cmd: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise CorpusError(f"{' '.join(cmd)}: exit {proc.returncode}: {' '.join(detail[-3:])}")
    return proc.stdout


def _apt_lists_present() -> bool:
    return any(APT_LISTS.glob("*_Packages*"))


def _apt_update(log: Log) -> None:
    log("apt lists are empty: running apt-get update")
    _run(["apt-get", "update", "-q"])


def _download(debs: Path, names: Iterable[str], log: Log) -> dict[str, Path]:
    """Download the named .deb files into ``debs`` (once) and return them by name."""
    debs.mkdir(parents=True, exist_ok=True)
    names = list(names)
    missing = [n for n in names if not list(debs.glob(f"{n}_*.deb"))]
    if missing:
        if not _apt_lists_present():
            _apt_update(log)
        log(f"apt-get download {' '.join(missing)}")
        try:
            _run(["apt-get", "download", *missing], cwd=debs)
        except CorpusError:
            # Stale lists name versions the mirror no longer has: refresh and retry once.
            _apt_update(log)
            _run(["apt-get", "download", *missing], cwd=debs)
    found: dict[str, Path] = {}
    for name in names:
        candidates = sorted(debs.glob(f"{name}_*.deb"))
        if not candidates:
            raise CorpusError(f"apt-get download {name} left no .deb in {debs}")
        found[name] = candidates[-1]
    return found


def _extract(deb: Path, dest: Path) -> Path:
    """Unpack ``deb`` into ``dest`` once (a marker file records a finished unpack)."""
    marker = dest / f".{deb.name}.done"
    if not marker.exists():
        dest.mkdir(parents=True, exist_ok=True)
        _run(["dpkg-deb", "-x", str(deb), str(dest)])
        marker.touch()
    return dest


def _fetch(cache: Path, names: Sequence[str], log: Log) -> Path:
    debs = _download(cache / "debs", names, log)
    root = cache / "pkg"
    for deb in debs.values():
        _extract(deb, root)
    return root


def _postgres_pages(cache: Path, log: Log) -> list[Path]:
    root = _fetch(cache, [PG_DOC], log)
    pages = sorted((root / PG_HTML).glob("*.html"))
    if not pages:
        raise CorpusError(f"no HTML pages under {root / PG_HTML}")
    return pages


def _r_pdfs(cache: Path, log: Log) -> list[Path]:
    """The R manuals, smallest first, one per distinct content."""
    root = _fetch(cache, [R_DOC], log)
    seen: set[str] = set()
    pdfs: list[Path] = []
    for path in sorted((root / R_PDF).glob("*.pdf"), key=lambda p: (p.stat().st_size, p.name)):
        if path.is_symlink() or not path.is_file():
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            pdfs.append(path)
    if not pdfs:
        raise CorpusError(f"no PDF files under {root / R_PDF}")
    return pdfs


def _pandoc(cache: Path, log: Log) -> tuple[Path, dict[str, str]]:
    """The unpacked pandoc binary and the environment it needs to run uninstalled."""
    root = _fetch(cache, PANDOC, log)
    binary = root / "usr/bin/pandoc"
    env = dict(os.environ)
    libs = str(root / "usr/lib/x86_64-linux-gnu")
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [libs, env.get("LD_LIBRARY_PATH")]))
    # Cabal's Paths module reads this variable: pandoc finds its data files unpacked.
    env["pandoc_datadir"] = str(root / "usr/share/pandoc")
    return binary, env


def _make_docx(cache: Path, pages: Sequence[Path], log: Log) -> list[Path]:
    out = cache / "docx"
    out.mkdir(parents=True, exist_ok=True)
    targets = [(page, out / f"{page.stem}.docx") for page in pages]
    todo = [(page, target) for page, target in targets if not _valid_docx(target)]
    if todo:
        binary, env = _pandoc(cache, log)
        log(f"pandoc: converting {len(todo)} PostgreSQL pages to DOCX")

        def convert(item: tuple[Path, Path]) -> None:
            page, target = item
            partial = target.with_suffix(".part")
            _run(
                [str(binary), "-f", "html", "-t", "docx", "-o", str(partial), str(page)],
                cwd=page.parent,  # relative image links resolve
                env=env,
            )
            partial.replace(target)

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            list(pool.map(convert, todo))
    return [target for _, target in targets]


def _valid_docx(path: Path) -> bool:
    return path.exists() and zipfile.is_zipfile(path)


def _spread(items: Sequence[Path], n: int) -> list[Path]:
    """``n`` items evenly spaced over ``items`` (all of them when ``n >= len``)."""
    if n >= len(items):
        return list(items)
    if n <= 0:
        return []
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def _quota(formats: Sequence[str], available: dict[str, int], subset: int | None) -> dict[str, int]:
    """How many documents of each format: the full corpus's mix scaled down to ``subset``.

    Every selected format that has documents gets at least one, so a quick run sees
    each loader; the rest is shared in proportion (largest remainder).
    """
    if subset is None:
        return {f: available[f] for f in formats}
    present = [f for f in formats if available[f] > 0]
    total = sum(available[f] for f in present)
    if subset >= total:
        return {f: available[f] for f in formats}
    quota = dict.fromkeys(formats, 0)
    for fmt in present[:subset]:
        quota[fmt] = 1
    left = subset - sum(quota.values())
    if left > 0:
        share = {
            f: left * (available[f] - quota[f]) / (total - sum(quota.values())) for f in present
        }
        for fmt in present:
            quota[fmt] += int(share[fmt])
        by_remainder = sorted(present, key=lambda f: share[f] - int(share[f]), reverse=True)
        for fmt in by_remainder[: subset - sum(quota.values())]:
            quota[fmt] += 1
    return {f: min(quota[f], available[f]) for f in formats}


def build_corpus(
    cache: Path,
    *,
    formats: Sequence[str] = FORMATS,
    subset: int | None = None,
    docx_pages: int = 100,
    log: Log = print,
) -> Corpus:
    """Fetch what ``formats`` need and lay out a corpus folder for this selection.

    With ``subset``, the full corpus's mix of formats is scaled down (at least one of
    each): PDFs smallest first, HTML and DOCX pages spread evenly over the manual.
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise CorpusError(f"unknown format(s): {', '.join(unknown)} (known: {', '.join(FORMATS)})")
    cache.mkdir(parents=True, exist_ok=True)
    pages = _postgres_pages(cache, log) if {"html", "docx"} & set(formats) else []
    # DOCX sources are every k-th page; the html set is the rest, so none is repeated.
    docx_sources = _spread(pages, docx_pages) if "docx" in formats else []
    chosen = set(docx_sources)
    html_pages = [p for p in pages if p not in chosen] if "html" in formats else []
    pdfs = _r_pdfs(cache, log) if "pdf" in formats else []

    available = {"html": len(html_pages), "pdf": len(pdfs), "docx": len(docx_sources)}
    quota = _quota(formats, available, subset)
    picked: dict[str, list[Path]] = {
        "html": _spread(html_pages, quota.get("html", 0)),
        "pdf": pdfs[: quota.get("pdf", 0)],
        "docx": _make_docx(cache, _spread(docx_sources, quota.get("docx", 0)), log),
    }

    name = "-".join(formats) + (f"-n{subset}" if subset is not None else "-all")
    root = cache / "corpus" / name
    if root.exists():
        shutil.rmtree(root)
    corpus = Corpus(root=root)
    for fmt in formats:
        folder = root / fmt
        folder.mkdir(parents=True)
        corpus.files[fmt] = []
        for src in picked[fmt]:
            dest = folder / src.name
            _link_or_copy(src, dest)
            corpus.files[fmt].append(dest)
    return corpus


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)
