"""A turn's replies on their way to the client, piece by piece: redacted, leak-checked, capped.

The output guard (:func:`app.nodes.guard.guard_output`) checks the whole answer once the
model is done; a stream sends the answer before that. :class:`ReplyGuard` applies the
same checks to one streamed reply as it comes: :class:`~app.safety.stream.StreamRedactor`
holds back what may still turn into personal data or a secret, and
:class:`~app.safety.leak.LeakWatch` the words that may be the start of the system prompt.
:class:`TokenGuard` runs one per reply over a turn's :class:`~app.answer.Token` stream.
"""

from __future__ import annotations

from collections.abc import Iterator

from app import prompts
from app.answer import Token
from app.safety.leak import LeakWatch, leak_check
from app.safety.stream import StreamRedactor

__all__ = ["ReplyGuard", "TokenGuard"]


class ReplyGuard:
    """Guards one streamed reply.

    Joined, the pieces it returns are the reply as the output guard leaves it (redacted,
    at most ``max_chars`` long), up to where the leak check tripped if it did.
    """

    def __init__(self, *, prompt: str, max_chars: int) -> None:
        """Guard a new reply.

        Args:
            prompt: The run's system prompt (before its placeholders are filled).
            max_chars: The longest reply sent; the rest is dropped.
        """
        self._redactor = StreamRedactor()
        self._watch = LeakWatch(leak_check(prompt))
        self._left = max_chars

    @property
    def tripped(self) -> bool:
        """The reply repeated the system prompt; nothing more of it is sent."""
        return self._watch.tripped

    def feed(self, piece: str) -> str:
        """Add the next piece of the reply; return what may be sent now."""
        return self._cap(self._watch.feed(self._redactor.feed(piece)))

    def close(self) -> str:
        """End the reply; return the rest that may be sent."""
        return self._cap(self._watch.feed(self._redactor.flush(), last=True))

    def _cap(self, text: str) -> str:
        text = text[: self._left]
        self._left -= len(text)
        return text


class TokenGuard:
    """Guards every reply of one turn's token stream, one :class:`ReplyGuard` per reply.

    A reply that trips the leak check ends with a ``refusal`` token carrying
    :data:`app.prompts.LEAKED_PROMPT`, the text the output guard gives the answer.
    """

    def __init__(self, *, prompt: str, max_chars: int) -> None:
        """Guard a turn run with the system prompt ``prompt``; replies cap at ``max_chars``."""
        self._prompt = prompt
        self._max_chars = max_chars
        self._reply: ReplyGuard | None = None
        self._message_id = ""
        self._refused = False

    def feed(self, message_id: str, text: str) -> Iterator[Token]:
        """Take a piece of a reply; yield the tokens that may be sent now."""
        if self._reply is None or message_id != self._message_id:
            yield from self.close()
            self._reply = ReplyGuard(prompt=self._prompt, max_chars=self._max_chars)
            self._message_id, self._refused = message_id, False
        yield from self._send(self._reply.feed(text))

    def restart(self, message_id: str) -> Token:
        """The model's stream broke off: drop what is held of the reply; the restart token."""
        self._reply = None
        return Token("", message_id, restart=True)

    def close(self) -> Iterator[Token]:
        """End the current reply; yield the rest of it that may be sent."""
        if self._reply is not None:
            yield from self._send(self._reply.close())
            self._reply = None

    def _send(self, text: str) -> Iterator[Token]:
        if text:
            yield Token(text, self._message_id)
        if self._reply is not None and self._reply.tripped and not self._refused:
            self._refused = True
            yield Token(prompts.LEAKED_PROMPT, self._message_id, refusal=True)
