"""Documentation QA: ragent's ingestion, retrieval and answers vs LangChain's stock path.

Run from the repository root (see bench/README.md):

    .venv/bin/python bench/doc_qa.py [--deb FILE] [--json]

In one run, on the 44 HTML pages of the SQLite 3.40.1 documentation that the sqlite-docs dev
set is cut from (Debian's pinned ``sqlite3-doc`` package, fetched and checked as
scripts/sqlite_docs_set.py does) and its 54 hand-written questions:

- **ragent**: the pages themselves go through ``ragent ingest``'s pipeline (its HTML parsing,
  chunking and the default embedded engines) into a temporary data folder. Retrieval: the
  top 5 of BM25 alone, dense alone and hybrid. Answers: each question through the compiled
  agent (:func:`app.turns.ask`, as ``ragent eval answers`` runs it, with the configured chat
  model, the offline answerer by default), hybrid and dense; its citations in the order the
  answer gives them.
- **LangChain's stock path** (bench/doc_qa_langchain.py, in the peers' venv):
  ``BSHTMLLoader``, ``RecursiveCharacterTextSplitter(1000, 200)``, ``FAISS`` and
  ``as_retriever(k=5)``; its chunks embedded with ragent's embedder (the same model and
  vectors as ragent's). Its "stuff" QA chain puts every retrieved chunk into the prompt and
  cites them all, in rank order, and no LLM runs here, so its cited-source hit@k is its
  retrieval hit@k.

A chunk is a **hit** for a question when it holds text of a gold section: at least
``RUN`` (12) consecutive words of one of the section's passages in corpus.jsonl (words:
``\\w+`` runs, lower-cased, so markup and spacing do not matter). A passage shorter than
that is left out (two are: "CURRENT ROW)" would match most of the window-functions page);
every question keeps longer ones. The same rule for both systems. Retrieval hit@k: a hit among the
first k chunks. Cited-source hit@1: the first cited chunk is a hit; hit@5: one of the first
five cited is; a refusal (no citation) is a miss. Figures only: the exit code is 0 unless
something broke (2).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from corpus import default_cache
from ingest import BenchError, child_env, log, run_child

REPO = Path(__file__).resolve().parents[1]
SET = REPO / "evals" / "datasets" / "beir" / "sqlite-docs"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import sqlite_docs_set  # noqa: E402

RUN = 12
"""Consecutive words of a gold passage that make a chunk a hit."""
TOP = 5
_WORD = re.compile(r"\w+")
Shingles = set[tuple[str, ...]]


def words(text: str) -> list[str]:
    """Lower-cased ``\\w+`` runs: what the hit rule compares."""
    return _WORD.findall(text.lower())


def _shingles(tokens: list[str], size: int) -> Shingles:
    return {tuple(tokens[i : i + size]) for i in range(len(tokens) - size + 1)}


def gold_runs(folder: Path = SET) -> dict[str, Shingles]:
    """Per question: every run of ``RUN`` words of its gold passages."""
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").read_text().splitlines()]
    out: dict[str, Shingles] = {}
    for line in (folder / "questions.jsonl").read_text().splitlines():
        question = json.loads(line)
        runs: Shingles = set()
        for row in corpus:
            section = row["_id"].rsplit("#", 1)[0]
            if section in question["gold"]:
                runs |= _shingles(words(row["text"]), RUN)
        if not runs:
            raise BenchError(f"{question['_id']}: no gold passage of {RUN} words or more")
        out[question["_id"]] = runs
    return out


def is_hit(text: str, gold: Shingles) -> bool:
    """Whether ``text`` holds a run of a gold passage (see the module's docstring)."""
    return not gold.isdisjoint(_shingles(words(text), RUN))


def hits_at(flags: list[list[bool]], k: int) -> float:
    """The share of questions with a hit among their first ``k`` chunks."""
    return round(sum(any(f[:k]) for f in flags) / len(flags), 3)


def fetch_pages(deb: Path | None, work: Path) -> Path:
    """Unpack the pinned package's pages of the dev set into ``work/pages``."""
    deb = deb or sqlite_docs_set._fetch(work)
    digest = hashlib.sha256(deb.read_bytes()).hexdigest()
    if digest != sqlite_docs_set.SHA256:
        raise BenchError(f"{deb}: sha256 {digest}, expected {sqlite_docs_set.SHA256}")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "root")], check=True)
    pages = work / "pages"
    pages.mkdir()
    for page in sqlite_docs_set.PAGES:
        shutil.copy(work / "root" / sqlite_docs_set.DOC_DIR / f"{page}.html", pages)
    return pages


