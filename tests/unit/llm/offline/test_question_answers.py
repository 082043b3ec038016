"""The offline answerer answers the question: relevant sentences, the asked-for value,
no padding, lists after a colon, and a refusal only when nothing relevant was retrieved.

The similarity is the real local embedder (MiniLM, ONNX), as ``ragent serve`` wires it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial

import pytest

from app.llm.factory import cosine_similarity
from app.llm.offline.answerer import answer_from_sources
from app.prompts import DONT_KNOW
from app.retrieval.embedding.embedder import LocalEmbedder

Similarity = partial[list[float]]

BACKUP = """The backup tool writes a consistent snapshot of the database.
With --jobs N it copies N tables at the same time, which shortens the backup of a large
database on a machine with many cores.
The archive can be restored with the restore tool."""

LICENSE = [
    (
        "S1",
        "The project moved to the new license after a long discussion among its "
        "contributors, who voted on it.",
    ),
    ("S2", "The new license took effect in March 2019, with the 4.0 release."),
]

REASONS = """Cache maintenance

The cache has to be compacted on a regular basis for several reasons:

To reclaim the space of expired entries.

To keep lookups fast when many entries were overwritten.

To protect against running out of file handles.

Compaction runs in the background and never blocks readers."""


@pytest.fixture(scope="module")
def similarity() -> Iterator[Similarity]:
    yield partial(cosine_similarity, LocalEmbedder())


def labels(answer: str) -> list[str]:
    return [part.split("]")[0] for part in answer.split("[")[1:]]


def test_an_answer_in_other_words_is_quoted_not_refused(similarity: Similarity) -> None:
    answer = answer_from_sources(
        "How do I make backups faster with several CPUs?", [("S1", BACKUP)], similarity=similarity
    )
    assert answer == (
        "With --jobs N it copies N tables at the same time, which shortens the backup of a "
        "large database on a machine with many cores. [S1]"
    )


@pytest.mark.parametrize(
    "question",
    ["Who painted the Mona Lisa?", "What is the capital city of Australia?"],
)
def test_nothing_relevant_retrieved_is_still_refused(similarity: Similarity, question: str) -> None:
    assert answer_from_sources(question, [("S1", BACKUP), *LICENSE], similarity=similarity) == (
        DONT_KNOW
    )


def test_the_sentence_with_the_asked_for_date_comes_first(similarity: Similarity) -> None:
    answer = answer_from_sources(
        "When did the project move to the new license?", LICENSE, similarity=similarity
    )
    assert answer.startswith(
        "The new license took effect in March 2019, with the 4.0 release. [S2]"
    )


def test_a_number_question_leads_with_the_number() -> None:
    sources = [
        ("S1", "By default the pool size follows the pool_size setting of the server."),
        ("S2", "The pool size is 50 unless it is set."),
    ]
    answer = answer_from_sources("What is the default pool size?", sources)
    assert answer.startswith("The pool size is 50 unless it is set. [S2]")


def test_an_answer_is_not_padded_with_weaker_sentences(similarity: Similarity) -> None:
    sources = [
        ("S1", "A checkpoint copies the pages of the write-ahead log back into the database."),
        ("S2", "The log grows until a checkpoint runs. Readers see the log and the database."),
        ("S3", "The database file is locked while the log is copied."),
    ]
    for scorer in (None, similarity):
        answer = answer_from_sources("What does a checkpoint copy?", sources, similarity=scorer)
        assert labels(answer) == ["S1"], answer


def test_the_list_after_a_colon_is_quoted_with_its_sentence(similarity: Similarity) -> None:
    answer = answer_from_sources(
        "Why does the cache have to be compacted on a regular basis?",
        [("S1", REASONS)],
        similarity=similarity,
    )
    assert answer == (
        "The cache has to be compacted on a regular basis for several reasons: "
        "To reclaim the space of expired entries. "
        "To keep lookups fast when many entries were overwritten. "
        "To protect against running out of file handles. [S1]"
    )


def test_titles_and_repeated_fragments_are_not_quoted(similarity: Similarity) -> None:
    sources = [
        (
            "S1",
            "How Automatic Checkpoints Work\n\n"
            "SQLite runs a checkpoint when the WAL reaches 1000 pages.",
        ),
        # The next chunk starts in the middle of that sentence (chunk overlap).
        ("S2", "reaches 1000 pages. Checkpoints can also be run by hand."),
    ]
    for scorer in (None, similarity):
        answer = answer_from_sources(
            "When does SQLite run automatic checkpoints?", sources, similarity=scorer
        )
        assert "Checkpoints Work" not in answer
        assert answer.startswith("SQLite runs a checkpoint when the WAL reaches 1000 pages. [S1]")
        assert labels(answer).count("S2") <= 1 and "reaches 1000 pages. [S2]" not in answer


def test_every_quoted_sentence_cites_the_source_it_came_from(similarity: Similarity) -> None:
    sources: Sequence[tuple[str, str]] = [("S1", BACKUP), ("S2", REASONS), *LICENSE[1:]]
    answer = answer_from_sources(
        "Can the backup copy tables in parallel with --jobs?", sources, similarity=similarity
    )
    quoted = [part.strip() for part in answer.split("]") if part.strip()]
    for piece in quoted:
        sentence, label = piece.rsplit(" [", 1)
        text = dict(sources)[label]
        assert " ".join(sentence.split()) in " ".join(text.split())


def test_a_sentence_that_ends_with_a_company_suffix_is_quoted_alone() -> None:
    sources = [
        (
            "S1",
            "The project was sponsored by the Army Research Office and ESL, Inc. The "
            "implementation of the system began in 1986. Products of Acme Inc. are sold widely.",
        )
    ]
    answer = answer_from_sources("When did the implementation of the system begin?", sources)
    assert answer == "The implementation of the system began in 1986. [S1]"
    sold = answer_from_sources("Where are Acme's products sold?", sources)
    assert sold == "Products of Acme Inc. are sold widely. [S1]"
