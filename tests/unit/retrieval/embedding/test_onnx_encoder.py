"""The MiniLM graph built from the weights without torch (float32), run by ONNX Runtime, gives
sentence-transformers' own vectors in order. The reference vectors are in
tests/data/minilm_golden.json (tests/data/make_minilm_golden.py wrote them with the torch
extra). The int8 default is tested in test_quantize.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from app.retrieval.embedding.bert_onnx import UnsupportedModelError, inspect
from app.retrieval.embedding.embedder import LocalEmbedder, local_model_path
from app.retrieval.embedding.onnx_encoder import OnnxEncoder

GOLDEN = json.loads(
    (Path(__file__).parents[3] / "data" / "minilm_golden.json").read_text(encoding="utf-8")
)
TEXTS: list[str] = GOLDEN["texts"]
EXPECTED = np.asarray(GOLDEN["vectors"], np.float32)
ATOL = 1e-5


@pytest.fixture(scope="module", params=["built", "loaded"])
def embedder(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> LocalEmbedder:
    """Built in this process (an empty cache), or loaded from a cache another one filled."""
    cache = tmp_path_factory.mktemp("encoder-cache")
    if request.param == "loaded":
        LocalEmbedder(precision="float32", cache_dir=cache).embed_query("fill the cache")
    entries = list((cache / "encoders").glob("*")) if request.param == "loaded" else []
    embedder = LocalEmbedder(batch_size=4, precision="float32", cache_dir=cache)
    embedder.embed_documents(["load"])
    assert list((cache / "encoders").glob("*")) == entries or request.param == "built"
    return embedder


def cosines(got: Any, expected: Any) -> Any:
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    norms = np.linalg.norm(got, axis=-1) * np.linalg.norm(expected, axis=-1)
    return (got * expected).sum(axis=-1) / norms


def test_the_golden_texts_cover_the_window_and_odd_input() -> None:
    assert GOLDEN["max_seq_length"] == 256
    assert max(GOLDEN["tokens"]) > 256  # one text is cut at the window
    assert "" in TEXTS and any(not t.isascii() for t in TEXTS)
    assert EXPECTED.shape == (len(TEXTS), 384)


def test_the_default_model_is_built_with_normalisation(embedder: LocalEmbedder) -> None:
    assert isinstance(embedder._encoder, OnnxEncoder)
    assert embedder._encoder.normalize and embedder._encoder.precision == "float32"


def test_batches_with_padding_match_sentence_transformers_in_input_order(
    embedder: LocalEmbedder,
) -> None:
    got = embedder.embed_documents(TEXTS)  # batches of 4, longest first, then put back
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    np.testing.assert_allclose(got, EXPECTED, atol=ATOL)
    assert cosines(got, EXPECTED).min() >= 0.99999


@pytest.mark.parametrize("index", range(len(TEXTS)), ids=[t[:20] for t in TEXTS])
def test_a_lone_query_matches_sentence_transformers(embedder: LocalEmbedder, index: int) -> None:
    got = embedder.embed_query(TEXTS[index])
    np.testing.assert_allclose(got, EXPECTED[index], atol=ATOL)
    assert cosines(got, EXPECTED[index]) >= 0.99999


def test_the_sentence_transformers_quickstart_similarities(embedder: LocalEmbedder) -> None:
    # sentence-transformers' quickstart prints these for all-MiniLM-L6-v2.
    weather, sunny, stadium = embedder.embed_documents(
        ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    )
    assert float(weather @ sunny) == pytest.approx(0.6660, abs=5e-4)
    assert float(weather @ stadium) == pytest.approx(0.1046, abs=5e-4)


def test_concurrent_callers_get_their_own_rows(embedder: LocalEmbedder) -> None:
    encoder = embedder._encoder
    assert isinstance(encoder, OnnxEncoder)
    n = len(TEXTS)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: encoder.encode([TEXTS[i % n]], 8, 1), range(3 * n)))
    for i, row in enumerate(results):
        np.testing.assert_allclose(row[0], EXPECTED[i % n], atol=ATOL)


def test_the_graph_takes_dynamic_batches_of_int64_ids_and_gives_one_row_each() -> None:
    encoder = OnnxEncoder.from_model_dir(local_model_path())
    model = encoder._model
    assert isinstance(model, bytes)
    graph = onnx.load_from_string(model).graph
    inputs = {i.name: i.type.tensor_type for i in graph.input}
    assert list(inputs) == ["input_ids", "attention_mask", "token_type_ids"]
    for tensor in inputs.values():
        assert tensor.elem_type == onnx.TensorProto.INT64
        assert [d.dim_param for d in tensor.shape.dim] == ["batch", "tokens"]
    [output] = graph.output
    assert output.name == "embedding"
    assert [d.dim_param or d.dim_value for d in output.type.tensor_type.shape.dim] == ["batch", 384]
    assert {n.op_type for n in graph.node} >= {"Erf", "LayerNormalization", "Softmax", "ReduceL2"}


def copy_model(tmp_path: Path) -> Path:
    model = tmp_path / "model"
    shutil.copytree(local_model_path(), model)
    return model


def edit_json(path: Path, **changes: object) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.mark.parametrize(
    ("file", "changes", "reason"),
    [
        ("1_Pooling/config.json", {"pooling_mode_cls_token": True}, "pooling"),
        ("1_Pooling/config.json", {"pooling_mode": "max"}, "pooling"),
        ("config.json", {"model_type": "roberta"}, "model_type 'roberta'"),
        ("config.json", {"hidden_act": "gelu_new"}, "hidden_act 'gelu_new'"),
        ("config.json", {"position_embedding_type": "relative_key"}, "position_embedding_type"),
        ("sentence_bert_config.json", {"do_lower_case": True}, "lowercases"),
    ],
)
def test_a_model_of_another_shape_is_refused_with_the_reason(
    tmp_path: Path, file: str, changes: dict[str, object], reason: str
) -> None:
    model = copy_model(tmp_path)
    edit_json(model / file, **changes)
    with pytest.raises(UnsupportedModelError, match=reason):
        OnnxEncoder.from_model_dir(model)


def test_a_model_without_safetensors_weights_is_refused(tmp_path: Path) -> None:
    model = copy_model(tmp_path)
    (model / "model.safetensors").unlink()
    with pytest.raises(UnsupportedModelError, match="no model.safetensors"):
        inspect(model)


def test_without_a_normalize_module_the_rows_are_the_plain_means(tmp_path: Path) -> None:
    model = copy_model(tmp_path)
    modules = json.loads((model / "modules.json").read_text())
    (model / "modules.json").write_text(json.dumps(modules[:2]))
    encoder = OnnxEncoder.from_model_dir(model)
    assert not encoder.normalize
    rows = encoder.encode(TEXTS, 4)
    assert not np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-3)
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    np.testing.assert_allclose(unit, EXPECTED, atol=ATOL)


def test_building_prints_nothing(tmp_path: Path) -> None:
    # A fresh process and an empty cache: the graph is built and quantized here.
    script = (
        "from pathlib import Path\n"
        "from app.retrieval.embedding.embedder import LocalEmbedder\n"
        f"LocalEmbedder(cache_dir=Path({str(tmp_path)!r})).embed_query('hello')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert (done.stdout, done.stderr) == ("", "")


def test_each_thread_count_gets_its_own_session(embedder: LocalEmbedder) -> None:
    encoder = embedder._encoder
    assert isinstance(encoder, OnnxEncoder)
    one, two = encoder.session(1), encoder.session(2)
    assert one.get_session_options().intra_op_num_threads == 1
    assert two.get_session_options().intra_op_num_threads == 2
    assert encoder.session(1) is one  # created once, then reused
    np.testing.assert_allclose(encoder.encode(TEXTS, 4, 2), encoder.encode(TEXTS, 4, 1), atol=1e-6)
