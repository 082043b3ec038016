"""What a chunk's heading path is worth to retrieval: the same BEIR set indexed three ways.

    .venv/bin/python bench/chunk_context.py [evals/datasets/beir/sqlite-docs ...] [--json]

Each corpus entry is one chunk whose text is its body and whose heading is its title (on
sqlite-docs: the page title and heading path, as ingestion gives a chunk). In one run, each
set is indexed with the default settings:

- ``none``: no heading at all; the body alone is embedded and keyword-indexed.
- ``keyword``: the heading is keyword-indexed beside the body, the body alone is embedded
  (ingestion before chunks carried their context).
- ``both``: the heading also leads the embedded text (``app.retrieval.passage``), as now.

Prints nDCG@10, Recall@10 and chunk-level hit@1 / hit@5 (a relevant chunk first / in the top
five) for BM25, dense and hybrid. Figures only: the exit code is 0 unless something broke.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.evals.beir import BeirDataset, load_beir  # noqa: E402
from app.evals.index import EvalIndex, corpus_ids  # noqa: E402
from app.evals.ranking_metrics import Judge  # noqa: E402
from app.ingest.ids import content_hash, stable_id  # noqa: E402
from app.resources import build_resources  # noqa: E402
from app.retrieval.passage import indexed_text  # noqa: E402
from app.retrieval.types import Chunk, DocumentRecord, SearchFilter  # noqa: E402
from app.settings import load_settings  # noqa: E402

VARIANTS = ("none", "keyword", "both")
MODES = ("bm25", "dense", "hybrid")


def _index(data: BeirDataset, variant: str, folder: Path) -> EvalIndex:
    settings = load_settings(None).model_copy(update={"data_dir": folder})
    resources = build_resources(settings)
    tenant = f"ctx-{uuid.uuid4().hex[:8]}"
    items = list(data.corpus.items())
    for start in range(0, len(items), 256):
        chunks = []
        for cid, doc in items[start : start + 256]:
            heading = "" if variant == "none" else doc.title
            doc_id = stable_id(tenant, cid)
            digest = content_hash(doc.text)
            chunks.append(
                Chunk(
                    chunk_id=stable_id(doc_id, digest),
                    doc_id=doc_id,
                    tenant_id=tenant,
                    source=cid,
                    text=doc.text,
                    span=(0, len(doc.text)),
                    content_hash=digest,
                    heading=heading,
                )
            )
        texts = [indexed_text(c) if variant == "both" else c.text for c in chunks]
        vectors = resources.embedder.embed_documents(texts)
        for i, chunk in enumerate(chunks):
            record = DocumentRecord(
                tenant_id=tenant,
                doc_id=chunk.doc_id,
                source=chunk.source,
                content_hash=chunk.content_hash,
                embed_model=resources.embedder.model_name,
                chunk_ids=(chunk.chunk_id,),
            )
            resources.writer.replace_document(record, [chunk], vectors[i : i + 1])
    resources.writer.flush()
    return EvalIndex(resources, SearchFilter(tenant_id=tenant), len(items), 0.0)


async def _rankings(index: EvalIndex, data: BeirDataset) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {mode: {} for mode in MODES}
    for qid in data.judged:
        query = data.queries[qid]
        out["bm25"][qid] = corpus_ids(index.keyword(query, 10))
        out["dense"][qid] = corpus_ids(index.dense(query, 10))
        out["hybrid"][qid] = corpus_ids(await index.hybrid(query, 10))
    return out


def measure(data: BeirDataset) -> dict[str, Any]:
    """Score every variant and mode on one set."""
    qrels = {qid: data.qrels[qid] for qid in data.judged}
    judge = Judge(qrels)
    result: dict[str, Any] = {}
    for variant in VARIANTS:
        with tempfile.TemporaryDirectory(prefix="ragent-ctx-") as tmp:
            index = _index(data, variant, Path(tmp))
            rankings = asyncio.run(_rankings(index, data))
            index.resources.writer.close()  # type: ignore[attr-defined]
        result[variant] = {}
        for mode in MODES:
            mean = judge.scores(rankings[mode]).mean
            hit = {
                k: sum(
                    any(qrels[q].get(d, 0) > 0 for d in ranking[:k])
                    for q, ranking in rankings[mode].items()
                )
                / len(qrels)
                for k in (1, 5)
            }
            result[variant][mode] = {
                "ndcg@10": round(mean["ndcg@10"], 3),
                "recall@10": round(mean["recall@10"], 3),
                "hit@1": round(hit[1], 3),
                "hit@5": round(hit[5], 3),
            }
    return result


def main() -> None:
    """Measure each set given (default: sqlite-docs) and print a table or JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    folders = args.sets or [REPO / "evals" / "datasets" / "beir" / "sqlite-docs"]
    report = {}
    for folder in folders:
        data = load_beir(folder)
        report[data.name] = measure(data)
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    for name, variants in report.items():
        sys.stdout.write(f"\n{name}: heading -> ndcg@10 / recall@10 / hit@1 / hit@5\n")
        sys.stdout.write(f"{'heading':<10}" + "".join(f"{m:>31}" for m in MODES) + "\n")
        for variant, modes in variants.items():
            cells = "".join(
                "{:>31}".format(
                    " / ".join(
                        f"{modes[m][x]:.3f}" for x in ("ndcg@10", "recall@10", "hit@1", "hit@5")
                    )
                )
                for m in MODES
            )
            sys.stdout.write(f"{variant:<10}{cells}\n")


if __name__ == "__main__":
    main()
