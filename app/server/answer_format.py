"""How an answer is shown on ``/v1``: JSON for the response format, its sources, its usage.

- ``response_format``: the answer of a JSON format must conform (after the one repair
  the graph makes, :mod:`app.llm.response_format`), else the request fails with a 502
  ``invalid_model_output`` that clients do not retry (``x-should-retry: false``): the
  model could not write the JSON asked for, and saying so beats a 200 whose content
  each client's parser rejects in its own words. A refusal is not JSON and need not be:
  it comes in ``refusal``, as OpenAI's structured outputs do.
- Citations: ``markers`` leaves the ``[S1]`` labels alone (the default); ``footer``
  appends a markdown list of the cited sources (never with a JSON format, which it
  would break); ``annotations`` adds OpenAI's ``url_citation`` annotations, one per
  label in the content. Both name only sources the answer cites, by title, and hold no
  document text.
- ``usage`` sums every model call of the turn and lists them in ``usage.calls``.
"""

from __future__ import annotations

from typing import Any, Literal

from app.answer import Answer
from app.llm.offline.answerer import ExtractiveAnswerer
from app.llm.response_format import ReplyError, conforming, is_json, offline_problem
from app.resources import Resources
from app.server.errors import ApiError
from app.server.schemas import ChatRequest

__all__ = [
    "CitationFormat",
    "citation_format_of",
    "footer",
    "requested_format",
    "shown_content",
    "url_citations",
    "usage",
]

CitationFormat = Literal["markers", "footer", "annotations"]


def requested_format(body: ChatRequest, resources: Resources) -> dict[str, Any] | None:
    """The request's JSON format as the model gets it; None for free text.

    Raises:
        ApiError: 400 (``response_format_unsupported``) for a schema the offline
            answerer cannot fill, on a server that only answers offline.
    """
    if body.response_format is None:
        return None
    spec = body.response_format.spec()
    offline = isinstance(resources.chat_model, ExtractiveAnswerer)
    problem = offline_problem(spec) if spec is not None and offline else None
    if problem is not None:
        raise ApiError(
            400,
            f"response_format: {problem}",
            "response_format_unsupported",
            param="response_format.json_schema.schema",
        )
    return spec


def citation_format_of(body: ChatRequest, resources: Resources) -> CitationFormat:
    """The request's ``citation_format``, else the server's ``server.citation_format``."""
    return body.citation_format or resources.settings.server.citation_format


def _waits(answer: Answer) -> bool:
    return bool(answer.approvals or getattr(answer, "client_calls", None))


def shown_content(
    answer: Answer, response_format: dict[str, Any] | None, citation_format: str
) -> str:
    """The message content: the conforming JSON, or the text with its sources footer.

    Raises:
        ApiError: 502 (``invalid_model_output``) when a JSON format's answer does not
            conform, not even after the repair.
    """
    if response_format is None or not is_json(response_format):
        if citation_format == "footer" and not _waits(answer):
            return answer.answer + footer(answer)
        return answer.answer
    if answer.refused or _waits(answer):
        return answer.answer
    try:
        return conforming(answer.answer, response_format)
    except ReplyError as exc:
        raise ApiError(
            502,
            f"the model's answer does not conform to response_format after one repair: {exc}",
            "invalid_model_output",
            kind="server_error",
            param="response_format",
            headers={"x-should-retry": "false"},
        ) from None


def _title(source: str) -> str:
    return source.rsplit("/", 1)[-1] or source


def _link(source: str) -> str:
    return source if source.startswith(("http://", "https://")) else ""


def footer(answer: Answer) -> str:
    """A markdown list of the sources the answer cites, by label; empty when none."""
    if not answer.citations:
        return ""
    lines = []
    for citation in answer.citations:
        source = citation["source"]
        link = _link(source)
        shown = f"[{_title(source)}]({link})" if link else _title(source)
        lines.append(f"- [{citation['label']}] {shown}")
    return "\n\n**Sources**\n" + "\n".join(lines)


def url_citations(content: str, answer: Answer) -> list[dict[str, Any]]:
    """OpenAI ``url_citation`` annotations: one per cited label where it sits in ``content``.

    ``url`` is the source's address when it has one, else its path as indexed.
    """
    by_label = {c["label"]: c for c in answer.citations}
    found: list[dict[str, Any]] = []
    for label, citation in by_label.items():
        marker = f"[{label}]"
        start = content.find(marker)
        while start >= 0:
            source = citation["source"]
            found.append(
                {
                    "type": "url_citation",
                    "url_citation": {
                        "start_index": start,
                        "end_index": start + len(marker),
                        "title": _title(source),
                        "url": source,
                    },
                }
            )
            start = content.find(marker, start + len(marker))
    return sorted(found, key=lambda a: int(a["url_citation"]["start_index"]))


def usage(answer: Answer) -> dict[str, Any]:
    """OpenAI's ``usage`` summed over the turn's model calls, with ``calls``, one per call.

    With a price table (``server.prices``) each call carries its ``cost`` and ``cost`` is
    the turn's, every call summed.
    """
    totals = answer.usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    out: dict[str, Any] = {**totals, "calls": list(answer.model_calls)}
    if any("cost" in c for c in answer.model_calls):
        out["cost"] = round(sum(float(c.get("cost", 0)) for c in answer.model_calls), 10)
    return out
