"""Unit tests for the offline extractive chat model (app.llm.offline.answerer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import tool

from app.llm.offline.answerer import ExtractiveAnswerer, answer_from_sources, parse_sources
from app.llm.offline.tool_use import describe_tool_results
from app.prompts import DONT_KNOW, SOURCES_CLOSE, SOURCES_OPEN
from app.text.intents import find_arithmetic
from app.text.sentences import split_sentences
from app.text.terms import stem

SQLITE = """# Write-ahead logging

SQLite normally uses a rollback journal. In WAL mode, changes are appended to a
separate write-ahead log file instead of being written to the database directly.
Readers do not block writers and a writer does not block readers, so reading and
writing can proceed concurrently.

A checkpoint moves the content of the WAL file back into the database. By default
SQLite runs a checkpoint automatically when the WAL file reaches 1000 pages."""

POSTGRES = """PostgreSQL never overwrites a row in place. An UPDATE or DELETE leaves the old
row version behind as a dead tuple.

VACUUM reclaims the storage occupied by dead tuples and makes it available for
re-use within the same table. Plain VACUUM can run in parallel with normal reads and
writes, e.g. during business hours. VACUUM FULL rewrites the entire table into a new
file and returns the freed space to the operating system, but it takes an exclusive
lock.

The autovacuum daemon runs VACUUM and ANALYZE automatically."""


def sources_block(*sources: tuple[str, str]) -> str:
    body = "\n".join(f"[S{i}] {where}\n{text}" for i, (where, text) in enumerate(sources, 1))
    return f"{SOURCES_OPEN}\n{body}\n{SOURCES_CLOSE}"


def system(*sources: tuple[str, str]) -> SystemMessage:
    return SystemMessage(
        "You are ragent. Answer only from the sources.\n\n" + sources_block(*sources)
    )


DOCS = system(
    ("docs/sqlite.md", SQLITE),
    ("https://www.postgresql.org/docs/current/routine-vacuuming.html", POSTGRES),
)


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression."""
    return expression


@tool
def current_time(timezone: str = "UTC") -> str:
    """Return the current time in a time zone."""
    return timezone


def ask(model: ExtractiveAnswerer, *messages: BaseMessage) -> AIMessage:
    result = model.invoke(list(messages))
    assert isinstance(result, AIMessage)
    return result


# --- parse_sources ---------------------------------------------------------------------


def test_parse_sources_reads_labels_and_multiline_text() -> None:
    text = (
        "Preamble with [S9] not a header.\n"
        f"{SOURCES_OPEN}\n"
        "[S1] docs/sqlite.md\n"
        "first line\n\nsecond paragraph\n"
        "[S2] https://example.org/page.html\n"
        "text of the second chunk\n"
        f"{SOURCES_CLOSE}\n"
        "[S3] after the block is ignored\n"
    )
    assert parse_sources(text) == [
        ("S1", "first line\n\nsecond paragraph"),
        ("S2", "text of the second chunk"),
    ]


def test_parse_sources_without_block_is_empty() -> None:
    assert parse_sources("You are ragent.\n[S1] docs/a.md\nsome text") == []


def test_parse_sources_keeps_multi_digit_labels() -> None:
    text = f"{SOURCES_OPEN}\n[S12] a.md\nalpha\n[S3] b.md\nbeta\n{SOURCES_CLOSE}"
    assert parse_sources(text) == [("S12", "alpha"), ("S3", "beta")]


# --- extractive answering --------------------------------------------------------------


def test_answers_from_second_source_with_its_label() -> None:
    answer = ask(
        ExtractiveAnswerer(),
        DOCS,
        HumanMessage("How does VACUUM reclaim the storage of dead tuples?"),
    )
    first = answer.text.split(" [S")[0]
    assert first == (
        "VACUUM reclaims the storage occupied by dead tuples and makes it available for "
        "re-use within the same table."
    )
    assert answer.text.startswith(first + " [S2]")
    assert "[S1]" not in answer.text
    assert answer.response_metadata["model_name"] == "offline-extractive"
    assert answer.response_metadata["finish_reason"] == "stop"
    assert answer.tool_calls == []


