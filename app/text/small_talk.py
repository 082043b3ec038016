"""Small talk: greetings, thanks, "how are you" and goodbyes, and a short reply to each.

A message counts only when it is small talk as a whole ("hi!", "thanks a lot",
"hello, how are you?"); "hi, what is WAL mode?" is a question. Deterministic and pure.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["is_small_talk", "small_talk_reply"]

_NAME: Final = r"(?:\s+(?:there|all|everyone|ragent|bot|friend|again))?"
_GREETING: Final = (
    r"(?:hi|hello|hey|hiya|howdy|greetings|yo|good\s+(?:morning|afternoon|evening|day))" + _NAME
)
_HOW_ARE_YOU: Final = (
    r"(?:how\s+are\s+(?:you|u)(?:\s+doing)?(?:\s+today)?"
    r"|how'?s\s+it\s+going|how\s+is\s+it\s+going|what'?s\s+up|how\s+do\s+you\s+do)"
)
_THANKS: Final = (
    r"(?:(?:thanks|thank\s+you|thx|ty|cheers|many\s+thanks)"
    r"(?:\s+(?:so|very)\s+much|\s+a\s+lot|\s+again|\s+for\s+(?:the|your)\s+help)?"
    r"|(?:great|perfect|awesome|nice|cool|ok(?:ay)?),?\s+thanks(?:\s+a\s+lot)?)"
)
_BYE: Final = r"(?:bye|goodbye|bye\s+bye|see\s+you(?:\s+later)?|good\s*night|take\s+care)"
_SEP: Final = r"[\s!.,?;:)(\-]*"


def _whole(*parts: str) -> re.Pattern[str]:
    body = _SEP.join(f"(?:{part})?" for part in parts)
    return re.compile(rf"^{_SEP}{body}{_SEP}$", re.IGNORECASE)


_PHRASES: Final = {
    "how_are_you": re.compile(rf"\b{_HOW_ARE_YOU}\b", re.IGNORECASE),
    "bye": re.compile(rf"^{_SEP}(?:{_THANKS}{_SEP})?{_BYE}\b", re.IGNORECASE),
    "thanks": re.compile(rf"^{_SEP}{_THANKS}\b", re.IGNORECASE),
    "greeting": re.compile(rf"^{_SEP}{_GREETING}\b", re.IGNORECASE),
}
_WHOLE: Final = _whole(_GREETING, _HOW_ARE_YOU, _THANKS, _BYE)

_REPLIES: Final = {
    "how_are_you": "I'm doing well, thanks for asking! What would you like to know?",
    "bye": "Goodbye!",
    "thanks": "You're welcome!",
    "greeting": "Hello! Ask me about your documents, or for a calculation, a unit "
    "conversion or the time.",
}


def is_small_talk(message: str) -> bool:
    """Tell whether a whole message is small talk that needs no documents.

    Args:
        message: The user's message.

    Returns:
        True for greetings, thanks, "how are you" and goodbyes (alone or combined, with
        punctuation); False for anything that asks for something else, and for an
        empty message.
    """
    text = message.strip().replace("\u2019", "'")
    has_word = re.search(r"\w", text) is not None
    return has_word and len(text) <= 80 and _WHOLE.match(text) is not None


def small_talk_reply(message: str) -> str | None:
    """Return a short friendly reply to small talk, or None when the message is not.

    Args:
        message: The user's message.

    Returns:
        One sentence that answers the greeting, thanks, "how are you" or goodbye;
        ``None`` when :func:`is_small_talk` is False.
    """
    if not is_small_talk(message):
        return None
    text = message.strip().replace("\u2019", "'")
    for kind, pattern in _PHRASES.items():
        if pattern.search(text):
            return _REPLIES[kind]
    return _REPLIES["greeting"]
