"""Cheap intent rules on a user's question: arithmetic, time, follow-ups."""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["asks_for_time", "find_arithmetic", "find_timezone", "standalone_question"]

_WORD = re.compile(r"\w+")

_ARITH_RUN = re.compile(r"[0-9.\s()+\-*/^%]+")
_BINARY_OP = re.compile(r"[\d)]\s*(?:\*\*|[-+*/^%])\s*[\d(]")
_DATE_LIKE = re.compile(r"^\d{1,4}([-/])\d{1,2}\1\d{1,4}$")
_ARITH_CUE = re.compile(r"\b(?:calculate|compute|evaluate|solve|what\s+is|what's|how\s+much)\b|=")


def find_arithmetic(question: str) -> str | None:
    """Find the first arithmetic expression in a question.

    An expression is a run of numbers, parentheses and the operators ``+ - * / ^ ** %``
    with at least one binary operator. ``^`` is rewritten as ``**``. Runs that are only
    hyphen- or slash-joined numbers without spaces (dates, ranges such as "10-20") count
    only when the question has a cue such as "calculate" or "what is"; date-like runs
    (``2024-01-15``) never count.

    Args:
        question: The user's question.

    Returns:
        The expression, or None when the question contains none.
    """
    for match in _ARITH_RUN.finditer(question):
        expr = re.sub(r"^(?:[^\d(-]|-(?![\d(]))+|[^\d)]+$", "", match.group())
        while expr.count("(") > expr.count(")") and expr.startswith("("):
            expr = re.sub(r"^\(\s*", "", expr)
        while expr.count(")") > expr.count("(") and expr.endswith(")"):
            expr = re.sub(r"\s*\)$", "", expr)
        if expr.count("(") != expr.count(")") or not _BINARY_OP.search(expr):
            continue
        if _DATE_LIKE.match(expr):
            continue
        ops = set(re.findall(r"\*\*|[-+*/^%]", expr))
        if ops <= {"-", "/"} and " " not in expr and not _ARITH_CUE.search(question.lower()):
            continue
        return expr.replace("**", "^").replace("^", "**")
    return None


_TIME_QUESTION = re.compile(
    r"\bwhat\s+time\s+is\s+it\b"
    r"|\bwhat\s+(?:day|date)\s+is\s+(?:it|today)\b"
    r"|\btoday'?s\s+date\b"
    r"|\b(?:current|local)\s+(?:date\s+and\s+time|time|date)\b(?!\s+(?:complexity|zone|format))"
    r"|\bwhat(?:'s|\s+is)\s+the\s+(?:time|date)\b(?:\s+(?:now|today|right\s+now|in\s+\S+))?"
    r"\s*[?.!]*$"
    r"|\btime\s+(?:is\s+it\s+)?(?:right\s+)?now\b",
    re.IGNORECASE,
)
_TIMEZONE = re.compile(
    r"\b(?:Africa|America|Antarctica|Arctic|Asia|Atlantic|Australia|Europe|Indian|Pacific|Etc)"
    r"/[A-Za-z_\-]+(?:/[A-Za-z_\-]+)?"
    r"|\b(?:UTC|GMT)\b",
    re.IGNORECASE,
)


def asks_for_time(question: str) -> bool:
    """Tell whether a question asks for the current time or date.

    Args:
        question: The user's question.

    Returns:
        True for questions such as "what time is it?", "what's the date today?" or
        "current time in Europe/Paris"; False for e.g. "what is the time complexity".
    """
    text = question.strip().replace("\u2019", "'")
    return _TIME_QUESTION.search(text) is not None


def find_timezone(question: str) -> str | None:
    """Find an IANA time zone name ("Europe/Paris", "UTC") in a question.

    Args:
        question: The user's question.

    Returns:
        The zone with canonical capitalisation when the question was written in lower
        case, or None when there is none.
    """
    match = _TIMEZONE.search(question)
    if match is None:
        return None
    zone = match.group()
    if zone.upper() in {"UTC", "GMT"}:
        return zone.upper()
    if zone.islower():
        zone = "/".join(
            "_".join(part[:1].upper() + part[1:] for part in piece.split("_"))
            for piece in zone.split("/")
        )
    return zone


_FOLLOW_UP = re.compile(
    r"\b(it|its|this|that|these|those|they|them|their|he|she|there|the same)\b", re.IGNORECASE
)


def standalone_question(questions: Sequence[str]) -> str:
    """Return the last question, made standalone for retrieval and answering.

    A short or anaphoric follow-up ("and how big is it?") is joined to the
    previous question, so "it" can be resolved lexically.

    Args:
        questions: The user's messages in a thread, oldest first.

    Returns:
        The last question, possibly prefixed by the one before it.
    """
    if not questions:
        return ""
    question = questions[-1]
    if len(questions) >= 2 and (_FOLLOW_UP.search(question) or len(_WORD.findall(question)) < 4):
        return f"{questions[-2]} {question}"
    return question