def test_answers_from_first_source_when_question_is_about_it() -> None:
    answer = ask(
        ExtractiveAnswerer(max_sentences=1),
        DOCS,
        HumanMessage("Do readers block writers in WAL mode?"),
    )
    assert answer.text == (
        "Readers do not block writers and a writer does not block readers, so reading and "
        "writing can proceed concurrently. [S1]"
    )


def test_sentences_are_ordered_by_score_and_capped() -> None:
    answer = ask(
        ExtractiveAnswerer(max_sentences=2, min_relevance=0.2),
        DOCS,
        HumanMessage("What does VACUUM FULL do with the freed space of a table?"),
    )
    assert answer.text.startswith("VACUUM FULL rewrites the entire table")
    # Weaker sentences are not quoted to fill the cap.
    assert answer.text.count("[S") == 1
    alike = system(("a.md", "A checkpoint copies pages to the database. The backup copies pages."))
    question = HumanMessage("What copies pages?")
    assert ask(ExtractiveAnswerer(), alike, question).text.count("[S") == 2
    assert ask(ExtractiveAnswerer(max_sentences=1), alike, question).text.count("[S") == 1


def test_headings_and_near_duplicates_are_not_quoted() -> None:
    text = "## WAL mode checkpoint\n\nThe WAL checkpoint copies pages back to the database."
    doc = system(("a.md", text), ("b.md", text))  # the same chunk retrieved twice
    answer = ask(ExtractiveAnswerer(), doc, HumanMessage("What is a WAL checkpoint?"))
    assert answer.text == "The WAL checkpoint copies pages back to the database. [S1]"


def test_dont_know_when_no_source_is_relevant() -> None:
    answer = ask(ExtractiveAnswerer(), DOCS, HumanMessage("What is the capital of France?"))
    assert answer.text == DONT_KNOW


def test_dont_know_without_sources_block() -> None:
    answer = ask(
        ExtractiveAnswerer(),
        SystemMessage("You are ragent."),
        HumanMessage("How does VACUUM reclaim storage?"),
    )
    assert answer.text == DONT_KNOW


def test_dont_know_when_question_has_only_stopwords() -> None:
    assert answer_from_sources("What is it?", [("S1", SQLITE)]) == DONT_KNOW


def test_min_relevance_filters_weak_matches() -> None:
    question = "Does VACUUM need an exclusive lock and a rewrite of the whole cluster?"
    loose = answer_from_sources(question, [("S1", POSTGRES)], min_relevance=0.2)
    strict = answer_from_sources(question, [("S1", POSTGRES)], min_relevance=0.95)
    assert "exclusive lock" in loose
    assert strict == DONT_KNOW


def test_history_uses_last_human_message_as_question() -> None:
    answer = ask(
        ExtractiveAnswerer(max_sentences=1),
        DOCS,
        HumanMessage("How does VACUUM reclaim storage?"),
        AIMessage("VACUUM reclaims the storage occupied by dead tuples. [S2]"),
        HumanMessage("When does SQLite run a checkpoint automatically?"),
    )
    assert answer.text.startswith("By default SQLite runs a checkpoint automatically")
    assert answer.text.endswith("[S1]")


def test_deterministic() -> None:
    messages = [DOCS, HumanMessage("How do readers and writers interact in WAL mode?")]
    first = ExtractiveAnswerer().invoke(messages)
    second = ExtractiveAnswerer().invoke(messages)
    assert first.text == second.text
    assert first.text != DONT_KNOW
    assert first.usage_metadata == second.usage_metadata


def test_usage_metadata_counts_words() -> None:
    answer = ask(ExtractiveAnswerer(), SystemMessage("one two"), HumanMessage("three four five"))
    assert answer.text == DONT_KNOW
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["input_tokens"] == 5
    assert answer.usage_metadata["output_tokens"] == len(DONT_KNOW.split())
    assert answer.usage_metadata["total_tokens"] == 5 + len(DONT_KNOW.split())


# --- sentence splitting and stemming ---------------------------------------------------


def test_split_keeps_abbreviations_and_decimals() -> None:
    text = (
        "Dr. Hipp wrote SQLite in 2000. Version 3.45.1 supports JSON, e.g. JSONB. "
        "It costs $0.00 to use, i.e. nothing. Call it now!"
    )
    assert split_sentences(text) == [
        "Dr. Hipp wrote SQLite in 2000.",
        "Version 3.45.1 supports JSON, e.g. JSONB.",
        "It costs $0.00 to use, i.e. nothing.",
        "Call it now!",
    ]


