"""The agent on a real local model: streaming, tool calls, approvals, citations, fallback."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from app.llm.local.process import LocalModelServer
from tests.e2e.conftest import LABEL, QUESTION, UNANSWERABLE, Corpus, check_citations
from tests.realmodel.conftest import MODEL, Served, serve, start_model

pytestmark = [pytest.mark.realmodel, pytest.mark.timeout(1200)]


def _audit(data_dir: Path) -> list[dict[str, Any]]:
    path = data_dir / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _ask(served: Served, question: str, **body: Any) -> dict[str, Any]:
    with served.http() as http:
        response = http.post(
            "/v1/chat/completions",
            json={"model": MODEL, "messages": [{"role": "user", "content": question}], **body},
        )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_streamed_rag_answer_cites_retrieved_chunks(served: Served) -> None:
    stream = served.client().chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": QUESTION}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finals] == ["stop"]
    extra = finals[0].choices[0].delta.model_extra or {}
    answer = extra.get("final_content") or text
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens > 100 and usage.completion_tokens > 0
    assert answer.strip()
    # Every [S#] of the answer names a retrieved chunk, and the answer cites at least one.
    check_citations(answer, extra["citations"], served.data_dir)


def test_a_question_the_sources_cannot_answer_is_refused(served: Served) -> None:
    payload = _ask(served, UNANSWERABLE)
    message = payload["choices"][0]["message"]
    assert message["refused"] is True, message["content"]
    assert message["citations"] == [] and not LABEL.search(message["content"])


def test_the_model_extracts_memories(
    llama: LocalModelServer, corpus: Corpus, tmp_path: Path
) -> None:
    served_iter = serve(llama, tmp_path, corpus, RAGENT_MEMORY_EXTRACTION="llm")
    served = next(served_iter)
    try:
        # No tools: a small model tends to save this as a note, which waits for approval.
        _ask(
            served,
            "My name is Ada Lovelace and I work on the compiler team. Hello!",
            tool_choice="none",
        )
        memories: list[dict[str, Any]] = []
        deadline = time.monotonic() + 300  # extraction runs after the reply is sent
        with served.http() as http:
            while not memories and time.monotonic() < deadline:
                memories = http.get("/v1/memories").json()["data"]
                time.sleep(2)
    finally:
        served_iter.close()
    # What a model extracts varies; that it stored the user's name does not.
    assert any("Ada" in m["text"] for m in memories), memories


_SETTING = (
    "I keep the SQLite database of a small note-taking application in my home folder on a"
    " laptop; it holds about two thousand notes, one process writes while several others"
    " read, and a nightly job copies the file to a backup disk before the laptop sleeps."
    " Sometimes the laptop loses power in the middle of a write, and I worry about what"
    " happens to the journal, the readers and the backup copy when it starts again."
)


def test_the_model_summarises_a_history_past_its_budget(
    llama: LocalModelServer, corpus: Corpus, tmp_path: Path
) -> None:
    # A 256-token history budget, folded past 70 % of it (179 tokens). The questions alone
    # pass that by the third turn, whatever the model answers: a run of short answers
    # ("I don't know") once left the history under it, and nothing was folded.
    served_iter = serve(
        llama,
        tmp_path,
        corpus,
        RAGENT_MEMORY_SUMMARIZER="model",
        RAGENT_LIMITS_HISTORY_TOKEN_BUDGET="256",
        RAGENT_LIMITS_KEEP_RECENT_MESSAGES="2",
    )
    served = next(served_iter)
    roles: list[str] = []
    try:
        conversation = None
        for question in (
            f"{_SETTING} What is a WAL file in SQLite?",
            f"{_SETTING} Does WAL mode work over a network filesystem?",
            f"{_SETTING} How often does SQLite run a checkpoint in WAL mode?",
        ):
            extra = {"conversation_id": conversation} if conversation else {}
            payload = _ask(served, question, tool_choice="none", **extra)
            conversation = payload["conversation_id"]
            roles += [call["role"] for call in payload["usage"].get("calls", [])]
        with served.http() as http:
            thread = http.get(f"/v1/threads/{conversation}").json()
    finally:
        served_iter.close()
    assert "summary" in roles, roles  # the model wrote it, as a call of that turn
    assert thread["summary"].strip()


@pytest.mark.parametrize(
    ("question", "tool", "expected"),
    [
        ("What is 17 * 23? Use the calculator.", "calculator", "391"),
        ("Convert 5 km to miles.", "convert_units", "3.1"),
    ],
    ids=["calculator", "convert_units"],
)
def test_a_tool_call_runs_natively_or_recovered(
    served: Served, question: str, tool: str, expected: str
) -> None:
    before = len(_audit(served.data_dir))
    # The request offers that one of ragent's tools (a 0.5B model among seven tools
    # sometimes saves a note instead).
    payload = _ask(served, question, tools=[{"type": "function", "function": {"name": tool}}])
    [choice] = payload["choices"]
    assert choice["finish_reason"] == "stop", choice
    records = _audit(served.data_dir)[before:]
    ran = [r for r in records if r["tool"] == tool]
    assert ran and ran[0]["outcome"] == "ok", records
    assert expected in choice["message"]["content"]


def test_a_write_tool_waits_for_approval_and_runs_once_approved(served: Served) -> None:
    payload = _ask(served, "Save a note: buy oat milk")
    [choice] = payload["choices"]
    assert choice["finish_reason"] == "tool_calls", choice
    [approval] = choice["message"]["approvals"]
    assert approval["tool"] == "create_note"
    with served.http() as http:
        nothing_yet = http.get("/v1/memories", params={"kind": "notes"}).json()["data"]
        assert nothing_yet == []
        done = http.post(
            f"/v1/threads/{payload['conversation_id']}/resume", json={"decision": "approve"}
        )
        assert done.status_code == 200, done.text
        assert done.json()["choices"][0]["finish_reason"] == "stop"
        notes = http.get("/v1/memories", params={"kind": "notes"}).json()["data"]
    assert len(notes) == 1 and "oat milk" in json.dumps(notes)


def test_the_chain_answers_offline_when_the_model_server_dies_mid_stream(
    gguf: Path, corpus: Corpus, tmp_path: Path
) -> None:
    model = start_model(gguf, tmp_path)
    try:
        served_iter = serve(model, tmp_path / "served", corpus, RAGENT_LLM_OFFLINE_FALLBACK="true")
        served = next(served_iter)
        try:
            stream = served.client().chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": QUESTION}], stream=True
            )
            chunks = []
            killed = False
            for chunk in stream:
                chunks.append(chunk)
                content = chunk.choices[0].delta.content if chunk.choices else None
                if content and not killed:
                    process = model._process  # noqa: SLF001 - the test kills the child
                    assert process is not None
                    os.kill(process.pid, signal.SIGKILL)
                    killed = True
            assert killed
            final = [c for c in chunks if c.choices and c.choices[0].finish_reason]
            assert [c.choices[0].finish_reason for c in final] == ["stop"]
            extra = final[0].choices[0].delta.model_extra or {}
            answer = extra.get("final_content") or "".join(
                c.choices[0].delta.content or "" for c in chunks if c.choices
            )
            assert "1000" in answer and LABEL.search(answer)  # the offline answer, cited
            # The supervisor brings the model server back.
            deadline = time.monotonic() + 120
            while model.restarts == 0 and time.monotonic() < deadline:
                time.sleep(1)
            assert model.restarts == 1 and model.healthy()
        finally:
            served_iter.close()
    finally:
        model.stop()
    assert not model.healthy()


def test_a_server_started_by_ragent_is_stopped_with_it(gguf: Path, tmp_path: Path) -> None:
    from app.config.llm import LLMSettings
    from app.llm.local.process import local_model
    from tests.servers import free_port

    cfg = LLMSettings(local_gguf=gguf, local_port=free_port(), model=MODEL)
    with local_model(cfg, tmp_path) as server:
        assert isinstance(server, LocalModelServer) and not server.adopted
        assert server.healthy()
    assert not server.healthy()
