"""Tier rules, retrieval confidence, the structured classifier, and Context decoding checks."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from app.context import Context
from app.llm.structured import StructuredOutputError, ainvoke_structured, parse_json_reply
from app.llm.tiers import (
    TierChoice,
    TierRules,
    classify_tier,
    escalate,
    has_code,
    retrieval_confidence,
    rule_tier,
)
from app.text.terms import term_set
from tests.fakes import ScriptedChatModel

RULES = TierRules(small_max_words=12, min_confidence=0.5)


@pytest.mark.parametrize(
    ("question", "tier"),
    [
        ("What is the WAL checkpoint threshold?", "small"),
        ("Why does this fail?\n```python\nprint(x)\n```", "code"),
        ('Traceback (most recent call last):\n  File "a.py", line 1', "code"),
        ("def area(r): return 3.14 * r * r  -- is this right?", "code"),
        ("SELECT * FROM t WHERE x = 1; why is it slow?", "code"),
        ("what is 12*(7+3)?", "large"),
        ("What time is it in Europe/Paris?", "large"),
        (" ".join(["word"] * 13), "large"),
    ],
)
def test_rule_tier(question: str, tier: str) -> None:
    assert rule_tier(question, RULES) == tier


def test_prose_is_not_code() -> None:
    for text in ["How do I sort a list in Python?", "Use the WAL (write-ahead log) mode."]:
        assert not has_code(text)


def test_retrieval_confidence_is_the_share_of_query_terms_in_the_best_source() -> None:
    texts = ["VACUUM reclaims storage.", "SQLite checkpoints the WAL file at 1000 pages."]
    assert retrieval_confidence("When does SQLite checkpoint the WAL file?", texts) == 1.0
    assert retrieval_confidence("How does PostgreSQL checkpoint?", texts) == 0.5
    assert retrieval_confidence("anything at all", []) == 0.0


def test_a_source_is_reduced_to_its_terms_once_across_turns() -> None:
    texts = ["Readers do not block writers in WAL mode.", "Checkpoints move pages back."]
    term_set.cache_clear()
    first = retrieval_confidence("Do readers block writers?", texts)
    again = retrieval_confidence("Do writers block readers?", texts)
    assert first == again == 1.0
    assert term_set.cache_info().hits == len(texts)  # the second turn re-read no source


def test_low_confidence_moves_small_to_large_only() -> None:
    assert escalate("small", 0.2, RULES) == "large"
    assert escalate("small", 0.8, RULES) == "small"
    assert escalate("small", None, RULES) == "small"
    assert escalate("code", 0.0, RULES) == "code"


def test_json_replies_may_come_in_a_code_fence() -> None:
    assert parse_json_reply('```json\n{"tier": "small"}\n```', TierChoice).tier == "small"
    assert parse_json_reply(' {"tier": "code", "reason": "x"} ', TierChoice).tier == "code"


async def test_classifier_repairs_one_invalid_reply() -> None:
    model = ScriptedChatModel(replies=[AIMessage("small, I think"), AIMessage('{"tier": "small"}')])
    assert await classify_tier(model, "What is WAL?") == "small"
    repair = model.calls[1]
    assert repair[-2].content == "small, I think"  # the model sees its own reply
    assert "not valid" in repair[-1].content
    assert '"tier"' in repair[0].content  # the schema is in the instruction


async def test_a_second_invalid_reply_raises() -> None:
    model = ScriptedChatModel(replies=[AIMessage('{"tier": "huge"}')])
    with pytest.raises(StructuredOutputError, match="TierChoice: the reply is invalid"):
        await ainvoke_structured(model, [HumanMessage("q")], TierChoice)
    assert len(model.calls) == 2


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("temperature", 2.5, "temperature must be between 0 and 2"),
        ("top_p", 0.0, "top_p must be above 0"),
        ("max_tokens", 0, "max_tokens must be at least 1"),
        ("stop", ["a", "b", "c", "d", "e"], "at most 4"),
        ("stop", [""], "non-empty"),
    ],
)
def test_context_refuses_bad_decoding_parameters(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Context(**{field: value})  # type: ignore[arg-type]