async def run_ragent(pages: Path, data_dir: Path, questions: dict[str, str]) -> dict[str, Any]:
    """Ingest the pages, then retrieve and answer every question; chunk texts per system."""
    from app.context import Context
    from app.conversations import thread_config
    from app.graphs.agent import compile_agent
    from app.ingest.factory import build_ingestor
    from app.ingest.pipeline import IngestOptions
    from app.memory.checkpoint import open_checkpointer
    from app.memory.store import open_store
    from app.resources import build_resources, use_resources
    from app.retrieval.types import SearchFilter
    from app.settings import load_settings
    from app.turns import ask, new_thread_id

    for key in [k for k in os.environ if k.startswith("RAGENT_")]:
        del os.environ[key]
    os.environ["RAGENT_DATA_DIR"] = str(data_dir)
    settings = load_settings()
    resources = build_resources(settings)
    tenant = settings.tenant_id
    options = IngestOptions(tenant_id=tenant, workers=settings.ingest.workers, progress=False)
    report = build_ingestor(resources).ingest([pages], options).as_dict()
    log(f"ragent: {report['documents']} pages, {report['chunks']} chunks")
    flt = SearchFilter(tenant)
    retriever = resources.retriever
    retrieved: dict[str, dict[str, list[str]]] = {"bm25": {}, "dense": {}, "hybrid": {}}
    for qid, text in questions.items():
        vector = resources.embedder.embed_query(text)
        kinds = {
            "bm25": retriever.keywords.search(text, flt, TOP),
            "dense": retriever.vectors.search(vector, flt, TOP),
            "hybrid": await retriever.search(text, flt, top_n=TOP),
        }
        for mode, hits in kinds.items():
            retrieved[mode][qid] = [hit.chunk.text for hit in hits]
    cited: dict[str, dict[str, list[str]]] = {"hybrid": {}, "dense": {}}
    with use_resources(resources):
        async with (
            open_checkpointer(settings) as saver,
            open_store(settings, resources.embedder) as store,
        ):
            agent = compile_agent(saver, store)
            for mode in cited:
                ctx = Context(tenant_id=tenant, user_id="bench", hybrid=mode == "hybrid")
                for qid, text in questions.items():
                    thread = new_thread_id()
                    limit = settings.limits.max_input_chars
                    answer = await ask(agent, text, context=ctx, thread_id=thread, max_chars=limit)
                    state = await agent.aget_state(thread_config(ctx, thread))
                    by_id = {s["chunk_id"]: s["text"] for s in state.values.get("sources", [])}
                    cited[mode][qid] = [by_id[c["chunk_id"]] for c in answer.citations]
    return {
        "chunks": report["chunks"],
        "retrieved": retrieved,
        "cited": cited,
        "embed": (resources.embedder.embed_documents, resources.embedder.embed_query),
    }


def run_langchain(
    args: argparse.Namespace, pages: Path, work: Path, questions: dict[str, str], embed: Any
) -> dict[str, Any]:
    """Split in the peers' venv, embed here with ragent's embedder, search with FAISS there."""
    from retrieval import peer_python

    python = peer_python(args)
    env = child_env(args.threads, DO_NOT_TRACK="1")
    script = str(REPO / "bench" / "doc_qa_langchain.py")

    def child(step: str, spec: dict[str, Any]) -> dict[str, Any]:
        path = work / f"{step}.json"
        path.write_text(json.dumps(spec))
        proc = run_child([str(python), script, step, str(path)], env=env, cwd=work)
        out = proc.json()
        if proc.returncode != 0 or out is None:
            raise BenchError(f"LangChain {step} exited {proc.returncode}:\n{proc.tail()}")
        return out

    split = child("split", {"pages": str(pages)})
    (work / "chunks.json").write_text(json.dumps(split))
    texts = [c["text"] for c in split["chunks"]]
    log(f"LangChain: {len(texts)} chunks; embedding them")
    embed_documents, embed_query = embed
    np.save(work / "chunks.npy", np.asarray(embed_documents(texts), dtype=np.float32))
    order = list(questions)
    vectors = np.asarray([embed_query(questions[q]) for q in order], dtype=np.float32)
    np.save(work / "queries.npy", vectors)
    found = child(
        "search",
        {
            "chunks": str(work / "chunks.json"),
            "vectors": str(work / "chunks.npy"),
            "queries": [questions[q] for q in order],
            "query_vectors": str(work / "queries.npy"),
            "k": TOP,
        },
    )
    retrieved = {
        q: [texts[i] for i in ranked] for q, ranked in zip(order, found["ranked"], strict=True)
    }
    return {
        "chunks": len(texts),
        "retrieved": retrieved,
        "versions": {**split["versions"], **found["versions"]},
    }


