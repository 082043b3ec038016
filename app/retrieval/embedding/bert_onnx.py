"""The ONNX graph of a BERT sentence-transformers model, built from its weights without torch.

A sentence-transformers model directory holds a Hugging Face transformer (``config.json``
and ``model.safetensors``), a pooling module and an optional normalisation module. For
the common shape (``BertModel``, mean pooling, optional normalisation) this module writes
the whole forward pass as one ONNX graph: the word, position and token-type embeddings
and their LayerNorm; each encoder layer's self-attention (padding masked out), its
exact Erf-based GELU feed-forward block and their post-LayerNorms; mean pooling over the
non-padding tokens; and L2 normalisation when the model has it. The weights are read
with ``safetensors.numpy``, and the graph is made with ``onnx.helper``.

It is written by hand because no library builds this graph without torch:
``torch.onnx.export`` and its wrappers (optimum, sentence-transformers' ONNX backend)
trace the PyTorch model, and PyPI's Linux torch wheel is a multi-GB CUDA stack. Any
other model raises :class:`UnsupportedModelError`, and
:mod:`app.retrieval.embedding.encoder_cache` then uses sentence-transformers when the ``torch``
extra is installed. tests/unit/retrieval/embedding/test_onnx_encoder.py checks the vectors against
sentence-transformers' own (tests/data/minilm_golden.json).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file
from tokenizers import Tokenizer

__all__ = ["SentenceBert", "UnsupportedModelError", "build_graph", "build_tokenizer", "inspect"]

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "embedding"
_OPSET = 17  # LayerNormalization's first opset
_IR_VERSION = 8  # the IR of opset 17: any ONNX Runtime that runs the opset reads it
# Added to the attention scores of padding: its softmax weight is then exactly 0, as with
# transformers' own mask.
_MASKED = np.finfo(np.float32).min
_POOLING_FLAGS = (
    "pooling_mode_cls_token",
    "pooling_mode_max_tokens",
    "pooling_mode_mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens",
    "pooling_mode_lasttoken",
)


class UnsupportedModelError(ValueError):
    """The model is not a BERT with mean pooling; the message says what differs."""


@dataclass(frozen=True)
class SentenceBert:
    """What the graph and the tokenizer need from a sentence-transformers directory.

    Attributes:
        transformer_dir: Holds ``config.json``, ``model.safetensors`` and the tokenizer.
        config: The transformer's ``config.json``.
        max_length: Word pieces the model reads (sentence-transformers' ``max_seq_length``).
        normalize: Whether a Normalize module follows the pooling.
    """

    transformer_dir: Path
    config: dict[str, Any]
    max_length: int
    normalize: bool


def inspect(model_dir: Path) -> SentenceBert:
    """Read a sentence-transformers directory and check that this module can build it.

    Args:
        model_dir: The directory with ``modules.json``.

    Returns:
        The settings the graph and the tokenizer are built from.

    Raises:
        UnsupportedModelError: Another architecture, pooling or module list, or files
            missing (the message says which).
        OSError: A file exists but cannot be read.
    """
    modules = sorted(_json(model_dir / "modules.json"), key=lambda m: int(m.get("idx", 0)))
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise UnsupportedModelError(f"modules {kinds}, not Transformer, Pooling[, Normalize]")
    transformer_dir = model_dir / str(modules[0].get("path", ""))
    config = _json(transformer_dir / "config.json")
    _check_bert(config)
    pooling = _json(model_dir / str(modules[1].get("path", "")) / "config.json")
    _check_mean_pooling(pooling, int(config["hidden_size"]))
    sbert = _json(transformer_dir / "sentence_bert_config.json", missing={})
    if sbert.get("do_lower_case"):
        raise UnsupportedModelError("sentence_bert_config.json lowercases the text itself")
    positions = int(config["max_position_embeddings"])
    if sbert.get("max_seq_length") is not None:
        max_length = int(sbert["max_seq_length"])
    else:  # as sentence-transformers does without a configured length
        declared = _json(transformer_dir / "tokenizer_config.json", missing={})
        max_length = min(int(declared.get("model_max_length", positions)), positions)
    if not 2 < max_length <= positions:
        raise UnsupportedModelError(f"max_seq_length {max_length} outside 3..{positions}")
    for name in ("model.safetensors", "tokenizer.json"):
        if not (transformer_dir / name).is_file():
            raise UnsupportedModelError(f"no {name} in {transformer_dir}")
    return SentenceBert(transformer_dir, config, max_length, normalize=len(kinds) == 3)


def build_tokenizer(model: SentenceBert) -> Tokenizer:
    """The model's tokenizer, padding each batch to its longest text and cutting at the window.

    Raises:
        UnsupportedModelError: The tokenizer has no padding token.
        Exception: tokenizers cannot read ``tokenizer.json`` (it raises no narrower type).
    """
    tokenizer = Tokenizer.from_file(str(model.transformer_dir / "tokenizer.json"))
    declared = _json(model.transformer_dir / "tokenizer_config.json", missing={})
    special = _json(model.transformer_dir / "special_tokens_map.json", missing={})
    pad = declared.get("pad_token") or special.get("pad_token") or "[PAD]"
    pad_token = str(pad["content"] if isinstance(pad, dict) else pad)
    pad_id = tokenizer.token_to_id(pad_token)
    if pad_id is None:
        raise UnsupportedModelError(f"the padding token {pad_token!r} is not in the vocabulary")
    # No fixed length (tokenizer.json may carry one): each batch pads to its longest
    # text, as sentence-transformers does. BERT pads with token type 0.
    tokenizer.enable_padding(
        direction=str(declared.get("padding_side", "right")),
        pad_id=pad_id,
        pad_type_id=0,
        pad_token=pad_token,
    )
    tokenizer.enable_truncation(
        model.max_length, direction=str(declared.get("truncation_side", "right"))
    )
    return tokenizer


def build_graph(model: SentenceBert) -> bytes:
    """The serialised ONNX model: ids, mask and token types to pooled rows.

    Inputs ``input_ids``, ``attention_mask`` and ``token_type_ids`` are int64
    ``(batch, tokens)``; the output ``embedding`` is float32 ``(batch, hidden_size)``.

    Raises:
        UnsupportedModelError: The weights lack a tensor the config calls for.
    """
    weights = _Weights(load_file(str(model.transformer_dir / "model.safetensors")))
    config = model.config
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    g = _Graph()

    # Embeddings: word + token type + position (0..tokens-1), then LayerNorm.
    tokens = g.op("Gather", g.op("Shape", "input_ids"), g.const("one", np.int64(1)), axis=0)
    positions = g.op("Range", g.const("zero", np.int64(0)), tokens, "one")
    word = g.op("Gather", g.weight(weights, "embeddings.word_embeddings.weight"), "input_ids")
    types = g.weight(weights, "embeddings.token_type_embeddings.weight")
    kind = g.op("Gather", types, "token_type_ids")
    place = g.op("Gather", g.weight(weights, "embeddings.position_embeddings.weight"), positions)
    summed = g.op("Add", g.op("Add", word, kind), place)
    x = g.layer_norm(summed, weights, "embeddings.LayerNorm", eps)

    # (batch, 1, 1, tokens): 0 for a token, the float32 minimum for padding.
    mask = g.op("Cast", "attention_mask", to=TensorProto.FLOAT)
    bias = g.op(
        "Unsqueeze",
        g.op("Mul", g.op("Sub", g.const("one_f", np.float32(1)), mask), g.const("masked", _MASKED)),
        g.const("axes_1_2", np.array([1, 2], np.int64)),
    )
    for i in range(int(config["num_hidden_layers"])):
        x = _layer(g, weights, f"encoder.layer.{i}", x, bias, hidden, heads, eps)

    # Mean over the non-padding tokens, with sentence-transformers' 1e-9 floor.
    mask3 = g.op("Unsqueeze", mask, g.const("axes_last", np.array([-1], np.int64)))
    axis1 = g.const("axes_1", np.array([1], np.int64))
    total = g.op("ReduceSum", g.op("Mul", x, mask3), axis1, keepdims=0)
    count = g.op(
        "Max", g.op("ReduceSum", mask3, axis1, keepdims=0), g.const("tiny", np.float32(1e-9))
    )
    pooled = g.op("Div", total, count, output=None if model.normalize else OUTPUT)
    if model.normalize:  # torch's F.normalize: x / max(|x|, 1e-12)
        norm = g.op("ReduceL2", pooled, axes=[-1], keepdims=1)
        floor = g.const("norm_floor", np.float32(1e-12))
        g.op("Div", pooled, g.op("Max", norm, floor), output=OUTPUT)
    return g.serialise(hidden)


def _layer(
    g: _Graph,
    weights: _Weights,
    prefix: str,
    x: str,
    bias: str,
    hidden: int,
    heads: int,
    eps: float,
) -> str:
    """One encoder layer: self-attention and the feed-forward block, each post-LayerNorm."""
    size = hidden // heads
    split = g.const("split_heads", np.array([0, 0, heads, size], np.int64))

    def project(name: str, perm: list[int]) -> str:
        flat = g.linear(x, weights, f"{prefix}.attention.self.{name}")
        return g.op("Transpose", g.op("Reshape", flat, split), perm=perm)

    query = project("query", [0, 2, 1, 3])  # (batch, heads, tokens, size)
    key = project("key", [0, 2, 3, 1])  # (batch, heads, size, tokens)
    value = project("value", [0, 2, 1, 3])
    # Both sides scaled by size**-0.25, as torch's scaled_dot_product_attention does (the
    # reference vectors' path): the same product as dividing by sqrt(size), rounded alike.
    root = g.const("scale_root", np.float32(math.sqrt(1 / math.sqrt(size))))
    scores = g.op("MatMul", g.op("Mul", query, root), g.op("Mul", key, root))
    probs = g.op("Softmax", g.op("Add", scores, bias), axis=-1)
    context = g.op("Transpose", g.op("MatMul", probs, value), perm=[0, 2, 1, 3])
    merged = g.op("Reshape", context, g.const("merge_heads", np.array([0, 0, hidden], np.int64)))
    attended = g.linear(merged, weights, f"{prefix}.attention.output.dense")
    x = g.layer_norm(g.op("Add", attended, x), weights, f"{prefix}.attention.output.LayerNorm", eps)

    inner = g.linear(x, weights, f"{prefix}.intermediate.dense")
    # Exact GELU, as BERT's "gelu": x * 0.5 * (1 + erf(x / sqrt(2))).
    erf = g.op("Erf", g.op("Div", inner, g.const("sqrt_2", np.float32(math.sqrt(2.0)))))
    gelu = g.op(
        "Mul", g.op("Mul", inner, g.op("Add", erf, "one_f")), g.const("half", np.float32(0.5))
    )
    out = g.linear(gelu, weights, f"{prefix}.output.dense")
    return g.layer_norm(g.op("Add", out, x), weights, f"{prefix}.output.LayerNorm", eps)


class _Weights:
    """The checkpoint's tensors by name, with or without a ``bert.`` prefix."""

    def __init__(self, tensors: dict[str, npt.NDArray[Any]]) -> None:
        self._tensors = tensors

    def get(self, name: str) -> npt.NDArray[np.float32]:
        for key in (name, f"bert.{name}"):
            if key in self._tensors:
                return np.asarray(self._tensors[key], np.float32)
        raise UnsupportedModelError(f"model.safetensors has no tensor {name!r}")


class _Graph:
    """Nodes and initialisers of one ONNX graph, each node named after its output."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = set()
        self._count = 0

    def const(self, name: str, value: npt.ArrayLike) -> str:
        """An initialiser, added once however often it is used."""
        if name not in self._names:
            self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
            self._names.add(name)
        return name

    def weight(self, weights: _Weights, name: str, *, transpose: bool = False) -> str:
        """A checkpoint tensor as an initialiser; ``transpose`` for a MatMul's right side."""
        array = weights.get(name)
        stored = f"{name}.T" if transpose else name
        return self.const(stored, np.ascontiguousarray(array.T) if transpose else array)

    def op(self, op_type: str, *inputs: str, output: str | None = None, **attrs: Any) -> str:
        """Append a node and return its (one) output's name."""
        self._count += 1
        name = output or f"{op_type}_{self._count}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [name], name=name, **attrs))
        return name

    def linear(self, x: str, weights: _Weights, prefix: str) -> str:
        """``x @ W.T + b`` of a torch Linear: a MatMul on a constant, which int8 quantizes."""
        product = self.op("MatMul", x, self.weight(weights, f"{prefix}.weight", transpose=True))
        return self.op("Add", product, self.weight(weights, f"{prefix}.bias"))

    def layer_norm(self, x: str, weights: _Weights, prefix: str, eps: float) -> str:
        """LayerNorm over the last axis with the checkpoint's scale and shift."""
        scale = self.weight(weights, f"{prefix}.weight")
        shift = self.weight(weights, f"{prefix}.bias")
        return self.op("LayerNormalization", x, scale, shift, axis=-1, epsilon=eps)

    def serialise(self, hidden: int) -> bytes:
        """The checked model with dynamic batch and token axes."""
        inputs = [
            helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "tokens"])
            for name in INPUTS
        ]
        output = helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", hidden])
        graph = helper.make_graph(
            self.nodes, "sentence_bert", inputs, [output], initializer=self.initializers
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", _OPSET)],
            ir_version=_IR_VERSION,
            producer_name="ragent",
        )
        onnx.checker.check_model(model)
        serialised: bytes = model.SerializeToString()
        return serialised


