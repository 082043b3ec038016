from __future__ import annotations

from app.state import Source, reduce_sources


def _src(chunk_id: str) -> Source:
    return Source(
        label="", chunk_id=chunk_id, doc_id="d", source="s", text="t", span=[0, 1], score=1.0
    )


def test_reduce_sources_labels_in_order_and_skips_repeats() -> None:
    merged = reduce_sources([], [_src("a"), _src("b"), _src("a")])
    assert [(s["label"], s["chunk_id"]) for s in merged] == [("S1", "a"), ("S2", "b")]
    more = reduce_sources(merged, [_src("b"), _src("c")])
    assert [(s["label"], s["chunk_id"]) for s in more] == [("S1", "a"), ("S2", "b"), ("S3", "c")]


def test_reduce_sources_delete_resets_and_is_pure() -> None:
    existing = reduce_sources([], [_src("a")])
    assert reduce_sources(existing, "delete") == []
    assert existing[0]["label"] == "S1"  # inputs are not mutated
    assert reduce_sources([], [_src("x")])[0]["label"] == "S1"
