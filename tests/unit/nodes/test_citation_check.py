"""A RAG answer's citations are checked against the sources when llm.check_citations says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage

from app import prompts
from app.context import Context
from app.ingest.pipeline import IngestOptions
from app.resources import Resources, use_resources
from tests.ingesting import small_ingestor
from tests.tooling import run_turn, with_model

WAL = (
    "SQLite does a checkpoint automatically when the WAL file reaches a threshold size "
    "of 1000 pages. "
)
CTX = Context(tenant_id="t1", user_id="u1")
UNCITED = "SQLite runs a checkpoint when the WAL file reaches 1000 pages."
INVENTED = "The WAL was invented by pirates sailing around Cape Horn in 1492."


@pytest.fixture
def indexed(resources: Resources, tmp_path: Path) -> Resources:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "wal.md").write_text("# WAL\n\n" + WAL * 3)
    options = IngestOptions(tenant_id="t1", workers=0, progress=False)
    small_ingestor(resources).ingest([docs], options)
    return resources


@pytest.mark.parametrize("mode", ["on", "off"])
async def test_an_uncited_claim_gets_its_source(indexed: Resources, mode: str) -> None:
    res, _ = with_model(indexed, [AIMessage(f"{UNCITED} {INVENTED}")])
    res.settings.llm.check_citations = mode  # type: ignore[assignment]
    with use_resources(res):
        answer = await run_turn("When does SQLite run a checkpoint?", context=CTX)
    if mode == "off":
        assert answer.answer == f"{UNCITED} {INVENTED}" and answer.citations == []
        return
    assert answer.answer == f"{UNCITED} [S1]"  # cited; the invented claim dropped
    assert [c["label"] for c in answer.citations] == ["S1"]


async def test_nothing_supported_is_i_dont_know(indexed: Resources) -> None:
    res, _ = with_model(indexed, [AIMessage(INVENTED)])
    res.settings.llm.check_citations = "on"
    with use_resources(res):
        answer = await run_turn("When does SQLite run a checkpoint?", context=CTX)
    assert answer.answer == prompts.DONT_KNOW and answer.refused


def test_auto_checks_citations_of_local_models_only() -> None:
    from app.config.llm import LLMSettings
    from app.nodes.guard import cites_by_support

    assert not cites_by_support(LLMSettings(), Context())
    local = LLMSettings(local_gguf=Path("/m.gguf"))
    assert cites_by_support(local, Context())
    assert not cites_by_support(local, Context(response_format={"type": "json_object"}))
