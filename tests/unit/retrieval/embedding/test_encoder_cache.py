"""The embedding model's graph is built once without torch and saved; later processes load
it with onnxruntime and tokenizers alone; a changed model, a broken entry, a read-only cache
and a model the builder does not cover are handled."""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.retrieval.embedding import encoder_cache
from app.retrieval.embedding.embedder import local_model_path
from app.retrieval.embedding.encoder_cache import (
    SentenceTransformerEncoder,
    TorchExtraMissingError,
    entry_dir,
    load_encoder,
)
from app.retrieval.embedding.onnx_encoder import OnnxEncoder

TEXTS = ["How often does SQLite run a checkpoint in WAL mode?", "VACUUM", "a"]

HEAVY = sorted({"sentence_transformers", "torch", "transformers", "onnx", "safetensors"})
# Embeds TEXTS through LocalEmbedder with the cache given as argv[1]; prints the rows and
# which of HEAVY were imported.
SCRIPT = f"""
import json, sys
from pathlib import Path
from app.retrieval.embedding.embedder import LocalEmbedder
rows = LocalEmbedder(cache_dir=Path(sys.argv[1])).embed_documents(json.loads(sys.argv[2]))
heavy = sorted(set({HEAVY!r}) & set(sys.modules))
print(json.dumps(dict(rows=rows.tolist(), heavy=heavy)))
"""


def embed_in_a_new_process(cache: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(cache), json.dumps(TEXTS)],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """A cache that a first process filled, and what that process embedded."""
    cache = tmp_path_factory.mktemp("cache")
    return cache, embed_in_a_new_process(cache)


def test_a_first_process_builds_and_saves_the_model_without_torch(
    filled: tuple[Path, dict[str, object]],
) -> None:
    cache, first = filled
    assert first["heavy"] == ["onnx", "safetensors"]  # the builder and its weights reader
    entry = entry_dir(local_model_path(), cache)
    assert sorted(p.name for p in entry.iterdir()) == [
        "meta.json",
        "model.onnx",
        "source",
        "tokenizer.json",
    ]
    assert (entry / "source").read_text() == f"{local_model_path().resolve()}\nint8"
    assert json.loads((entry / "meta.json").read_text()) == {
        "max_length": 256,
        "normalize": True,
        "precision": "int8",
    }
    # Nothing half-written is left beside the entry.
    assert [p.name for p in (cache / "encoders").iterdir()] == [entry.name]


def test_a_later_process_loads_it_without_the_builder(
    filled: tuple[Path, dict[str, object]],
) -> None:
    cache, first = filled
    later = embed_in_a_new_process(cache)
    assert later["heavy"] == []
    np.testing.assert_allclose(later["rows"], first["rows"], atol=1e-6)


def test_the_key_follows_the_model_files(tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(local_model_path(), model, ignore=shutil.ignore_patterns("*.safetensors"))
    before = entry_dir(model, tmp_path)
    assert entry_dir(model, tmp_path) == before
    config = model / "config.json"
    config.write_text(config.read_text() + "\n")
    assert entry_dir(model, tmp_path) != before


@pytest.mark.parametrize("library", ["onnx", "safetensors", "onnxruntime", "tokenizers"])
def test_the_key_follows_the_builder_and_runtime_versions(
    monkeypatch: pytest.MonkeyPatch, library: str
) -> None:
    before = entry_dir(local_model_path(), Path("cache"))
    real = encoder_cache._version
    monkeypatch.setattr(
        encoder_cache, "_version", lambda name: "0.0.0" if name == library else real(name)
    )
    assert entry_dir(local_model_path(), Path("cache")) != before


@pytest.mark.parametrize(
    "broken", ["model.onnx", "tokenizer.json", "meta.json"], ids=["model", "tokenizer", "meta"]
)
def test_a_broken_entry_is_rebuilt(
    filled: tuple[Path, dict[str, object]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    broken: str,
) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(filled[0], cache)
    entry = entry_dir(local_model_path(), cache)
    (entry / broken).write_bytes(b"{not what save() wrote")
    with caplog.at_level(logging.WARNING, encoder_cache.__name__):
        encoder = load_encoder(local_model_path(), cache)
    assert isinstance(encoder, OnnxEncoder)
    assert "rebuilding the cached embedding model" in caplog.text
    np.testing.assert_allclose(encoder.encode(TEXTS, 8), filled[1]["rows"], atol=1e-6)
    assert isinstance(OnnxEncoder.load(entry), OnnxEncoder)  # saved anew


def test_a_cache_path_that_is_a_file_still_embeds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    cache.write_text("a file where the cache directory should be")
    with caplog.at_level(logging.WARNING, encoder_cache.__name__):
        encoder = load_encoder(local_model_path(), cache)
    assert isinstance(encoder, OnnxEncoder)
    assert encoder.encode(TEXTS, 8).shape == (3, 384)
    assert "not writable" in caplog.text


def test_a_new_entry_replaces_the_older_ones_of_its_model(
    filled: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(filled[0], cache)
    entry = entry_dir(local_model_path(), cache)
    older = cache / "encoders" / ("0" * 32)  # as an earlier library or save format keyed it
    shutil.copytree(entry, older)
    foreign = cache / "encoders" / ("f" * 32)  # another model's entry
    foreign.mkdir()
    (foreign / "source").write_text("/elsewhere/another-model")
    shutil.rmtree(entry)  # so that this load builds and saves anew

    load_encoder(local_model_path(), cache)

    assert sorted(p.name for p in (cache / "encoders").iterdir()) == sorted(
        [entry.name, foreign.name]
    )


def test_a_model_the_builder_does_not_cover_needs_the_torch_extra(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With the extra, sentence-transformers embeds it; without, one line says what to install.

    Which of the two runs depends on the environment: the default install has no torch.
    """
    model = tmp_path / "cls-pooled"
    shutil.copytree(local_model_path(), model)
    pooling = model / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config.update(pooling_mode_cls_token=True, pooling_mode_mean_tokens=False)
    pooling.write_text(json.dumps(config))
    cache = tmp_path / "cache"

    if importlib.util.find_spec("sentence_transformers") is None:
        with pytest.raises(TorchExtraMissingError) as refused:
            load_encoder(model, cache)
        message = str(refused.value)
        assert "pooling is not the mean" in message
        assert "pip install -e '.[torch]'" in message and "\n" not in message
    else:
        with caplog.at_level(logging.WARNING, encoder_cache.__name__):
            encoder = load_encoder(model, cache)
        assert isinstance(encoder, SentenceTransformerEncoder)
        assert "using sentence-transformers" in caplog.text
        rows = encoder.encode(TEXTS, 8)
        expected = encoder.model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
        np.testing.assert_allclose(rows, expected, atol=1e-6)
    assert not (cache / "encoders").exists() or not any((cache / "encoders").iterdir())
