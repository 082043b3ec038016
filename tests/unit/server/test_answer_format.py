"""How an answer is shown on /v1: sources footer, url_citation annotations, JSON checks."""

from __future__ import annotations

import pytest

from app.answer import Answer
from app.server.answer_format import footer, shown_content, url_citations, usage
from app.server.errors import ApiError
from app.state import Citation


def cite(label: str, source: str) -> Citation:
    return Citation(label=label, source=source, doc_id="d", chunk_id="c", span=[0, 1])


ANSWER = Answer(
    answer="Staging is rebuilt on Tuesdays [S2], by platform [S1]. See [S2].",
    citations=[cite("S2", "https://wiki.example/ops/staging.md"), cite("S1", "docs/team.pdf")],
)


def test_footer_lists_cited_sources_by_name_with_links_for_urls() -> None:
    assert footer(ANSWER) == (
        "\n\n**Sources**\n- [S2] [staging.md](https://wiki.example/ops/staging.md)\n- [S1] team.pdf"
    )
    assert footer(Answer(answer="No sources here.")) == ""
    shown = shown_content(ANSWER, None, "footer")
    assert shown.startswith(ANSWER.answer) and shown.endswith("- [S1] team.pdf")
    assert shown_content(ANSWER, None, "markers") == ANSWER.answer


def test_annotations_mark_every_label_in_order() -> None:
    found = url_citations(ANSWER.answer, ANSWER)
    spans = [(a["url_citation"]["start_index"], a["url_citation"]["end_index"]) for a in found]
    assert [ANSWER.answer[s:e] for s, e in spans] == ["[S2]", "[S1]", "[S2]"]
    assert [a["url_citation"]["title"] for a in found] == ["staging.md", "team.pdf", "staging.md"]


def test_json_formats_get_no_footer_and_must_conform() -> None:
    data = Answer(answer='{"a": "x [S1]"}', citations=[cite("S1", "a.md")])
    assert shown_content(data, {"type": "json_object"}, "footer") == '{"a": "x [S1]"}'
    with pytest.raises(ApiError) as raised:
        shown_content(Answer(answer="prose"), {"type": "json_object"}, "markers")
    assert raised.value.status == 502 and raised.value.code == "invalid_model_output"
    assert raised.value.headers == {"x-should-retry": "false"}
    refusal = Answer(answer="I can't help with that.", refused=True)
    assert shown_content(refusal, {"type": "json_object"}, "markers") == refusal.answer


def test_usage_lists_calls_and_defaults_to_zero() -> None:
    assert usage(Answer(answer="")) == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "calls": [],
    }
