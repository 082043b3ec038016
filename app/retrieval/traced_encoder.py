"""A sentence-transformers model compiled to one TorchScript graph for fast CPU inference.

``SentenceTransformer.encode`` runs the transformer op by op in Python. Every op takes
the GIL back, and under Python's 5 ms switch interval that costs milliseconds whenever
the event loop is busy in another thread: a lone 18-token query took 26 ms beside a
running graph, and 15 ms on an idle machine. A traced, frozen graph runs the whole
forward pass in C++ without the GIL, so the query embedding no longer waits on the
event loop. It is also about 20 % faster on its own. Only the common shape of model is
compiled (a BERT-style transformer, mean pooling, optional normalisation); any other
model keeps the sentence-transformers path.

A traced encoder saves to a directory (the frozen graph, the tokenizer and three
settings) and loads back with torch and tokenizers alone: see
:mod:`app.retrieval.encoder_cache`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from tokenizers import Tokenizer

__all__ = ["TracedEncoder"]

logger = logging.getLogger(__name__)

Matrix = npt.NDArray[np.float32]

# Two texts of different lengths, so the trace records the attention-mask path that
# padded batches need (a batch without padding would let the mask be dropped).
_EXAMPLES = ["a short text", "a somewhat longer text, so that the batch needs padding"]
_GRAPH, _TOKENIZER, _META = "graph.pt", "tokenizer.json", "meta.json"
# Torch marks TorchScript deprecated in favour of torch.export, but an exported program
# runs op by op under the GIL again: the frozen script graph is what runs in C++. Its
# DeprecationWarnings are silenced where it is saved and loaded.


class TracedEncoder:
    """Mean-pooled, optionally normalised embeddings from a traced transformer."""

    def __init__(self, graph: Any, tokenizer: Tokenizer, max_length: int, normalize: bool) -> None:
        """Wrap a traced graph; use :meth:`from_sentence_transformer` or :meth:`load`.

        Args:
            graph: The frozen TorchScript graph: ids, mask, types to mean-pooled rows.
            tokenizer: The model's tokenizer, set to pad each batch to its longest text
                and to cut texts at ``max_length`` word pieces.
            max_length: Word pieces the model reads.
            normalize: Whether the graph scales rows to unit length.
        """
        self._graph = graph
        self._tokenizer = tokenizer
        self._max_length = max_length
        self.normalize = normalize
        # Tokenizing takes a borrow of the Rust tokenizer: concurrent calls from two
        # threads can fail with "Already borrowed".
        self._tokenize_lock = threading.Lock()

    @classmethod
    def from_sentence_transformer(cls, model: Any) -> TracedEncoder | None:
        """Trace ``model`` if it is a transformer followed by mean pooling.

        Args:
            model: A loaded ``SentenceTransformer`` on the CPU.

        Returns:
            The encoder, or None when the model has another shape or tracing fails
            (the caller keeps ``model.encode``).
        """
        from sentence_transformers.sentence_transformer.modules import (
            Normalize,
            Pooling,
            Transformer,
        )

        modules = list(model)
        if (
            len(modules) not in (2, 3)
            or not isinstance(modules[0], Transformer)
            or not isinstance(modules[1], Pooling)
            or modules[1].get_config_dict().get("pooling_mode") != "mean"
            or not modules[1].get_config_dict().get("include_prompt", True)
            or (len(modules) == 3 and not isinstance(modules[2], Normalize))
        ):
            return None
        backend = getattr(model.tokenizer, "backend_tokenizer", None)
        if not isinstance(backend, Tokenizer):
            return None
        hf = model.tokenizer
        # A copy: the sentence-transformers model keeps its own tokenizer settings.
        tokenizer = Tokenizer.from_str(backend.to_str())
        tokenizer.enable_padding(
            pad_id=int(hf.pad_token_id or 0),
            pad_type_id=int(hf.pad_token_type_id or 0),
            pad_token=str(hf.pad_token),
            direction=str(hf.padding_side),
        )  # no fixed length: each batch pads to its longest text, as sentence-transformers
        max_length = int(model.max_seq_length)
        tokenizer.enable_truncation(max_length, direction=str(hf.truncation_side))
        normalize = len(modules) == 3
        graph_module = _MeanPooled(modules[0].auto_model, normalize).eval()
        example = hf(_EXAMPLES, padding=True, return_tensors="pt")
        try:
            with torch.inference_mode(), warnings.catch_warnings(), _quiet_transformers():
                # The trace fixes shape checks that hold for every input without a KV cache.
                warnings.simplefilter("ignore")
                traced = torch.jit.trace(  # type: ignore[no-untyped-call]
                    graph_module,
                    (example["input_ids"], example["attention_mask"], _types(example)),
                    check_trace=False,
                )
                graph = torch.jit.freeze(traced)
        except Exception as exc:  # noqa: BLE001 - an untraceable model keeps the slow path
            logger.warning("embedding model not traced, using sentence-transformers: %s", exc)
            return None
        return cls(graph, tokenizer, max_length, normalize=normalize)

    def save(self, directory: Path) -> None:
        """Write the graph, the tokenizer and the settings into ``directory`` (which exists)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(self._graph, str(directory / _GRAPH))
        (directory / _TOKENIZER).write_text(self._tokenizer.to_str(), encoding="utf-8")
        meta = {"max_length": self._max_length, "normalize": self.normalize}
        (directory / _META).write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> TracedEncoder:
        """Load an encoder that :meth:`save` wrote, without sentence-transformers.

        Raises:
            OSError: A file is missing or unreadable.
            ValueError: A file is not what :meth:`save` writes.
            RuntimeError: Torch cannot read the graph.
            Exception: tokenizers cannot read the tokenizer (it raises no narrower type).
        """
        meta = json.loads((directory / _META).read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or set(meta) != {"max_length", "normalize"}:
            raise ValueError(f"unexpected encoder settings: {meta!r}")
        tokenizer = Tokenizer.from_file(str(directory / _TOKENIZER))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            graph = torch.jit.load(str(directory / _GRAPH), map_location="cpu")  # type: ignore[no-untyped-call]
        return cls(graph, tokenizer, int(meta["max_length"]), bool(meta["normalize"]))

    def encode(self, texts: Sequence[str], batch_size: int) -> Matrix:
        """Embed ``texts`` into one row each, in batches of similar length.

        Args:
            texts: The passages or queries.
            batch_size: Texts per forward pass.

        Returns:
            An ``(n, dim)`` float32 matrix in the order of ``texts``.
        """
        # Longest first, as sentence-transformers does: batches pad less.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        rows: list[Matrix] = []
        for start in range(0, len(order), batch_size):
            batch = [texts[i] for i in order[start : start + batch_size]]
            with self._tokenize_lock:
                # A lone text (the usual query) is tokenized without releasing the GIL:
                # encode_batch hands it over, and a busy event loop may keep it 5 ms.
                encodings = (
                    [self._tokenizer.encode(batch[0])]
                    if len(batch) == 1
                    else self._tokenizer.encode_batch(batch)
                )
            ids, mask, types = (
                torch.from_numpy(np.array([getattr(e, name) for e in encodings], np.int64))
                for name in ("ids", "attention_mask", "type_ids")
            )
            # One call into the graph, and no other torch op: each op called from Python
            # releases the GIL, and each takes it back (up to 5 ms when the event loop
            # is busy). Normalising outside the graph cost up to 16 such waits a query.
            pooled = self._graph(ids, mask, types)
            rows.append(pooled.numpy().astype(np.float32, copy=False))
        stacked = np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)
        out = np.empty_like(stacked)
        out[order] = stacked
        return out


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hold back transformers' warnings while the model is traced and frozen.

    Freezing reads every attribute of the model, the ``loss_function`` property among
    them, which warns that an encoder has no ``loss_type``: noise on every command's
    stderr that says nothing about embedding.
    """
    transformers_logger = logging.getLogger("transformers")
    level = transformers_logger.level
    transformers_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        transformers_logger.setLevel(level)


def _types(encoded: Any) -> torch.Tensor:
    types = encoded.get("token_type_ids")
    return torch.zeros_like(encoded["input_ids"]) if types is None else types


class _MeanPooled(torch.nn.Module):
    """Transformer output averaged over the non-padding tokens, optionally unit length."""

    def __init__(self, transformer: torch.nn.Module, normalize: bool) -> None:
        super().__init__()
        self.transformer = transformer
        self.normalize = normalize

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        hidden = self.transformer(
            input_ids=ids, attention_mask=mask, token_type_ids=types, return_dict=False
        )[0]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        summed = (hidden * weights).sum(1)
        pooled: torch.Tensor = summed / weights.sum(1).clamp(min=1e-9)
        if self.normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled
