"""Policies and approvals: deny, require approval (interrupt, resume), restart survival."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.store.memory import InMemoryStore

from app.graphs.agent import compile_agent
from app.memory.longterm import MemoryBank
from app.resources import Resources, use_resources
from app.settings import SettingsError
from app.tools.approval import parse_decisions
from app.tools.catalog import build_registry
from app.tools.executor import Toolbox
from app.turns import QuestionError, ask, resume, waiting
from tests.tooling import CTX, audit, calls, with_model

NOTE = calls(("create_note", {"title": "Groceries", "text": "buy oat milk"}))
SUM = ("calculator", {"expression": "2+3"})


async def notes_of(store: InMemoryStore, res: Resources, user: str = "u1") -> list[str]:
    bank = MemoryBank(store, res.settings.memory, kind="notes")
    return [n.text for n in await bank.list("t1", user)]


def test_default_policies_follow_the_risk_class(resources: Resources) -> None:
    box = Toolbox(resources.settings, build_registry(resources.settings.tools))
    assert box.policy("calculator") == "allow"  # compute
    assert box.policy("knowledge_search") == "allow"  # read
    assert box.policy("create_note") == "require_approval"  # write
    assert box.policies["http_get"] == "allow"


def test_policies_for_unknown_tools_are_refused(resources: Resources) -> None:
    cfg = resources.settings.tools.model_copy(update={"policies": {"rm_rf": "allow"}})
    with pytest.raises(SettingsError, match="tools.policies.*unknown tool 'rm_rf'"):
        build_registry(cfg)
    with pytest.raises(SettingsError, match="tools.enabled.*unknown tool 'nope'"):
        build_registry(resources.settings.tools.model_copy(update={"enabled": ["nope"]}))


def test_denied_tools_are_not_offered_to_the_model(resources: Resources) -> None:
    cfg = resources.settings.tools.model_copy(update={"policies": {"calculator": "deny"}})
    assert "calculator" not in build_registry(cfg).names
    assert "http_get" not in build_registry(resources.settings.tools).names  # off by default


@pytest.mark.parametrize(
    ("decision", "expected"),
    [
        ("approve", {"a": True, "b": True}),
        ("deny", {"a": False, "b": False}),
        (True, {"a": True, "b": True}),
        ({"a": "approve"}, {"a": True, "b": False}),
        ({"a": "yes", "b": "nonsense"}, {"a": True, "b": False}),
        (None, {"a": False, "b": False}),
        (["approve"], {"a": False, "b": False}),
    ],
)
def test_decisions_default_to_deny(decision: object, expected: dict[str, bool]) -> None:
    pending = [
        {"name": "create_note", "args": {}, "id": "a", "type": "tool_call"},
        {"name": "create_note", "args": {}, "id": "b", "type": "tool_call"},
    ]
    assert parse_decisions(decision, pending) == expected  # type: ignore[arg-type]


async def test_a_denied_tool_is_refused_and_never_runs(resources: Resources) -> None:
    res, model = with_model(
        resources,
        [calls(SUM), AIMessage("I cannot calculate here.")],
        tools={"policies": {"calculator": "deny"}},
    )
    with use_resources(res):
        agent = compile_agent(InMemorySaver())
        answer = await ask(agent, "2+3?", context=CTX, thread_id="d", max_chars=8000)
    (refusal,) = [m for m in model.calls[1] if isinstance(m, ToolMessage)]
    assert refusal.text == "Error: the calculator tool is not allowed here (policy: deny)."
    assert answer.answer == "I cannot calculate here."
    assert [r["outcome"] for r in audit(res.settings)] == ["denied"]


async def test_a_write_tool_waits_for_approval_then_runs(resources: Resources) -> None:
    res, model = with_model(resources, [NOTE, AIMessage("Saved your note.")])
    store = InMemoryStore()
    with use_resources(res):
        agent = compile_agent(InMemorySaver(), store)
        paused = await ask(agent, "note: buy oat milk", context=CTX, thread_id="n", max_chars=8000)
        assert paused.approvals == [
            {
                "id": "c0",
                "tool": "create_note",
                "args": {"title": "Groceries", "text": "buy oat milk"},
                "risk": "write",
            }
        ]
        assert paused.answer == "Waiting for your approval to run: create_note."
        assert paused.as_dict()["approvals"] == paused.approvals
        assert await notes_of(store, res) == []  # nothing written before the decision
        assert len(model.calls) == 1
        assert await waiting(agent, context=CTX, thread_id="n") == paused.approvals

        done = await resume(agent, "approve", context=CTX, thread_id="n")
    assert done.answer == "Saved your note." and done.approvals == []
    assert "approvals" not in done.as_dict()
    assert await notes_of(store, res) == ["buy oat milk"]
    assert await notes_of(store, res, user="u2") == []
    (record,) = audit(res.settings)
    assert (record["outcome"], record["approved_by_user"]) == ("ok", True)


async def test_a_rejected_call_goes_back_to_the_model_as_an_error(resources: Resources) -> None:
    res, model = with_model(resources, [NOTE, AIMessage("OK, I did not save it.")])
    store = InMemoryStore()
    with use_resources(res):
        agent = compile_agent(InMemorySaver(), store)
        await ask(agent, "note it", context=CTX, thread_id="r", max_chars=8000)
        done = await resume(agent, "deny", context=CTX, thread_id="r")
        with pytest.raises(QuestionError, match="no tool call waiting"):
            await resume(agent, "approve", context=CTX, thread_id="r")
    assert done.answer == "OK, I did not save it."
    (rejected,) = [m for m in model.calls[1] if isinstance(m, ToolMessage)]
    assert rejected.text.startswith("Error: the user did not approve this call to create_note")
    assert await notes_of(store, res) == []
    assert [r["outcome"] for r in audit(res.settings)] == ["rejected"]


async def test_only_the_calls_that_need_approval_wait(resources: Resources) -> None:
    both = calls(SUM, ("create_note", {"title": "t", "text": "x"}))
    res, model = with_model(resources, [both, AIMessage("done")])
    with use_resources(res):
        agent = compile_agent(InMemorySaver(), InMemoryStore())
        paused = await ask(agent, "both", context=CTX, thread_id="b", max_chars=8000)
        assert [a["tool"] for a in paused.approvals] == ["create_note"]
        await resume(agent, {"c1": "deny"}, context=CTX, thread_id="b")
    results = {m.name: m.status for m in model.calls[1] if isinstance(m, ToolMessage)}
    assert results == {"calculator": "success", "create_note": "error"}


async def test_an_approval_survives_a_restart(resources: Resources, tmp_path: Path) -> None:
    """The pause and its pending call live in the SQLite checkpoint: a second, separately
    built agent on the same file (as after a process restart) resumes the run."""
    db = str(tmp_path / "checkpoints.sqlite")
    store = InMemoryStore()
    res, model = with_model(resources, [NOTE, AIMessage("Saved.")])
    with use_resources(res):
        async with AsyncSqliteSaver.from_conn_string(db) as saver:
            paused = await ask(
                compile_agent(saver, store), "save it", context=CTX, thread_id="s", max_chars=8000
            )
        assert paused.approvals and await notes_of(store, res) == []

        async with AsyncSqliteSaver.from_conn_string(db) as saver:
            agent = compile_agent(saver, store)
            assert await waiting(agent, context=CTX, thread_id="s") == paused.approvals
            done = await resume(agent, "approve", context=CTX, thread_id="s")
    assert done.answer == "Saved."
    assert await notes_of(store, res) == ["buy oat milk"]
    assert len(model.calls) == 2  # the model was not asked again for the paused step


async def test_a_write_asked_for_again_after_it_ran_is_not_run_or_approved_twice(
    resources: Resources,
) -> None:
    # Small models ask for the same write again once it has run.
    res, model = with_model(resources, [NOTE, NOTE, AIMessage("never asked for")])
    store = InMemoryStore()
    with use_resources(res):
        agent = compile_agent(InMemorySaver(), store)
        paused = await ask(agent, "note: buy oat milk", context=CTX, thread_id="d", max_chars=8000)
        assert [a["tool"] for a in paused.approvals] == ["create_note"]
        done = await resume(agent, "approve", context=CTX, thread_id="d")
    # The turn ends with the result it already has, instead of a second approval.
    assert done.approvals == []
    assert done.answer.startswith("The create note returned Saved the note 'Groceries'")
    assert await notes_of(store, res) == ["buy oat milk"]  # saved once
    assert [r["outcome"] for r in audit(res.settings)] == ["ok", "duplicate"]
    assert len(model.calls) == 2


async def test_a_repeated_call_among_new_ones_gets_its_earlier_result(
    resources: Resources,
) -> None:
    other = ("calculator", {"expression": "6*7"})
    res, model = with_model(
        resources, [calls(SUM), calls(SUM, other, prefix="d"), AIMessage("5 and 42.")]
    )
    with use_resources(res):
        agent = compile_agent(InMemorySaver())
        done = await ask(agent, "2+3 and 6*7?", context=CTX, thread_id="e", max_chars=8000)
    assert done.answer == "5 and 42."
    repeated, fresh = [m for m in model.calls[2] if isinstance(m, ToolMessage)][-2:]
    assert repeated.text == "Already done earlier in this request, not run again: 5"
    assert fresh.text == "42"
    assert [r["outcome"] for r in audit(res.settings)] == ["ok", "duplicate", "ok"]
