"""Which tokenizer counts a chat model's budget, and the stated fallback."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import tiktoken

from app.llm.tokens import ApproxCounter, HFTokenCounter, TiktokenCounter, counter_for
from app.retrieval.embedding.embedder import local_model_path

TEXT = "Readers do not block writers in WAL mode."


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    counter_for.cache_clear()


@pytest.fixture
def tokenizer_json() -> Path:
    return local_model_path() / "tokenizer.json"


def test_a_configured_tokenizer_file_is_used(tokenizer_json: Path) -> None:
    counter = counter_for("any-model", str(tokenizer_json))
    assert isinstance(counter, HFTokenCounter)
    assert counter.count(TEXT) == 9  # word pieces; characters / 4 would say 11
    assert counter_for("any-model", str(tokenizer_json.parent)).count(TEXT) == 9


def test_a_model_in_the_local_hugging_face_cache_is_found(
    tokenizer_json: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "models--acme--chat-7b"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    shutil.copy(tokenizer_json, snapshot / "tokenizer.json")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    counter = counter_for("acme/chat-7b")
    assert isinstance(counter, HFTokenCounter) and counter.name == "acme/chat-7b"


def tiny_encoding() -> tiktoken.Encoding:
    """A byte-level BPE with one merge, built here: no encoding file to download."""
    ranks = {bytes([b]): b for b in range(256)} | {b"ab": 256}
    return tiktoken.Encoding(
        name="tiny", pat_str=r"\S+|\s+", mergeable_ranks=ranks, special_tokens={}
    )


def test_tiktoken_counts_bpe_tokens() -> None:
    counter = TiktokenCounter(tiny_encoding())
    assert counter.name == "tiktoken:tiny"
    assert counter.count("abab c") == 4  # "ab" "ab" " " "c"
    assert counter.count("<|endoftext|>") > 1  # special tokens are plain text here


def test_an_unknown_model_falls_back_to_four_characters_a_token_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="app.llm.tokens"):
        counter = counter_for("mystery-model")
    assert isinstance(counter, ApproxCounter) and counter.name == "approx-4-chars"
    assert "no tokenizer found for model 'mystery-model'" in caplog.text
    assert counter.count("x" * 9) == 3


@pytest.mark.parametrize("kind", ["hf", "tiktoken"])
def test_a_recent_text_is_counted_once(
    kind: str, tokenizer_json: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter: HFTokenCounter | TiktokenCounter = (
        HFTokenCounter(tokenizer_json, "minilm")
        if kind == "hf"
        else TiktokenCounter(tiny_encoding())
    )
    inner = counter._tokenizer if isinstance(counter, HFTokenCounter) else counter._encoding
    calls: list[str] = []
    real = inner.encode
    monkeypatch.setattr(inner, "encode", lambda text, **kw: calls.append(text) or real(text, **kw))
    first = counter.count(TEXT)
    assert counter.count(TEXT) == first and counter.count("other text") > 0
    assert calls == [TEXT, "other text"]  # the repeated text was not tokenized again


def test_a_model_name_that_is_no_possible_path_falls_back() -> None:
    assert isinstance(counter_for("x " * 200), ApproxCounter)  # longer than a file name
