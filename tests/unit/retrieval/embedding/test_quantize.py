"""The int8 local embedder (the default): close to float32, ranking as it does, cached
apart from it, and quiet while it quantizes."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from app.retrieval.embedding.embedder import LocalEmbedder, local_model_path, make_embedder
from app.retrieval.embedding.encoder_cache import entry_dir, load_encoder
from app.retrieval.embedding.onnx_encoder import OnnxEncoder
from app.settings import EmbedSettings

TOY = Path(__file__).parents[3] / "data" / "beir-toy"
TEXTS = [
    "How often does SQLite run a checkpoint in WAL mode?",
    "VACUUM",
    "word " * 400,
    "Readers do not block writers, and writers do not block readers.",
    "ünïcödé, emoji ✓ and CJK 東京",
    "a",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache holding both precisions of the packaged model."""
    path = tmp_path_factory.mktemp("encoder-cache")
    load_encoder(local_model_path(), path, "float32")
    load_encoder(local_model_path(), path, "int8")
    return path


@pytest.fixture(scope="module")
def encoders(cache: Path) -> tuple[OnnxEncoder, OnnxEncoder]:
    """(float32, int8), loaded from the cache."""
    pair = tuple(load_encoder(local_model_path(), cache, p) for p in ("float32", "int8"))
    assert all(isinstance(e, OnnxEncoder) for e in pair)
    return pair  # type: ignore[return-value]


def test_the_default_embedder_is_int8(cache: Path) -> None:
    assert EmbedSettings().precision == "int8"
    embedder = make_embedder(EmbedSettings(cache_dir=cache))
    assert isinstance(embedder, LocalEmbedder)
    embedder.embed_query("load the model")
    assert isinstance(embedder._encoder, OnnxEncoder)
    assert embedder._encoder.precision == "int8"


def toy_texts() -> list[str]:
    corpus = [json.loads(line) for line in (TOY / "corpus.jsonl").read_text().splitlines()]
    queries = [
        json.loads(line)["text"] for line in (TOY / "queries.jsonl").read_text().splitlines()
    ]
    return [f"{d['title']} {d['text']}" for d in corpus] + queries


def test_int8_rows_are_unit_vectors_close_to_float32(
    encoders: tuple[OnnxEncoder, OnnxEncoder],
) -> None:
    texts = TEXTS + toy_texts()
    full, small = (e.encode(texts, 4) for e in encoders)
    assert small.shape == full.shape and small.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(small, axis=1), 1.0, atol=1e-5)
    cosines = (full * small).sum(axis=1)
    # app/retrieval/embedding/quantize.py: 0.993 on average on the bundled BEIR subsets.
    assert cosines.mean() >= 0.99 and cosines.min() > 0.97, cosines
    assert not np.allclose(full, small, atol=1e-3)  # the weights really are different


def test_int8_rows_are_close_to_sentence_transformers_own(
    encoders: tuple[OnnxEncoder, OnnxEncoder],
) -> None:
    golden = json.loads((TOY.parent / "minilm_golden.json").read_text(encoding="utf-8"))
    expected = np.asarray(golden["vectors"], np.float32)
    cosines = (encoders[1].encode(golden["texts"], 4) * expected).sum(axis=1)
    assert cosines.mean() >= 0.985 and cosines.min() > 0.97, cosines


def test_int8_ranks_the_toy_set_as_float32_does(
    encoders: tuple[OnnxEncoder, OnnxEncoder],
) -> None:
    corpus = [json.loads(line) for line in (TOY / "corpus.jsonl").read_text().splitlines()]
    lines = (TOY / "queries.jsonl").read_text().splitlines()
    queries = [json.loads(line)["text"] for line in lines]
    passages = [f"{d['title']} {d['text']}" for d in corpus]
    tops = []
    for encoder in encoders:
        scores = encoder.encode(queries, 8, 1) @ encoder.encode(passages, 8).T
        tops.append(np.argsort(-scores, axis=1)[:, :3])
    np.testing.assert_array_equal(tops[0][:, 0], tops[1][:, 0])  # the same best passage
    overlap = [len(set(a) & set(b)) for a, b in zip(tops[0], tops[1], strict=True)]
    assert sum(overlap) >= 0.9 * 3 * len(queries), overlap


def test_the_int8_model_is_a_quarter_of_the_size_and_records_its_precision(cache: Path) -> None:
    full, small = (entry_dir(local_model_path(), cache, p) for p in ("float32", "int8"))
    assert full != small
    size = (small / "model.onnx").stat().st_size
    assert size < 0.3 * (full / "model.onnx").stat().st_size
    assert json.loads((small / "meta.json").read_text())["precision"] == "int8"
    assert (small / "source").read_text().splitlines() == [
        str(local_model_path().resolve()),
        "int8",
    ]
    assert OnnxEncoder.load(small).precision == "int8"
    assert OnnxEncoder.load(full).precision == "float32"


def test_both_precisions_stay_in_the_cache_and_an_older_entry_is_replaced(
    cache: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    full, small = (entry_dir(local_model_path(), copy, p) for p in ("float32", "int8"))
    older = copy / "encoders" / ("0" * 32)  # saved before the precision was recorded
    shutil.copytree(small, older)
    (older / "source").write_text(str(local_model_path().resolve()))
    shutil.rmtree(small)

    load_encoder(local_model_path(), copy, "int8")

    assert sorted(p.name for p in (copy / "encoders").iterdir()) == sorted([full.name, small.name])


def test_an_unknown_precision_in_an_entry_is_refused(cache: Path, tmp_path: Path) -> None:
    entry = tmp_path / "entry"
    shutil.copytree(entry_dir(local_model_path(), cache, "int8"), entry)
    meta = json.loads((entry / "meta.json").read_text())
    (entry / "meta.json").write_text(json.dumps({**meta, "precision": "int4"}))
    with pytest.raises(ValueError, match="unexpected encoder settings"):
        OnnxEncoder.load(entry)


def test_an_int8_row_does_not_depend_on_its_batch(
    encoders: tuple[OnnxEncoder, OnnxEncoder],
) -> None:
    small = encoders[1]
    together = small.encode(TEXTS, 64)
    for i, text in enumerate(TEXTS):
        np.testing.assert_array_equal(small.encode([text], 1)[0], together[i])


def test_concurrent_int8_queries_get_the_rows_they_get_alone(cache: Path) -> None:
    embedder = LocalEmbedder(cache_dir=cache)
    texts = [f"question number {i} about write-ahead logging" for i in range(12)]
    with ThreadPoolExecutor(12) as pool:
        vectors = list(pool.map(embedder.embed_query, texts))
    assert max(embedder._queries.batches) > 1  # some queries shared a pass
    np.testing.assert_array_equal(np.stack(vectors), embedder.embed_documents(texts))
