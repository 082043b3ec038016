"""LangSmith runs of a real agent turn reach a LangSmith server with no personal data or text.

The real ``langsmith`` client, as LangChain's tracer picks it up once the process is set
up (``app.observability.setup.configure``), sends to a recording LangSmith server on
loopback that asks for zstd-compressed traces, as LangSmith's own does. Every request
body is decoded and searched for the planted e-mail address and phone number, the
document's own sentence, the questions and the answers; the run tree (names, parents,
timings) and the spans' allowlisted attributes must still arrive.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.tracers.langchain import wait_for_all_tracers
from langgraph.checkpoint.memory import InMemorySaver

from app.context import Context
from app.graphs.agent import compile_agent
from app.ingest.pipeline import IngestOptions
from app.observability.setup import configure
from app.resources import Resources
from app.settings import load_settings
from app.turns import ask
from tests.ingesting import small_ingestor
from tests.langsmith_server import Recorder, accept_all, langsmith_tracing

pytestmark = pytest.mark.integration

EMAIL, PHONE = "mallory.quokka@example.net", "+1 415 555 0142"
CANARY = "zanzibarquokka"
SENTENCE = f"The {CANARY} cluster checkpoints its WAL every 1000 pages."
DOC = f"{SENTENCE} Contact {EMAIL} or call {PHONE} for access."
QUESTION = f"I am {EMAIL}, phone {PHONE}. How often does the {CANARY} cluster checkpoint?"
ARITHMETIC = f"{EMAIL} here: what is 12*(7+3)?"
PLANTED = (EMAIL, PHONE, "mallory", "555 0142", CANARY, "checkpoints its WAL", "12*(7+3)")


@pytest.fixture
def langsmith(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    with langsmith_tracing(accept_all(), monkeypatch) as recorder:
        yield recorder


@pytest.fixture
def corpus(resources: Resources, tmp_path: Path) -> Resources:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cluster.txt").write_text(DOC)
    small_ingestor(resources).ingest(
        [docs], IngestOptions(tenant_id="acme", workers=0, progress=False)
    )
    return resources


async def _two_turns(corpus: Resources) -> list[str]:
    """Set the process up as the CLI does, then ask a RAG question and a tool question."""
    configure(load_settings())
    agent = compile_agent(InMemorySaver())
    context = Context(tenant_id="acme", user_id=EMAIL)
    answers = []
    for text in (QUESTION, ARITHMETIC):
        answer = await ask(agent, text, context=context, thread_id="t1", max_chars=8000)
        answers.append(answer.answer)
    assert SENTENCE in answers[0] and "120" in answers[1]
    wait_for_all_tracers()
    return answers


async def test_runs_carry_no_personal_data_no_document_and_no_answer_text(
    corpus: Resources, langsmith: Recorder
) -> None:
    answers = await _two_turns(corpus)

    assert any(r.content_type.startswith("multipart/form-data") for r in langsmith.requests)
    sent = langsmith.text()
    for planted in (*PLANTED, QUESTION, ARITHMETIC, *answers):
        assert planted not in sent, planted
    runs = langsmith.runs()
    names = [run.get("name") for run in runs.values()]
    assert names.count("ragent") == 2  # one trace per turn
    assert {"guard_input", "retrieve", "respond", "execute_tools", "calculator"} <= set(names)
    for run in runs.values():
        assert run["start_time"] and run["end_time"] and run["trace_id"] and run["dotted_order"]
        if run["name"] != "ragent":
            assert run["parent_run_id"] in runs
        assert run.get("inputs") in (None, {})
        metadata = run.get("extra", {}).get("metadata", {})
        assert metadata.get("thread_id", "thread:").startswith("thread:")
    roots = [run for run in runs.values() if run["name"] == "ragent"]
    assert [root["outputs"]["route"] for root in roots] == ["rag", "direct"]
    assert roots[0]["outputs"]["hits"] == 1
    by_name = {run["name"]: run for run in runs.values()}
    assert by_name["retrieve"]["outputs"] == {"hits": 1}
    assert by_name["calculator"]["outputs"] == {"outcome": "ok"}
    llm = [run for run in runs.values() if run["run_type"] == "llm"]
    assert llm and all(run["outputs"]["tokens_out"] > 0 for run in llm)
    assert by_name["respond"]["extra"]["metadata"]["langgraph_node"] == "respond"


async def test_full_content_is_an_explicit_opt_in(
    corpus: Resources, langsmith: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGENT_OBSERVABILITY_LANGSMITH_CONTENT", "full")
    await _two_turns(corpus)
    sent = langsmith.text()
    assert CANARY in sent and "12*(7+3)" in sent  # the recorder does see content when sent
