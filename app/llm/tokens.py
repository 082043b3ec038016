"""Token counting with a real tokenizer where one is known."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Protocol

from tokenizers import Tokenizer

__all__ = ["ApproxCounter", "HFTokenCounter", "TokenCounter", "default_counter"]


class TokenCounter(Protocol):
    """Counts tokens in text."""

    name: str

    def count(self, text: str) -> int:
        """Return the number of tokens in ``text``."""
        ...


class HFTokenCounter:
    """Counts with a Hugging Face ``tokenizer.json`` (no special tokens)."""

    def __init__(self, tokenizer_file: Path, name: str) -> None:
        """Load the tokenizer from a local file."""
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.name = name

    def count(self, text: str) -> int:
        """Return the number of word pieces in ``text``."""
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
    from app.retrieval.embedder import local_model_path

    return HFTokenCounter(local_model_path() / "tokenizer.json", "all-MiniLM-L6-v2")
