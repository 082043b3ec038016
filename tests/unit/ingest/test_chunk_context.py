"""Ingested chunks are embedded after their heading path, and keep their own text and spans."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.ingest.clean import clean_document
from app.ingest.loaders import load_document
from app.ingest.pipeline import IngestOptions
from app.resources import Resources
from app.retrieval.passage import indexed_text
from app.retrieval.types import SearchFilter
from tests.ingesting import small_ingestor

OPTS = IngestOptions(tenant_id="t1", workers=0, progress=False)
FLT = SearchFilter("t1")
PARAMETERS = (
    "FULL selects a full rewrite of the table into a new disk file, which can reclaim more "
    "space but takes much longer and holds an exclusive lock. FREEZE selects aggressive "
    "freezing of tuples, as if the freeze age settings were zero. VERBOSE prints a detailed "
    "activity report for each table. ANALYZE updates statistics used by the planner to "
    "choose the most efficient way to execute a query. DISABLE_PAGE_SKIPPING turns off "
    "every page-skipping behaviour, which is only useful when the contents of the "
    "visibility map are suspect, as after a hardware or software issue. SKIP_LOCKED "
    "specifies that the command should not wait for any conflicting locks to be released "
    "when beginning work on a relation. INDEX_CLEANUP normally skips index cleanup when "
    "very few dead tuples are in the table. PARALLEL performs index phases in parallel "
    "using the given number of background workers, each working on one index. "
)


def test_a_sections_chunks_are_found_by_what_their_headings_say(
    resources: Resources, tmp_path: Path
) -> None:
    page = tmp_path / "vacuum.md"
    page.write_text("# VACUUM\n\nGarbage-collect a database.\n\n## Parameters\n\n" + PARAMETERS)
    report = small_ingestor(resources).ingest([tmp_path], OPTS)
    assert report.documents == 1 and report.failed == []
    dense = resources.retriever.vectors.search(resources.embedder.embed_query("vacuum"), FLT, 10)
    section = [h for h in dense if h.chunk.heading == "VACUUM > Parameters"]
    assert len(section) >= 2 and all("VACUUM" not in h.chunk.text for h in section)
    # The chunk's vector is that of its heading path and text: "vacuum" finds it.
    query = resources.embedder.embed_query("vacuum")
    for hit in section:
        expected = resources.embedder.embed_documents([indexed_text(hit.chunk)])[0]
        assert hit.score > 0.1 and np.isclose(hit.score, float(query @ expected), atol=1e-4)
        # What is stored and cited is the chunk's own slice of the document.
        assert indexed_text(hit.chunk) == f"VACUUM > Parameters\n\n{hit.chunk.text}"
        assert resources.counter.count(indexed_text(hit.chunk)) <= 60
    (loaded,) = load_document(page, max_bytes=100_000)
    text = clean_document(loaded).text()
    assert all(text[slice(*h.chunk.span)] == h.chunk.text for h in section)
