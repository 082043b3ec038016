"""LangChain's stock documentation-QA path for bench/doc_qa.py: load, split, FAISS top 5.

Runs in the peers' virtual environment (bench/requirements-retrieval.txt) and never imports
ragent. Two steps, each reading a JSON spec and printing one JSON object on stdout:

    python bench/doc_qa_langchain.py split SPEC.json    # {"pages": DIR} -> the chunks
    python bench/doc_qa_langchain.py search SPEC.json   # chunks + vectors -> top-5 per query

``split`` loads every page with ``BSHTMLLoader`` (BeautifulSoup, its default lxml parser and
text extraction) and cuts it with ``RecursiveCharacterTextSplitter(chunk_size=1000,
chunk_overlap=200)``, as LangChain's RAG tutorial does. ``search`` builds ``FAISS`` from the
vectors bench/doc_qa.py computed with ragent's embedder (the same model for both systems) and
asks ``as_retriever(search_kwargs={"k": 5})`` each question; query vectors are looked up by
text, so nothing is embedded here.
"""

from __future__ import annotations

import json
import sys
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200


def split(spec: dict[str, Any]) -> dict[str, Any]:
    """Load and split every page; chunks in page order."""
    from langchain_community.document_loaders import BSHTMLLoader
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
    chunks: list[dict[str, str]] = []
    for page in sorted(Path(spec["pages"]).glob("*.html")):
        documents = BSHTMLLoader(str(page), open_encoding="utf-8").load()
        for doc in splitter.split_documents(documents):
            chunks.append({"source": page.name, "text": doc.page_content})
    versions = {
        name: version(name)
        for name in ("langchain-community", "langchain-text-splitters", "beautifulsoup4", "lxml")
    }
    return {"chunks": chunks, "versions": versions}


def search(spec: dict[str, Any]) -> dict[str, Any]:
    """FAISS over the given vectors; the indices of each query's top ``k`` chunks."""
    from langchain_community.vectorstores import FAISS
    from langchain_core.embeddings import Embeddings

    texts = [c["text"] for c in json.loads(Path(spec["chunks"]).read_text())["chunks"]]
    vectors = np.load(spec["vectors"]).tolist()
    queries: list[str] = spec["queries"]
    lookup = dict(zip(queries, np.load(spec["query_vectors"]).tolist(), strict=True))

    class Cached(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            raise AssertionError("chunks are embedded by bench/doc_qa.py")

        def embed_query(self, text: str) -> list[float]:
            return lookup[text]

    metadatas = [{"i": i} for i in range(len(texts))]
    store = FAISS.from_embeddings(
        list(zip(texts, vectors, strict=True)), Cached(), metadatas=metadatas
    )
    retriever = store.as_retriever(search_kwargs={"k": spec["k"]})
    ranked = [[d.metadata["i"] for d in retriever.invoke(q)] for q in queries]
    return {"ranked": ranked, "versions": {"faiss-cpu": version("faiss-cpu")}}


def main(argv: list[str]) -> int:
    warnings.filterwarnings("ignore")
    step, path = argv
    spec = json.loads(Path(path).read_text())
    out = split(spec) if step == "split" else search(spec)
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
