"""Detect and redact personal data and credentials in free text.

Every detector is a precompiled regular expression, optionally followed by a
checksum or plausibility test (Luhn for cards, mod-97 for IBANs, area rules for
SSNs). Findings carry only a kind and a span, never the matched text, so they
are safe to log.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["KINDS", "PATTERNS", "Finding", "find_pii", "finding_length", "redact"]

KINDS: tuple[str, ...] = ("secret", "card", "iban", "ssn", "email", "phone")
"""Every kind :func:`find_pii` reports, in tie-break priority order."""

_PRIORITY = {kind: rank for rank, kind in enumerate(KINDS)}


@dataclass(frozen=True)
class Finding:
    """One detected span of sensitive text.

    Attributes:
        kind: One of :data:`KINDS`.
        start: Index of the first character of the span.
        end: Index one past the last character of the span.
    """

    kind: str
    start: int
    end: int

    @property
    def placeholder(self) -> str:
        """The text that replaces this span in :func:`redact`, e.g. ``[EMAIL]``."""
        return f"[{self.kind.upper()}]"


_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b"
)

_PHONE_START = r"(?<![\w+.-])"
# National numbers have no "+" to mark their start, so they must not continue a
# run of digit groups (the body of an IBAN, a card or an account number).
_NATIONAL_START = rf"{_PHONE_START}(?<!\d[ .-])"
_PHONE_END = r"(?!\w|[.-]\d)"
# Separators between digit groups are mandatory or the group sizes bounded, so a
# long run of digits can be split only a few ways and matching stays linear.
_PHONE_INTL = re.compile(
    rf"{_PHONE_START}\+[1-9]\d{{0,3}}(?:[ .-]?\(\d{{1,4}}\))?[ .-]?\d{{1,14}}"
    rf"(?:[ .-]\d{{1,14}}){{0,6}}{_PHONE_END}"
)
_PHONE_NANP = re.compile(
    rf"{_NATIONAL_START}(?:1[ .-])?(?:\([2-9]\d{{2}}\)[ .-]?|[2-9]\d{{2}}[ .-])"
    rf"[2-9]\d{{2}}[ .-]\d{{4}}{_PHONE_END}"
)
# Trunk-prefixed national numbers (UK 020 7946 0958, FR 06 12 34 56 78, DE 030 1234567).
_PHONE_TRUNK = re.compile(
    rf"{_NATIONAL_START}(?:\(0[1-9]\d{{0,3}}\)|0[1-9]\d{{0,3}})[ .-]?\d{{2,4}}"
    rf"(?:[ .-]?\d{{2,4}}){{1,3}}{_PHONE_END}"
)

# Contiguous digits, or the printed groupings: 4-4-4-4(-3), and 4-6-5 / 4-6-4 (Amex, Diners).
_CARD = re.compile(
    r"(?<![\w+-])(?:\d{13,19}"
    r"|\d{4}(?P<s>[ -])\d{4}(?P=s)\d{4}(?P=s)\d{4}(?:(?P=s)\d{3})?"
    r"|\d{4}(?P<t>[ -])\d{6}(?P=t)\d{4,5})"
    r"(?!\w|-\w)"
)

_NON_DIGIT = re.compile(r"\D")

_SSN = re.compile(
    r"(?<![\w-])(?!000|666|9)\d{3}(?P<s>[- ])(?!00)\d{2}(?P=s)(?!0000)\d{4}(?!\w|-\d)"
)

_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_IBAN_MIN, _IBAN_MAX = 15, 34

_SECRET_TOKENS = re.compile(
    "|".join(
        (
            r"\bsk-(?=[A-Za-z0-9_-]{0,200}?\d)[A-Za-z0-9_-]{20,}",
            r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
            r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",
            r"\bgithub_pat_[A-Za-z0-9_]{22,}",
            r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
            r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+",
            # An unterminated block is still a leaked key: redact to the end.
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"
            r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|.*\Z)",
        )
    ),
    re.DOTALL,
)

# Only the credential (group "value") is redacted: the scheme or key name stays
# readable so the redacted text still makes sense.
_BEARER = re.compile(
    r"\bbearer\s+(?P<value>(?=[A-Za-z0-9._~+/=-]{0,200}?\d)[A-Za-z0-9._~+/=-]{12,})", re.IGNORECASE
)
_ASSIGNMENT = re.compile(
    # No prefix is matched: only the value is redacted, so DB_PASSWORD= and
    # password= behave the same and the pattern starts on a literal.
    r"(?:password|passwd|passphrase|pwd|secret|api[_-]?key|access[_-]?key|"
    r"(?:access|auth|refresh|bearer|session)[_-]?token|private[_-]?key)"
    r"(?:[_-][\w-]{0,20})?[\"']?[ \t]*[:=][ \t]*"
    r"(?!\[[A-Z]+\])"
    r"(?:\"(?P<dq>[^\"\n]+)\"|'(?P<sq>[^'\n]+)'|(?P<bare>[^\s,;'\"]+))",
    re.IGNORECASE,
)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0 and digits.strip("0") != ""


def _iban_ok(compact: str) -> bool:
    if not _IBAN_MIN <= len(compact) <= _IBAN_MAX:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _digit_count(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


def _emails(text: str, start: int) -> Iterator[Finding]:
    for m in _EMAIL.finditer(text, start):
        yield Finding("email", m.start(), m.end())


def _digits_between(least: int, most: int) -> Callable[[str], bool]:
    return lambda s: least <= _digit_count(s) <= most


def _card_ok(candidate: str) -> bool:
    digits = _NON_DIGIT.sub("", candidate)
    return 13 <= len(digits) <= 19 and _luhn_ok(digits)


# Patterns whose matches must also pass a check, and the separators a match may be cut at.
_CHECKS: dict[re.Pattern[str], tuple[Callable[[str], bool], str]] = {
    _PHONE_INTL: (_digits_between(9, 15), " .-"),
    _PHONE_NANP: (_digits_between(9, 12), " .-"),
    _PHONE_TRUNK: (_digits_between(9, 12), " .-"),
    _CARD: (_card_ok, " -"),
    _IBAN: (lambda s: _iban_ok(s.replace(" ", "")), " "),
}


def finding_length(pattern: re.Pattern[str], matched: str) -> int:
    """How much of a match of ``pattern`` (one of :data:`PATTERNS`) is a candidate finding.

    The whole match, but for the patterns whose matches are checked (phones, cards,
    IBANs): a greedy match can swallow a neighbouring number ("card 4111 ... 1111 123",
    "+44 20 7946 0958 4111 ...") and fail, so it is cut at each separator, longest
    first, and the first cut that passes counts; 0 when none does.
    """
    if pattern not in _CHECKS:
        return len(matched)
    valid, seps = _CHECKS[pattern]
    cuts = (i for i in range(len(matched) - 1, 0, -1) if matched[i] in seps)
    return next((e for e in (len(matched), *cuts) if valid(matched[:e])), 0)


def _validated(pattern: re.Pattern[str], text: str, start: int, kind: str) -> Iterator[Finding]:
    # A match that fails its check resumes the search one character later rather than
    # at the match end, which finditer would skip past.
    pos = start
    while (m := pattern.search(text, pos)) is not None:
        end = finding_length(pattern, m.group())
        if end:
            yield Finding(kind, m.start(), m.start() + end)
            pos = m.start() + end
        else:
            pos = m.start() + 1


def _phones(text: str, start: int) -> Iterator[Finding]:
    for pattern in (_PHONE_INTL, _PHONE_NANP, _PHONE_TRUNK):
        yield from _validated(pattern, text, start, "phone")


def _cards(text: str, start: int) -> Iterator[Finding]:
    yield from _validated(_CARD, text, start, "card")


def _ssns(text: str, start: int) -> Iterator[Finding]:
    for m in _SSN.finditer(text, start):
        yield Finding("ssn", m.start(), m.end())


def _ibans(text: str, start: int) -> Iterator[Finding]:
    yield from _validated(_IBAN, text, start, "iban")


def _secrets(text: str, start: int) -> Iterator[Finding]:
    for m in _SECRET_TOKENS.finditer(text, start):
        yield Finding("secret", m.start(), m.end())
    for m in _BEARER.finditer(text, start):
        yield Finding("secret", m.start("value"), m.end("value"))
    for m in _ASSIGNMENT.finditer(text, start):
        group = next(g for g in ("dq", "sq", "bare") if m.group(g) is not None)
        yield Finding("secret", m.start(group), m.end(group))


_DETECTORS: tuple[Callable[[str, int], Iterator[Finding]], ...] = (
    _secrets,
    _cards,
    _ibans,
    _ssns,
    _emails,
    _phones,
)


PATTERNS: tuple[re.Pattern[str], ...] = (
    _SECRET_TOKENS,
    _BEARER,
    _ASSIGNMENT,
    _CARD,
    _IBAN,
    _SSN,
    _EMAIL,
    _PHONE_INTL,
    _PHONE_NANP,
    _PHONE_TRUNK,
)
"""Every expression the detectors match, so a stream can tell which text may still change."""


def find_pii(text: str, *, start: int = 0) -> list[Finding]:
    """Find personal data and credentials in ``text``.

    Overlapping candidates are resolved by keeping the longest one, then the
    earliest, then the one whose kind comes first in :data:`KINDS`, so every
    character belongs to at most one finding.

    Args:
        text: Any text, e.g. a user message or a model answer.
        start: Look for findings that start here or later; the text before it is
            still seen as context (a match must not continue a word).

    Returns:
        Non-overlapping findings, ordered by position.
    """
    candidates = [finding for detect in _DETECTORS for finding in detect(text, start)]
    candidates.sort(key=lambda f: (f.start - f.end, f.start, _PRIORITY[f.kind]))
    kept: list[Finding] = []  # sorted by start, pairwise disjoint
    for cand in candidates:
        i = bisect.bisect_left(kept, cand.start, key=lambda f: f.start)
        if i > 0 and kept[i - 1].end > cand.start:
            continue
        if i < len(kept) and kept[i].start < cand.end:
            continue
        kept.insert(i, cand)
    return kept


def redact(text: str) -> tuple[str, list[str]]:
    """Replace each finding of :func:`find_pii` with its placeholder.

    Args:
        text: The text to clean.

    Returns:
        The redacted text (e.g. ``"mail [EMAIL]"``) and the sorted, unique kinds
        that were found.
    """
    findings = find_pii(text)
    parts: list[str] = []
    pos = 0
    for finding in findings:
        parts.append(text[pos : finding.start])
        parts.append(finding.placeholder)
        pos = finding.end
    parts.append(text[pos:])
    return "".join(parts), sorted({f.kind for f in findings})
