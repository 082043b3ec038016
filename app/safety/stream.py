"""Redact a reply while it streams: release only text whose redaction can no longer change.

A piece of a reply can be sent on only when no later text could make it (part of) a
finding: ``"call 555"`` may become a phone number, ``"sk-abc"`` a key, ``"password: "``
the start of a credential. :class:`StreamRedactor` holds back the tail from the first
place where a match of any of the detectors' expressions (:data:`app.safety.pii.PATTERNS`)
could still start, grow or end differently, and sends the rest redacted exactly as
:func:`app.safety.pii.redact` redacts the whole text. So the pieces it returns, joined,
equal ``redact(whole)[0]`` however the text was split.

Whether a match could still change is asked of the ``regex`` package's partial matching
(a match cut off by the end of the text), plus two rules for complete matches that
longer text could still extend: one that ends within :data:`TAIL` characters of the end
(digit groups, optional suffixes), or with no whitespace after it (e-mail domains,
tokens). In plain prose that holds back the last word; after a finding, a little more.
"""

from __future__ import annotations

import re

import regex

from app.safety.pii import PATTERNS, find_pii, finding_length

__all__ = ["TAIL", "StreamRedactor"]

TAIL = 128
"""A complete match that ends this close to the end of the text may still change; more
than any detector reads past a match (six phone digit groups and the end checks)."""

_FLAGS = {re.IGNORECASE: regex.IGNORECASE, re.DOTALL: regex.DOTALL}
_WHITESPACE = re.compile(r"\s")


def _partial(pattern: re.Pattern[str]) -> regex.Pattern[str]:
    flags = 0
    for flag, same in _FLAGS.items():
        if pattern.flags & flag:
            flags |= same
    return regex.compile(pattern.pattern, flags)


_PARTIAL = tuple(map(_partial, PATTERNS))


def _scoped(pattern: regex.Pattern[str]) -> str:
    flags = "i" * bool(pattern.flags & regex.IGNORECASE) + "s" * bool(pattern.flags & regex.DOTALL)
    return f"(?{flags}:{pattern.pattern})" if flags else f"(?:{pattern.pattern})"


# All of them in one: where it finds nothing, not even a partial match, none of them can
# start, which rules out most places in one call.
_ANY = regex.compile("|".join(map(_scoped, _PARTIAL)))


class StreamRedactor:
    """Redacts one reply fed in pieces; what it returns is final and safe to send.

    Memory is the reply's own text (which the run holds anyway); the work per piece is
    proportional to the text not yet sent, usually the last word.
    """

    def __init__(self) -> None:
        """Start an empty reply."""
        self._text = ""
        self._sent = 0  # self._text[: self._sent] is redacted and sent

    def feed(self, piece: str) -> str:
        """Add the next piece of the reply; return the redacted text now safe to send."""
        self._text += piece
        return self._release(self._stable_end())

    def flush(self) -> str:
        """End the reply; return the rest of it, redacted."""
        return self._release(len(self._text))

    def _release(self, end: int) -> str:
        if end <= self._sent:
            return ""
        parts, pos = [], self._sent
        for finding in find_pii(self._text, start=self._sent):
            if finding.end > end:
                # Only a finding after the cut; were one to cross it, it would wait whole.
                end = min(end, finding.start)
                break
            parts += [self._text[pos : finding.start], finding.placeholder]
            pos = finding.end
        parts.append(self._text[pos:end])
        self._sent = end
        return "".join(parts)

    def _may_change(self, match: regex.Match[str]) -> bool:
        end, size = match.end(), len(self._text)
        if match.partial or size - end <= TAIL:
            return True
        return _WHITESPACE.search(self._text, end) is None

    def _stable_end(self) -> int:
        """Where the text stops being final (the end of what may be sent now).

        No candidate finding that starts before the cut reaches past it, and no match
        that may still change starts before it. Every position from the last cut on is
        tried as the start of a match of each expression, in order. The first one whose
        match may still change ends the scan; the cut is then the last position before
        it that no earlier candidate crosses (a match that fails its check, such as a
        run of numbers, is none).
        """
        text, cut, reach = self._text, self._sent, self._sent
        for start in range(self._sent, len(text)):
            if start >= reach:
                cut = start
            if _ANY.match(text, start, partial=True) is None:
                continue
            for pattern, partial in zip(PATTERNS, _PARTIAL, strict=True):
                match = partial.match(text, start, partial=True)
                if match is None:
                    continue
                if self._may_change(match):
                    return cut
                reach = max(reach, start + finding_length(pattern, match.group()))
        return len(text) if len(text) >= reach else cut
