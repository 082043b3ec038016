"""The near-miss check: questions that differ in one entity, number, negation or word."""

from __future__ import annotations

import pytest

from app.cache.agreement import agree, key_terms

SYNONYMS = {
    frozenset({"often", "frequently"}),
    frozenset({"begin", "start"}),
    frozenset({"taught", "teach"}),
}
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
        (
            "When does SQLite checkpoint the WAL file at 1000 pages?",
            "At 1000 pages, when does SQLite checkpoint the WAL file?",
        ),
        (
            "How do I copy rows from the old table into the new table?",
            "How do I copy rows into the new table from the old table?",
        ),
        # A capitalised stopword that starts the question is no entity.
        ("In WAL mode, can a reader block a writer?", "Can a reader block a writer in WAL mode?"),
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
        # Subject and object swapped by word order alone: one word moves, no preposition.
        ("Which team beat Brazil in 2002?", "Which team did Brazil beat in 2002?", "order"),
        ("Did Amazon acquire Whole Foods?", "Did Whole Foods acquire Amazon?", "order"),
        # A word and its counterpart ("taught" / "teach") count as one word for the order.
        ("Who taught Aristotle?", "Whom did Aristotle teach?", "order"),
        # "US" is an entity, not the stopword "us": both places move, not only "Europe".
        (
            "Do sports fans in the US spend more than fans in Europe?",
            "Do sports fans in Europe spend more than fans in the US?",
            "order",
        ),
        (
            "Do UK retailers sell more online than EU retailers?",
            "Do UK retailers sell more online?",
            "entity",
        ),
        (
            "How does SQLite treat IN with a subquery?",
            "How does SQLite treat a subquery?",
            "entity",
        ),
        # A word that moves without a preposition is refused even where the meaning holds:
        # a miss costs a model call, a wrong hit a wrong answer.
        (
            "What is the timeout in seconds for a lock?",
            "What is the lock timeout in seconds?",
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


def test_acronyms_and_capitals_inside_a_sentence_are_entities_even_if_stopwords() -> None:
    assert key_terms("Do fans in the US spend more than in Europe?") == {"us", "europe"}
    assert key_terms("Does IN use an index?") == {"in"}
    assert key_terms("Who sang in The Who?") == {"the", "who"}
    # At the start of a sentence, after a colon or inside an opening quote, a capital is no entity.
    assert key_terms("In WAL mode: Is a reader blocked? (Is it?)") == {"wal"}
    assert key_terms("Can I do it? A guess") == frozenset()


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
