"""Token counting with a real tokenizer where one is known.

:func:`counter_for` picks a chat model's counter in this order: a configured
``tokenizer.json`` (or Hugging Face repo id) found locally, the model's own repo in the
local Hugging Face cache, tiktoken for OpenAI model names, and last the stated fallback
of about 4 characters per token, which is logged once.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import tiktoken
from huggingface_hub import try_to_load_from_cache
from tokenizers import Tokenizer

__all__ = [
    "ApproxCounter",
    "HFTokenCounter",
    "TiktokenCounter",
    "TokenCounter",
    "counter_for",
    "default_counter",
]

log = logging.getLogger(__name__)

_CACHED_COUNTS = 4096
"""Texts whose counts each tokenizer counter keeps. A turn counts the same texts several
times (the history in the memory nodes and in the prompt budget) and the same passages on
many turns, and a tokenizer takes about 0.14 ms for 400 characters."""


class TokenCounter(Protocol):
    """Counts tokens in text."""

    name: str

    def count(self, text: str) -> int:
        """Return the number of tokens in ``text``."""
        ...


class _RememberingCounter:
    """A tokenizer's counter that remembers the counts of recent texts."""

    def __init__(self) -> None:
        self._cached = lru_cache(maxsize=_CACHED_COUNTS)(self._count)

    def count(self, text: str) -> int:
        """Return the number of tokens in ``text``."""
        return self._cached(text)

    def _count(self, text: str) -> int:
        raise NotImplementedError


class HFTokenCounter(_RememberingCounter):
    """Counts word pieces with a Hugging Face ``tokenizer.json`` (no special tokens)."""

    def __init__(self, tokenizer_file: Path, name: str) -> None:
        """Load the tokenizer from a local file."""
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.name = name
        super().__init__()

    def _count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)


class ApproxCounter:
    """The stated fallback when a model's tokenizer is unknown: 4 characters per token."""

    name = "approx-4-chars"

    def count(self, text: str) -> int:
        """Return ``ceil(len(text) / 4)``."""
        return (len(text) + 3) // 4


@lru_cache(maxsize=1)
def default_counter() -> TokenCounter:
    """Return the counter of the packaged embedding model's tokenizer."""
    from app.retrieval.embedding.embedder import local_model_path

    return HFTokenCounter(local_model_path() / "tokenizer.json", "all-MiniLM-L6-v2")


class TiktokenCounter(_RememberingCounter):
    """Counts BPE tokens with an OpenAI tiktoken encoding (special tokens as plain text)."""

    def __init__(self, encoding: tiktoken.Encoding) -> None:
        """Wrap a loaded encoding."""
        self._encoding = encoding
        self.name = f"tiktoken:{encoding.name}"
        super().__init__()

    def _count(self, text: str) -> int:
        return len(self._encoding.encode(text, disallowed_special=()))


def _local_tokenizer(ref: str) -> Path | None:
    path = Path(ref).expanduser()
    try:
        if path.is_dir():
            path = path / "tokenizer.json"
        if path.is_file():
            return path
    except OSError:  # a model name that is no possible path (too long, say)
        return None
    if ref.count("/") == 1 and not ref.startswith(("/", ".", "~")):
        cached = try_to_load_from_cache(ref, "tokenizer.json")
        if isinstance(cached, str):
            return Path(cached)
    return None


@lru_cache(maxsize=32)
def counter_for(model: str, tokenizer: str | None = None) -> TokenCounter:
    """Return the token counter of a chat model.

    Args:
        model: The model name sent to the server, e.g. ``Qwen/Qwen2.5-7B-Instruct``.
        tokenizer: A ``tokenizer.json`` file, a folder holding one, or a Hugging Face repo
            id; it must already be on disk, nothing is downloaded from a model hub.

    Returns:
        The model's own tokenizer when one is found, else :class:`ApproxCounter`.
    """
    for ref in (tokenizer, model):
        if ref and (path := _local_tokenizer(ref)) is not None:
            return HFTokenCounter(path, ref)
    try:
        encoding_name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        encoding_name = None
    if encoding_name is not None:
        try:
            return TiktokenCounter(tiktoken.get_encoding(encoding_name))
        except Exception as exc:  # noqa: BLE001 - no cached file and no network: fall back
            log.warning("tiktoken %s unavailable (%s)", encoding_name, type(exc).__name__)
    log.warning(
        "no tokenizer found for model %r; token budgets count about 4 characters per token",
        model,
    )
    return ApproxCounter()