def test_split_treats_headings_and_list_items_as_units() -> None:
    text = "# Setup\nInstall the package.\n- Run the server\n- Open the\n  dashboard\n\nDone here."
    assert split_sentences(text) == [
        "# Setup",
        "Install the package.",
        "Run the server",
        "Open the dashboard",
        "Done here.",
    ]


@pytest.mark.parametrize(
    ("word", "expected"),
    [("indexes", "index"), ("index", "index"), ("running", "run"), ("quickly", "quick")],
)
def test_stem(word: str, expected: str) -> None:
    assert stem(word) == expected


def test_stem_unifies_inflections() -> None:
    assert stem("caches") == stem("cache") == stem("caching")
    assert stem("vacuumed") == stem("vacuuming") == stem("vacuum")


# --- streaming -------------------------------------------------------------------------


def test_stream_concatenates_to_invoke() -> None:
    model = ExtractiveAnswerer()
    messages = [DOCS, HumanMessage("How does VACUUM reclaim the storage of dead tuples?")]
    chunks = list(model.stream(messages))
    assert len(chunks) > 3  # word by word, not one blob
    joined = "".join(chunk.text for chunk in chunks)
    assert joined == model.invoke(messages).text
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert total.response_metadata["finish_reason"] == "stop"
    assert total.response_metadata["model_name"] == "offline-extractive"
    assert total.usage_metadata == model.invoke(messages).usage_metadata


async def test_astream_concatenates_to_ainvoke() -> None:
    model = ExtractiveAnswerer()
    messages = [DOCS, HumanMessage("Do readers block writers in WAL mode?")]
    pieces = [chunk.text async for chunk in model.astream(messages)]
    assert len(pieces) > 3
    assert "".join(pieces) == (await model.ainvoke(messages)).text


async def test_astream_tool_call_is_one_chunk() -> None:
    model = ExtractiveAnswerer().bind_tools([calculator])
    chunks = [c async for c in model.astream([DOCS, HumanMessage("what is 12*(7+3)?")])]
    total: AIMessageChunk | None = None
    for chunk in chunks:
        total = chunk if total is None else total + chunk
    assert total is not None
    assert total.tool_calls == ask(model, DOCS, HumanMessage("what is 12*(7+3)?")).tool_calls
    assert total.tool_calls[0]["args"] == {"expression": "12*(7+3)"}
    assert total.response_metadata["finish_reason"] == "tool_calls"


# --- tool calls ------------------------------------------------------------------------


def test_no_tool_calls_unless_bound() -> None:
    answer = ask(ExtractiveAnswerer(), DOCS, HumanMessage("what is 12*(7+3)?"))
    assert answer.tool_calls == []
    assert answer.response_metadata["finish_reason"] == "stop"


def test_calculator_call_when_bound() -> None:
    model = ExtractiveAnswerer().bind_tools([calculator, current_time])
    answer = ask(model, DOCS, HumanMessage("what is 12*(7+3)?"))
    assert answer.content == ""
    assert len(answer.tool_calls) == 1
    call = answer.tool_calls[0]
    assert call["name"] == "calculator"
    assert call["args"] == {"expression": "12*(7+3)"}
    assert call["id"] is not None and call["id"].startswith("call_")
    assert len(call["id"]) == len("call_") + 12
    assert answer.response_metadata["finish_reason"] == "tool_calls"
    again = ask(model, DOCS, HumanMessage("what is 12*(7+3)?"))
    assert again.tool_calls[0]["id"] == call["id"]  # deterministic id


def test_calculator_converts_caret_to_power() -> None:
    model = ExtractiveAnswerer().bind_tools([calculator])
    answer = ask(model, HumanMessage("compute 2^10"))
    assert answer.tool_calls[0]["args"] == {"expression": "2**10"}


def test_calculator_not_bound_means_no_calculator_call() -> None:
    model = ExtractiveAnswerer().bind_tools([current_time])
    answer = ask(model, DOCS, HumanMessage("what is 12*(7+3)?"))
    assert answer.tool_calls == []


