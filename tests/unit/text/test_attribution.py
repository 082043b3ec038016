"""Claims cite the source that supports them; unsupported claims are dropped."""

from __future__ import annotations

from app.text.attribution import attribute

WAL = (
    "By default, SQLite does a checkpoint automatically when the WAL file reaches a "
    "threshold size of 1000 pages."
)
LOCKS = "Readers do not block writers and a writer does not block readers in WAL mode."
SOURCES = [("S1", LOCKS), ("S2", WAL)]


def test_a_claim_without_a_label_gets_the_supporting_source() -> None:
    done = attribute("SQLite runs a checkpoint when the WAL file reaches 1000 pages.", SOURCES)
    assert done.text == "SQLite runs a checkpoint when the WAL file reaches 1000 pages. [S2]"
    assert (done.added, done.dropped) == (1, 0)


def test_a_wrong_label_gets_the_right_one_and_a_right_one_stays() -> None:
    done = attribute(
        "A checkpoint happens when the WAL file reaches 1000 pages [S1]. "
        "Readers do not block writers. [S1]",
        SOURCES,
    )
    assert done.text == (
        "A checkpoint happens when the WAL file reaches 1000 pages. [S2] "
        "Readers do not block writers. [S1]"
    )
    assert done.added == 1


def test_an_unsupported_claim_is_dropped() -> None:
    done = attribute(
        "SQLite checkpoints at 1000 pages of WAL. Paris is the capital of France and Europe.",
        SOURCES,
    )
    assert done.text == "SQLite checkpoints at 1000 pages of WAL. [S2]"
    assert done.dropped == 1


def test_nothing_supported_is_i_dont_know() -> None:
    done = attribute("The swallow flies at eleven metres per second.", SOURCES)
    assert done.text == "" and done.dropped == 1


def test_short_sentences_are_no_claims_and_paragraphs_stay() -> None:
    done = attribute("Yes.\n\nReaders never block writers in WAL mode.", SOURCES)
    assert done.text == "Yes.\n\nReaders never block writers in WAL mode. [S1]"