def _check_bert(config: dict[str, Any]) -> None:
    found = {
        "model_type": config.get("model_type"),
        "hidden_act": config.get("hidden_act"),
        "position_embedding_type": config.get("position_embedding_type", "absolute"),
        "is_decoder": bool(config.get("is_decoder", False)),
    }
    expected = {
        "model_type": "bert",
        "hidden_act": "gelu",
        "position_embedding_type": "absolute",
        "is_decoder": False,
    }
    differ = [f"{key} {found[key]!r}" for key in expected if found[key] != expected[key]]
    if differ:
        raise UnsupportedModelError(f"not a BERT encoder with exact GELU: {', '.join(differ)}")
    if int(config["hidden_size"]) % int(config["num_attention_heads"]):
        raise UnsupportedModelError("hidden_size is not a multiple of num_attention_heads")


def _check_mean_pooling(pooling: dict[str, Any], hidden: int) -> None:
    if "pooling_mode" in pooling:  # newer sentence-transformers save the mode by name
        mean = pooling["pooling_mode"] == "mean"
    else:
        mean = bool(pooling.get("pooling_mode_mean_tokens")) and not any(
            pooling.get(flag) for flag in _POOLING_FLAGS
        )
    if not mean:
        raise UnsupportedModelError(f"pooling is not the mean of the tokens: {pooling}")
    if not pooling.get("include_prompt", True):
        raise UnsupportedModelError("pooling leaves out the prompt's tokens")
    if int(pooling.get("word_embedding_dimension", hidden)) != hidden:
        raise UnsupportedModelError("the pooling's dimension is not the transformer's")


def _json(path: Path, missing: dict[str, Any] | None = None) -> Any:
    """A JSON file's content; ``missing`` when the file is absent (None: unsupported)."""
    if not path.is_file():
        if missing is not None:
            return missing
        raise UnsupportedModelError(f"no {path.name} in {path.parent}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UnsupportedModelError(f"{path} is not JSON: {exc}") from None