@pytest.mark.parametrize(
    "question",
    ["How does WAL mode work?", "What happened on 2024-01-15?", "Is version 3.11 newer?"],
)
def test_no_calculator_call_without_arithmetic(question: str) -> None:
    assert find_arithmetic(question) is None
    model = ExtractiveAnswerer().bind_tools([calculator])
    assert ask(model, DOCS, HumanMessage(question)).tool_calls == []


@pytest.mark.parametrize(
    ("question", "zone"),
    [
        ("What time is it?", "UTC"),
        ("what's the date today?", "UTC"),
        ("current time in Europe/Paris", "Europe/Paris"),
        ("What time is it in america/new_york?", "America/New_York"),
    ],
)
def test_current_time_call_when_bound(question: str, zone: str) -> None:
    model = ExtractiveAnswerer().bind_tools([calculator, current_time])
    answer = ask(model, HumanMessage(question))
    assert [(c["name"], c["args"]) for c in answer.tool_calls] == [
        ("current_time", {"timezone": zone})
    ]


def test_time_question_without_bound_tool_answers_from_sources() -> None:
    answer = ask(ExtractiveAnswerer(), DOCS, HumanMessage("What time is it?"))
    assert answer.tool_calls == []
    assert answer.text == DONT_KNOW


def test_time_complexity_is_not_a_time_question() -> None:
    model = ExtractiveAnswerer().bind_tools([current_time])
    answer = ask(model, DOCS, HumanMessage("What is the time complexity of a B-tree lookup?"))
    assert answer.tool_calls == []


def test_bind_tools_accepts_dicts_and_callables() -> None:
    def calculator(expression: str) -> str:
        """Evaluate an arithmetic expression."""
        return expression

    spec: dict[str, Any] = {
        "type": "function",
        "function": {"name": "current_time", "description": "Now.", "parameters": {}},
    }
    model = ExtractiveAnswerer().bind_tools([calculator, spec])
    assert model.tool_names == ("calculator", "current_time")
    assert ExtractiveAnswerer().tool_names == ()  # binding returns a copy
    assert model.bind_tools([calculator], tool_choice="none").tool_names == ()


# --- answering from tool results -------------------------------------------------------


def tool_turn(question: str, name: str, args: dict[str, Any]) -> list[BaseMessage]:
    call = {"name": name, "args": args, "id": "call_1", "type": "tool_call"}
    return [DOCS, HumanMessage(question), AIMessage("", tool_calls=[call])]


def test_answers_from_tool_result() -> None:
    messages = [
        *tool_turn("what is 12*(7+3)?", "calculator", {"expression": "12*(7+3)"}),
        ToolMessage("120", name="calculator", tool_call_id="call_1"),
    ]
    model = ExtractiveAnswerer().bind_tools([calculator])
    answer = ask(model, *messages)
    assert answer.text == "The calculator returned 120."
    assert answer.tool_calls == []
    assert answer.response_metadata["finish_reason"] == "stop"


def test_answers_from_several_tool_results_and_resolves_names() -> None:
    calls = [
        {"name": "calculator", "args": {"expression": "2+2"}, "id": "a", "type": "tool_call"},
        {"name": "current_time", "args": {"timezone": "UTC"}, "id": "b", "type": "tool_call"},
    ]
    answer = ask(
        ExtractiveAnswerer(),
        HumanMessage("what is 2+2 and what time is it?"),
        AIMessage("", tool_calls=calls),
        ToolMessage("4", tool_call_id="a"),  # no name: taken from the AI tool call
        ToolMessage("2025-01-01T12:00:00+00:00", name="current_time", tool_call_id="b"),
    )
    assert answer.text == (
        "The calculator returned 4. The current time returned 2025-01-01T12:00:00+00:00."
    )


def test_tool_error_is_reported() -> None:
    messages = [
        *tool_turn("what is 1/0?", "calculator", {"expression": "1/0"}),
        ToolMessage("division by zero", name="calculator", tool_call_id="call_1", status="error"),
    ]
    answer = ask(ExtractiveAnswerer(), *messages)
    assert answer.text == "The calculator tool failed: division by zero."