def score(texts: dict[str, list[str]], gold: dict[str, Shingles]) -> dict:
    """hit@1 / hit@5 of ranked or cited chunk texts, and the questions missed at 5."""
    flags = {q: [is_hit(t, gold[q]) for t in texts[q][:TOP]] for q in gold}
    rows = list(flags.values())
    return {
        "hit@1": hits_at(rows, 1),
        "hit@5": hits_at(rows, 5),
        "missed@1": sorted(q for q, f in flags.items() if not any(f[:1])),
        "missed@5": sorted(q for q, f in flags.items() if not any(f)),
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """The whole run: pages, both systems, scores."""
    lines = (SET / "questions.jsonl").read_text().splitlines()
    questions = {q["_id"]: q["text"] for q in map(json.loads, lines)}
    gold = gold_runs()
    with tempfile.TemporaryDirectory(prefix="ragent-docqa-") as tmp:
        work = Path(tmp)
        pages = fetch_pages(args.deb, work)
        log(f"{len(list(pages.iterdir()))} pages; ragent ingest, retrieval and answers")
        ragent = asyncio.run(run_ragent(pages, work / "data", questions))
        log("LangChain's stock path in the peers' venv")
        (work / "lc").mkdir()
        langchain = run_langchain(args, pages, work / "lc", questions, ragent["embed"])
    systems: dict[str, Any] = {}
    for mode in ("hybrid", "dense", "bm25"):
        entry = {"chunks": ragent["chunks"], "retrieval": score(ragent["retrieved"][mode], gold)}
        if mode in ragent["cited"]:
            cited = ragent["cited"][mode]
            entry["cited"] = score(cited, gold)
            entry["refusals"] = sum(not c for c in cited.values())
        systems[f"ragent {mode}"] = entry
    stock = score(langchain["retrieved"], gold)
    systems["LangChain stock"] = {
        "chunks": langchain["chunks"],
        "retrieval": stock,
        "cited": stock,
        "refusals": 0,
    }
    return {
        "questions": len(questions),
        "pages": len(sqlite_docs_set.PAGES),
        "hit_rule": f"a chunk holds {RUN} consecutive words of a gold passage",
        "langchain_cited": "the stuff chain cites every retrieved chunk in rank order: "
        "cited-source hit@k = retrieval hit@k",
        "langchain_versions": langchain["versions"],
        "systems": systems,
    }


def print_table(result: dict[str, Any]) -> None:
    """One Markdown table, then the questions each system misses at 5."""
    out = sys.stdout
    out.write(
        f"{result['questions']} questions over {result['pages']} pages of the SQLite docs; "
        f"hit: {result['hit_rule']}\n\n"
        "| system | chunks | retrieval hit@1 | retrieval hit@5 | cited hit@1 | cited hit@5 "
        "| refusals |\n|---|---|---|---|---|---|---|\n"
    )
    for name, s in result["systems"].items():
        cited = s.get("cited")
        cells = (
            [f"{cited['hit@1']:.3f}", f"{cited['hit@5']:.3f}", str(s["refusals"])]
            if cited
            else ["-", "-", "-"]
        )
        r = s["retrieval"]
        row = [name, str(s["chunks"]), f"{r['hit@1']:.3f}", f"{r['hit@5']:.3f}", *cells]
        out.write("| " + " | ".join(row) + " |\n")
    out.write(f"\nLangChain: {result['langchain_cited']}.\nmissed at 5 (retrieval / cited):\n")
    for name, s in result["systems"].items():
        cited = " ".join(s["cited"]["missed@5"]) if "cited" in s else "-"
        out.write(f"  {name}: {' '.join(s['retrieval']['missed@5']) or '-'} / {cited or '-'}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deb", type=Path, help="the sqlite3-doc .deb (default: apt-get it)")
    parser.add_argument("--cache", type=Path, default=default_cache() / "retrieval")
    parser.add_argument("--peer-python", help="LangChain's interpreter (default: the peers' venv)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    try:
        result = measure(args)
    except (BenchError, subprocess.CalledProcessError) as exc:
        log(f"error: {exc}")
        return 2
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
