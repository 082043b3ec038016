"""The near-miss check: questions that differ in one entity, number, negation or word."""

from __future__ import annotations

import pytest

from app.cache.agreement import agree, key_terms

SYNONYMS = {frozenset({"often", "frequently"}), frozenset({"begin", "start"})}
CLOSE_BUT_OPPOSITE = {
    frozenset({"ascending", "descending"}),
    frozenset({"stable", "unstable"}),
    frozenset({"input", "output"}),
}


def similar(a: str, b: str) -> float:
    """Word similarity as an embedder rates these words: opposites rate high too."""
    pair = frozenset({a, b})
    if a == b or pair in SYNONYMS:
        return 0.95
    return 0.9 if pair in CLOSE_BUT_OPPOSITE else 0.2


def agrees(a: str, b: str) -> bool:
    return agree(a, b, similar, term_threshold=0.82).ok


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        (
            "How often does SQLite run a checkpoint in WAL mode?",
            "In WAL mode, how often does SQLite run a checkpoint?",
        ),
        (
            "How often does SQLite run a checkpoint in WAL mode?",
            "How frequently does SQLite run a checkpoint in WAL mode?",
        ),
        (
            "When did the implementation of POSTGRES begin?",
            "When did the implementation of POSTGRES start?",
        ),
        ("What's the default of autovacuum_naptime?", "What is the default of autovacuum_naptime?"),
        ("How do I reset my password?", "How can I reset my password?"),
        ("Is Python's sort stable?", "Are Python sorts stable?"),
        # A phrase moved whole with its preposition keeps its role.
        ("What is the timeout in seconds for a lock?", "What is the lock timeout in seconds?"),
        (
            "When does SQLite checkpoint the WAL file at 1000 pages?",
            "At 1000 pages, when does SQLite checkpoint the WAL file?",
        ),
    ],
)
def test_paraphrases_agree(stored: str, asked: str) -> None:
    assert agrees(stored, asked)
    assert agrees(asked, stored)


@pytest.mark.parametrize(
    ("stored", "asked", "reason"),
    [
        (
            "What is the default of max_connections?",
            "What is the default of shared_buffers?",
            "entity",
        ),
        ("Who led the POSTGRES project?", "Who led the Ingres project?", "entity"),
        ("What happened to POSTGRES in 1994?", "What happened to POSTGRES in 1996?", "entity"),
        ('What does "wal" mean?', 'What does "shm" mean?', "entity"),
        ("Does WAL mode work over NFS?", "Does WAL mode not work over NFS?", "negation"),
        ("Are Python sorts stable?", "Are Python sorts unstable?", "negation"),
        (
            "How do I sort a list in descending order?",
            "How do I sort a list in ascending order?",
            "negation",
        ),
        (
            "Which output formats does it produce?",
            "Which input formats does it produce?",
            "negation",
        ),
        ("How do I reset my password?", "How do I reset my username?", "term"),
        (
            "Can a reader block a writer in WAL mode?",
            "Can a writer block a reader in WAL mode?",
            "order",
        ),
        # The same words, prepositions and all, but the two phrases trade roles.
        (
            "How do I turn the elements of a JSON array into rows of a query?",
            "How do I turn the rows of a query into the elements of a JSON array?",
            "order",
        ),
    ],
)
def test_near_misses_disagree_and_say_why(stored: str, asked: str, reason: str) -> None:
    outcome = agree(stored, asked, similar, term_threshold=0.82)
    assert not outcome.ok and outcome.reason == reason
    assert not agrees(asked, stored)


def test_key_terms_are_numbers_identifiers_quotes_and_entities() -> None:
    terms = key_terms('How does SQLite set max_connections to 100 for "wal" in list.sort?')
    assert terms == {"sqlite", "max_connections", "100", "q:wal", "list.sort"}
    assert key_terms("How do I sort a list?") == frozenset()  # "How" starts, it is no entity
    # An apostrophe opens no quote; a possessive names the entity itself.
    assert key_terms("What's the 'wal' of Python's sort?") == {"python", "q:wal"}


def test_long_or_far_apart_questions_are_refused_without_comparing_words() -> None:
    calls: list[tuple[str, str]] = []

    def counting(a: str, b: str) -> float:
        calls.append((a, b))
        return 1.0

    words = [
        f"w{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}{chr(97 + i // 676 % 26)}" for i in range(3000)
    ]
    long = " ".join(words)
    assert agree(long, " ".join(reversed(words)), counting, term_threshold=0.8).reason == "long"
    apart = agree(
        "alpha beta gamma delta",
        "epsilon zeta eta theta iota kappa lambda mu",
        counting,
        term_threshold=0.8,
    )
    assert apart.reason == "term"
    assert calls == []