def test_no_tool_call_loop_after_tool_result() -> None:
    model = ExtractiveAnswerer().bind_tools([calculator])
    messages = [
        *tool_turn("what is 12*(7+3)?", "calculator", {"expression": "12*(7+3)"}),
        ToolMessage("120", name="calculator", tool_call_id="call_1"),
        AIMessage("The calculator returned 120."),
    ]
    # The question is still the last human message and still contains arithmetic, but
    # the calculator already answered it: no second call.
    answer = ask(model, *messages)
    assert answer.tool_calls == []
    # A new question with arithmetic does get a call again.
    again = ask(model, *messages, HumanMessage("and 3*3?"))
    assert again.tool_calls[0]["args"] == {"expression": "3*3"}


def test_stop_sequence_truncates_text() -> None:
    model = ExtractiveAnswerer(max_sentences=1)
    messages = [DOCS, HumanMessage("Do readers block writers in WAL mode?")]
    assert model.invoke(messages, stop=[", so"]).text == (
        "Readers do not block writers and a writer does not block readers"
    )


# --- in a LangGraph agent --------------------------------------------------------------


async def test_runs_a_tool_loop_in_langgraph_while_streaming() -> None:
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    @tool("calculator")
    def evaluate(expression: str) -> str:
        """Evaluate an arithmetic expression."""
        return "120" if expression == "12*(7+3)" else "?"

    model = ExtractiveAnswerer().bind_tools([evaluate])

    async def agent(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [await model.ainvoke([DOCS, *state["messages"]])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([evaluate]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    app = graph.compile()

    streamed: list[str] = []
    final: list[BaseMessage] = []
    async for mode, data in app.astream(
        {"messages": [HumanMessage("what is 12*(7+3)?")]}, stream_mode=["messages", "values"]
    ):
        if mode == "messages":
            message = data[0]
            if isinstance(message, AIMessageChunk):
                streamed.append(message.text)
        else:
            assert isinstance(data, dict)
            final = data["messages"]

    assert [type(m).__name__ for m in final] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
    assert isinstance(final[1], AIMessage)
    assert final[1].tool_calls[0]["args"] == {"expression": "12*(7+3)"}
    assert final[-1].text == "The calculator returned 120."
    assert "".join(streamed) == "The calculator returned 120."


def test_similarity_orders_grounded_sentences_but_never_admits_ungrounded_ones() -> None:
    sources = [
        (
            "S1",
            "Checkpoints run often when the WAL is small. The WAL checkpoint runs at 1000 pages.",
        ),
        ("S2", "Bananas are yellow and rich in potassium."),
    ]

    def prefer_pages(question: str, sentences: Sequence[str]) -> list[float]:
        return [1.0 if "1000" in s else (0.99 if "Bananas" in s else 0.0) for s in sentences]

    plain = answer_from_sources("Does the WAL checkpoint run often?", sources)
    ordered = answer_from_sources(
        "Does the WAL checkpoint run often?", sources, similarity=prefer_pages
    )
    assert plain.startswith("Checkpoints run often")
    assert ordered.startswith("The WAL checkpoint runs at 1000 pages. [S1]")
    assert "Bananas" not in ordered


def test_a_call_asked_for_again_is_restated_by_its_earlier_result() -> None:
    # As the tool node answers a repeated call; the offline answerer then ends the turn
    # (the model's deadline spent) and must not quote the agent's own note to the model.
    first = {"name": "convert_units", "args": {"value": 2}, "id": "a", "type": "tool_call"}
    again = {**first, "id": "b"}
    other = {"name": "calculator", "args": {"expression": "2*2"}, "id": "c", "type": "tool_call"}
    messages = [
        HumanMessage("How many MB are 2 GiB?"),
        AIMessage("", tool_calls=[first]),
        ToolMessage("2 GiB = 2147.48 MB", tool_call_id="a", name="convert_units"),
        AIMessage("", tool_calls=[again, other]),
        ToolMessage(
            "Already done earlier in this request, not run again: 2 GiB = 2147.48 MB",
            tool_call_id="b",
            name="convert_units",
            response_metadata={"outcome": "duplicate", "result": "2 GiB = 2147.48 MB"},
        ),
        ToolMessage("4", tool_call_id="c", name="calculator"),
    ]
    text = describe_tool_results(messages)
    assert "Already done" not in text
    assert text == "The unit converter returned 2 GiB = 2147.48 MB. The calculator returned 4."
