"""The offline answerer answers questions about the user from recalled memories."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.checkpoint.memory import InMemorySaver

from app.context import Context
from app.graphs.agent import compile_agent
from app.llm.offline.answerer import ExtractiveAnswerer
from app.llm.offline.memory_answers import (
    answer_from_memories,
    asks_about_user,
    parse_memories,
    render_memories,
    second_person,
)
from app.memory.store import open_store
from app.prompts import DONT_KNOW, SOURCES_CLOSE, SOURCES_OPEN
from app.resources import Resources
from app.turns import ask
from tests.fakes import HashEmbedder

MEMORIES = [
    "The user's name is Ada.",
    "The user's database is PostgreSQL 16.",
    "The user prefers metric units.",
]


def test_render_and_parse_round_trip() -> None:
    block = render_memories(MEMORIES)
    system = f"You are ragent.\n\n{block}\n\n{SOURCES_OPEN}\n[S1] a.txt\nText.\n{SOURCES_CLOSE}"
    assert parse_memories(system) == MEMORIES
    assert render_memories([]) == ""
    assert parse_memories("You are ragent.") == []


@pytest.mark.parametrize(
    ("question", "about"),
    [
        ("What is my name?", True),
        ("Which database do I use?", True),
        ("What do you remember about me?", True),
        ("Who am I?", True),
        ("What\u2019s my locker code?", True),
        ("How do I sort a list in Python?", False),
        ("How can I sort my list in Python?", False),
        ("What is WAL mode?", False),
    ],
)
def test_asks_about_user(question: str, about: bool) -> None:
    assert asks_about_user(question) is about


@pytest.mark.parametrize(
    ("memory", "expected"),
    [
        ("The user's name is Ada.", "your name is Ada."),
        ("The user is a nurse.", "you are a nurse."),
        ("The user has two cats.", "you have two cats."),
        ("The user prefers metric units.", "you prefer metric units."),
        ("The user watches football.", "you watch football."),
        ("The user studies law.", "you study law."),
        ("The user use PostgreSQL for billing.", "you use PostgreSQL for billing."),
    ],
)
def test_second_person(memory: str, expected: str) -> None:
    assert second_person(memory) == expected


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("What is my name?", "From memory: your name is Ada."),
        ("Do you remember my name?", "From memory: your name is Ada."),
        ("Which database do I use?", "From memory: your database is PostgreSQL 16."),
        ("Do I prefer metric or imperial units?", "From memory: you prefer metric units."),
        (
            "What do you remember about me?",
            "From memory: your name is Ada. Your database is PostgreSQL 16. "
            "You prefer metric units.",
        ),
    ],
)
def test_answers_about_the_user_from_the_memory_that_answers(question: str, answer: str) -> None:
    assert answer_from_memories(question, MEMORIES) == answer


@pytest.mark.parametrize(
    "question",
    [
        "Which editor do I use?",  # "use" alone does not pick "the user uses ..."
        "How do I sort my list in Python?",
        "Does my database support WAL mode?",
        "What is the name of the WAL file?",  # about the documents
        "Remember that my name is Bob.",  # a new fact to keep, not a question
    ],
)
def test_no_memory_answer_when_none_answers(question: str) -> None:
    assert answer_from_memories(question, MEMORIES) is None


def test_offline_model_prefers_the_memory_and_cites_nothing() -> None:
    sources = f"{SOURCES_OPEN}\n[S1] names.txt\nThe name of the WAL file ends in -wal.\n"
    system = SystemMessage(
        f"You are ragent.\n\n{render_memories(MEMORIES)}\n\n{sources}{SOURCES_CLOSE}"
    )
    model = ExtractiveAnswerer()
    reply = model.invoke([system, HumanMessage("What is my name?")])
    assert reply.text == "From memory: your name is Ada."
    assert "[S" not in reply.text
    other = model.invoke([system, HumanMessage("What is the name of the WAL file?")])
    assert other.text.endswith("[S1]")


CTX = Context(tenant_id="t1", user_id="ada")


async def test_agent_recalls_across_threads_from_the_sqlite_store(resources: Resources) -> None:
    async with open_store(resources.settings, HashEmbedder()) as store:
        agent = compile_agent(InMemorySaver(), store)

        async def turn(question: str, thread: str, ctx: Context = CTX) -> str:
            answer = await ask(agent, question, context=ctx, thread_id=thread, max_chars=8000)
            return answer.answer

        await turn("Remember that my name is Ada.", "one")
        await turn("Please remember that my database is PostgreSQL 16.", "one")
        named = await ask(agent, "What is my name?", context=CTX, thread_id="two", max_chars=800)
        assert named.answer == "From memory: your name is Ada."
        assert not named.refused and named.citations == []
        assert (
            await turn("Which database do I use?", "three")
            == "From memory: your database is PostgreSQL 16."
        )
        assert await turn("Which editor do I use?", "four") == DONT_KNOW
        stranger = Context(tenant_id="t1", user_id="bob")
        assert await turn("What is my name?", "five", stranger) == DONT_KNOW
    assert (resources.settings.data_dir / "memory.sqlite").is_file()
