"""Context-window assembly by priority: whole items only, newest turns first."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from app.llm.budget import MESSAGE_OVERHEAD, assemble, turn_groups
from app.llm.tokens import ApproxCounter

COUNTER = ApproxCounter()  # 4 characters a token


def words(n: int, tag: str = "w") -> str:
    return " ".join(f"{tag}{i:02d}" for i in range(n))  # 4 characters a word plus a space


def test_turn_groups_keep_tool_calls_with_their_results() -> None:
    call = AIMessage("", tool_calls=[{"name": "calculator", "args": {"x": "1"}, "id": "t"}])
    history = [
        ToolMessage("orphan", tool_call_id="gone"),
        HumanMessage("q1"),
        call,
        ToolMessage("1", tool_call_id="t"),
        AIMessage("a1"),
        HumanMessage("q2"),
    ]
    groups = turn_groups(history)
    assert [[type(m).__name__ for m in g] for g in groups] == [
        ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"],
        ["HumanMessage"],
    ]


def test_everything_fits_under_a_large_limit() -> None:
    turns = [HumanMessage("q1"), AIMessage("a1"), HumanMessage("q2")]
    window = assemble(
        limit=10_000,
        counter=COUNTER,
        system="sys",
        summary="sum",
        turns=turns,
        sources=["s1", "s2"],
        memories=["m1"],
    )
    assert window.turns == turns and window.sources == ["s1", "s2"]
    assert window.summary == "sum" and window.memories == ["m1"] and window.dropped == {}


def test_priority_drops_memories_then_sources_then_old_turns() -> None:
    source = words(40, "s")
    common = {
        "counter": COUNTER,
        "system": "x" * 40,  # 10 tokens + overhead: 14
        "turns": [HumanMessage(words(16, "o")), AIMessage(words(16, "a")), HumanMessage("q?")],
        "sources": [source, source + " two"],  # 41 and 42 tokens, each with its separator
        "memories": [words(16, "m")],  # 18 tokens
    }
    # 14 system + 5 current turn + 40 older turn + 41 + 42 sources + 18 memory
    assert assemble(limit=10_000, **common).tokens == 160  # type: ignore[arg-type]

    def kept(limit: int) -> tuple[int, int, int]:
        w = assemble(limit=limit, **common)  # type: ignore[arg-type]
        return len(w.turns), len(w.sources), len(w.memories)

    assert kept(160) == (3, 2, 1)
    assert kept(159) == (3, 2, 0)  # memories go first
    assert kept(141) == (3, 1, 1)  # then the lowest-ranked source (the memory fits again)
    assert kept(99) == (3, 0, 1)  # then every source
    assert kept(58) == (1, 0, 1)  # then older turns; the current turn always stays


def test_sources_are_a_ranked_prefix_never_cut() -> None:
    big, small = words(80, "b"), "tiny"
    window = assemble(
        limit=60, counter=COUNTER, system="s", turns=[HumanMessage("q")], sources=[big, small]
    )
    # The small source would fit, but it never takes the place of a better-ranked one.
    assert window.sources == [] and window.dropped == {"sources": 2}


def test_the_rendered_source_is_what_is_counted() -> None:
    def render(label: str) -> str:
        return f"[{label}] doc.md\n" + "x" * 400

    window = assemble(
        limit=130,
        counter=COUNTER,
        system="s",
        turns=[HumanMessage("q")],
        sources=["S1", "S2"],
        render_source=render,
    )
    assert window.sources == ["S1"]


def test_tools_count_against_the_limit() -> None:
    tool = {"type": "function", "function": {"name": "t", "description": "d" * 400}}
    without = assemble(limit=200, counter=COUNTER, system="s", turns=[HumanMessage("q")])
    with_tool = assemble(
        limit=200, counter=COUNTER, system="s", tools=[tool], turns=[HumanMessage("q")]
    )
    assert with_tool.tokens - without.tokens >= 100


def test_the_current_turn_is_always_kept_with_its_tool_calls() -> None:
    call = AIMessage("", tool_calls=[{"name": "calculator", "args": {"e": "2"}, "id": "t"}])
    turns = [HumanMessage(words(50)), call, ToolMessage("2", tool_call_id="t")]
    window = assemble(limit=1, counter=COUNTER, system="s", turns=turns)
    assert window.turns == turns
    assert window.tokens >= 3 * MESSAGE_OVERHEAD + 60
