"""A sentence-transformers model as one ONNX graph, run by ONNX Runtime on the CPU.

``SentenceTransformer.encode`` runs the transformer op by op in Python, and every op
takes the GIL back: a lone query took 26 ms beside a running graph, 15 ms on an idle
machine. An earlier version ran a frozen TorchScript graph (14 ms alone). ONNX Runtime
runs the same forward pass in about half that on this project's two-core AVX2 test
machine (7 ms for a lone query on one thread) and holds no GIL while it runs. Pooling
and normalisation are part of the graph, so one call into the runtime gives the
finished rows. The graph is built from the model's weights without torch
(:mod:`app.retrieval.embedding.bert_onnx`), for the common shape of model: a BERT transformer,
mean pooling, optional normalisation.

An encoder saves to a directory (the ONNX model, the tokenizer and two settings) and
loads back with onnxruntime and tokenizers alone: see
:mod:`app.retrieval.embedding.encoder_cache`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Tokenizer

__all__ = ["OnnxEncoder", "Precision"]

Matrix = npt.NDArray[np.float32]
Precision = Literal["float32", "int8"]
"""The model's weights: as built (float32), or int8 (:mod:`app.retrieval.embedding.quantize`)."""

_MODEL, _TOKENIZER, _META = "model.onnx", "tokenizer.json", "meta.json"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_ENCODING_FIELDS = ("ids", "attention_mask", "type_ids")


class OnnxEncoder:
    """Mean-pooled, optionally normalised embeddings from an ONNX transformer."""

    def __init__(
        self,
        model: bytes | Path,
        tokenizer: Tokenizer,
        max_length: int,
        normalize: bool,
        precision: Precision = "float32",
    ) -> None:
        """Wrap a built model; use :meth:`from_model_dir` or :meth:`load`.

        Args:
            model: The ONNX model (ids, mask, types to pooled rows), as bytes or a file.
            tokenizer: The model's tokenizer, set to pad each batch to its longest text
                and to cut texts at ``max_length`` word pieces.
            max_length: Word pieces the model reads.
            normalize: Whether the graph scales rows to unit length.
            precision: The weights' type, recorded when the encoder is saved.
        """
        self._model = model
        self._tokenizer = tokenizer
        self._max_length = max_length
        self.normalize = normalize
        self.precision: Precision = precision
        # One runtime session per thread count: a session's intra-op pool is fixed when
        # it is created, and queries (one thread) and passages (every core) differ.
        self._sessions: dict[int, ort.InferenceSession] = {}
        self._sessions_lock = threading.Lock()
        # Tokenizing takes a borrow of the Rust tokenizer: concurrent calls from two
        # threads can fail with "Already borrowed".
        self._tokenize_lock = threading.Lock()

    @classmethod
    def from_model_dir(cls, model_dir: Path) -> OnnxEncoder:
        """Build the float32 graph of the sentence-transformers model in ``model_dir``.

        Args:
            model_dir: A sentence-transformers model directory (``modules.json``).

        Returns:
            The encoder, made without torch (:mod:`app.retrieval.embedding.bert_onnx`).

        Raises:
            UnsupportedModelError: The model is not a BERT with mean pooling.
        """
        from app.retrieval.embedding import bert_onnx

        model = bert_onnx.inspect(model_dir)
        return cls(
            bert_onnx.build_graph(model),
            bert_onnx.build_tokenizer(model),
            model.max_length,
            normalize=model.normalize,
        )

    def to_int8(self) -> OnnxEncoder:
        """This encoder with int8 weights (see :mod:`app.retrieval.embedding.quantize`)."""
        from app.retrieval.embedding.quantize import int8_weights

        model = self._model if isinstance(self._model, bytes) else self._model.read_bytes()
        return OnnxEncoder(
            int8_weights(model), self._tokenizer, self._max_length, self.normalize, "int8"
        )

    def save(self, directory: Path) -> None:
        """Write the model, the tokenizer and the settings into ``directory`` (which exists)."""
        model = self._model if isinstance(self._model, bytes) else self._model.read_bytes()
        (directory / _MODEL).write_bytes(model)
        (directory / _TOKENIZER).write_text(self._tokenizer.to_str(), encoding="utf-8")
        meta = {
            "max_length": self._max_length,
            "normalize": self.normalize,
            "precision": self.precision,
        }
        (directory / _META).write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> OnnxEncoder:
        """Load an encoder that :meth:`save` wrote, with onnxruntime and tokenizers alone.

        The one-thread session that queries use is created here, so a broken model file
        fails the load rather than a later query.

        Raises:
            OSError: A file is missing or unreadable.
            ValueError: A file is not what :meth:`save` writes.
            Exception: tokenizers cannot read the tokenizer, or ONNX Runtime the model
                (neither raises a narrower type).
        """
        meta = json.loads((directory / _META).read_text(encoding="utf-8"))
        if (
            not isinstance(meta, dict)
            or set(meta) != {"max_length", "normalize", "precision"}
            or meta["precision"] not in get_args(Precision)
        ):
            raise ValueError(f"unexpected encoder settings: {meta!r}")
        tokenizer = Tokenizer.from_file(str(directory / _TOKENIZER))
        encoder = cls(
            directory / _MODEL,
            tokenizer,
            int(meta["max_length"]),
            bool(meta["normalize"]),
            meta["precision"],
        )
        encoder.session(1)
        return encoder

    def session(self, threads: int) -> ort.InferenceSession:
        """The runtime session with ``threads`` intra-op threads (0: every core)."""
        count = threads or os.cpu_count() or 1
        with self._sessions_lock:
            session = self._sessions.get(count)
            if session is None:
                options = ort.SessionOptions()
                options.intra_op_num_threads = count
                options.inter_op_num_threads = 1
                # Idle pool threads sleep instead of spinning: a server's cores are
                # shared with the event loop and the searches.
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                model = self._model if isinstance(self._model, bytes) else str(self._model)
                session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
                self._sessions[count] = session
            return session

    def encode(self, texts: Sequence[str], batch_size: int, threads: int = 0) -> Matrix:
        """Embed ``texts`` into one row each, in batches of similar length.

        Args:
            texts: The passages or queries.
            batch_size: Texts per forward pass (1 whatever this says for int8 weights).
            threads: CPU threads of each forward pass; 0 uses every core.

        Returns:
            An ``(n, dim)`` float32 matrix in the order of ``texts``.
        """
        session = self.session(threads)
        if self.precision == "int8":
            # Activations are quantized with one scale per input tensor, so a text's row
            # would depend on its batch mates and their padding. One text per pass keeps
            # each row a function of its text, and was no slower: 200 report chunks took
            # 3.3 s one by one against 5.0 s in batches of 64 (less padding to compute).
            batch_size = 1
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
            feeds = {
                name: np.array([getattr(e, field) for e in encodings], np.int64)
                for name, field in zip(_INPUTS, _ENCODING_FIELDS, strict=True)
            }
            pooled = session.run(None, feeds)[0]  # the GIL is released for the whole run
            rows.append(np.asarray(pooled, np.float32))
        stacked = np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)
        out = np.empty_like(stacked)
        out[order] = stacked
        return out
