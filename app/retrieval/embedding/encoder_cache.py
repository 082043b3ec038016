"""The local embedding model, built into an ONNX graph once and kept in a cache directory.

Building the graph from the model's weights (:mod:`app.retrieval.embedding.bert_onnx`) and
quantizing it takes a few seconds; the first process that needs the model does it and
saves the result (:class:`~app.retrieval.embedding.onnx_encoder.OnnxEncoder`) under
``<cache>/encoders/<key>``. Every later process loads the saved model with onnxruntime
and tokenizers alone, in well under a second. The key covers the model's files (path,
size, modification time), the versions of the libraries that build and run the graph,
the weights' precision and the save format, so a changed model or library builds a new
entry, and the entries it replaces (those of the same model directory and precision)
are removed. An entry that fails to load is logged, removed and rebuilt.

A model that is not a BERT with mean pooling runs on sentence-transformers instead,
which comes with ragent's optional ``torch`` extra; without it, loading such a model
fails with :class:`TorchExtraMissingError`.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from app.settings import SettingsError

if TYPE_CHECKING:
    from app.retrieval.embedding.onnx_encoder import Precision

__all__ = [
    "Encoder",
    "SentenceTransformerEncoder",
    "TorchExtraMissingError",
    "default_cache_dir",
    "entry_dir",
    "load_encoder",
]

logger = logging.getLogger(__name__)

Matrix = npt.NDArray[np.float32]

FORMAT = 5
"""Bumped whenever the graph or what :meth:`OnnxEncoder.save` writes changes (5: built
from the weights without torch, was torch.onnx.export; 4: the precision is recorded;
3: ONNX, was TorchScript)."""
_LIBRARIES = ("onnx", "safetensors", "onnxruntime", "tokenizers")
"""Whose versions key an entry: the graph builder, the weights reader, the runtime (and
its quantizer), the tokenizer."""
_SOURCE = "source"
"""The file of an entry that names the model directory it was built from, then its
precision on a second line."""


class Encoder(Protocol):
    """Texts to rows of an embedding matrix."""

    def encode(self, texts: Sequence[str], batch_size: int, threads: int = 0) -> Matrix:
        """Embed ``texts`` into one float32 row each, in order, on ``threads`` cores (0: all)."""
        ...


class TorchExtraMissingError(SettingsError):
    """The model needs sentence-transformers, and ragent's ``torch`` extra is not installed."""


class SentenceTransformerEncoder:
    """The sentence-transformers path, for models the ONNX builder does not cover."""

    def __init__(self, model: Any) -> None:
        """Wrap a loaded ``SentenceTransformer``."""
        self.model = model
        self._threads = threading.local()

    def encode(self, texts: Sequence[str], batch_size: int, threads: int = 0) -> Matrix:
        """Embed ``texts`` into unit rows with ``SentenceTransformer.encode``."""
        # Torch keeps its thread count per OS thread: set it once per calling thread.
        if getattr(self._threads, "count", None) != threads:
            # By name: torch comes with the extra, so mypy may not see it.
            torch = importlib.import_module("torch")
            torch.set_num_threads(threads or os.cpu_count() or 1)
            self._threads.count = threads
        vectors = self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, np.float32)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/ragent``, or ``~/.cache/ragent`` when it is unset."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ragent"


def entry_dir(model_dir: Path, cache_dir: Path, precision: Precision = "int8") -> Path:
    """The directory that holds, or will hold, the built model of ``model_dir``."""
    # Versions from the installed distributions: importing onnx to ask would cost part of
    # the time that a cached load saves.
    versions = "\0".join(_version(name) for name in _LIBRARIES)
    key = f"{FORMAT}\0{versions}\0{precision}\0{model_dir.resolve()}"
    digest = hashlib.sha256(key.encode())
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(
            f"\0{path.relative_to(model_dir)}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()
        )
    return cache_dir / "encoders" / digest.hexdigest()[:32]


def load_encoder(model_dir: Path, cache_dir: Path, precision: Precision = "int8") -> Encoder:
    """Load the sentence-transformers model in ``model_dir``, as an ONNX graph when it can be.

    Args:
        model_dir: A sentence-transformers model directory.
        cache_dir: Where built models are kept; created when missing. A cache that
            cannot be written is logged and skipped: the model is then built in each
            process.
        precision: The built model's weights: ``int8`` quantizes them
            (:mod:`app.retrieval.embedding.quantize`). The sentence-transformers fallback keeps
            float32 whatever this says.

    Returns:
        The saved model when there is one, else a freshly built one (saved for the next
        process), else, for a model the builder does not cover, the
        sentence-transformers model itself.

    Raises:
        TorchExtraMissingError: The builder does not cover the model and
            sentence-transformers is not installed.
    """
    from app.retrieval.embedding.onnx_encoder import OnnxEncoder

    entry = entry_dir(model_dir, cache_dir, precision)
    if entry.is_dir():
        try:
            return OnnxEncoder.load(entry)
        # tokenizers and onnxruntime raise bare Exceptions for unreadable files.
        except Exception as exc:  # noqa: BLE001 - any broken entry is rebuilt, never fatal
            logger.warning("rebuilding the cached embedding model (%s): %s", entry, exc)
            shutil.rmtree(entry, ignore_errors=True)
    # Imported only now: the builder loads onnx and safetensors, which a cached load skips.
    from app.retrieval.embedding.bert_onnx import UnsupportedModelError

    try:
        built = OnnxEncoder.from_model_dir(model_dir)
    except UnsupportedModelError as exc:
        return _sentence_transformer(model_dir, str(exc))
    if precision == "int8":
        built = built.to_int8()
    _save(built, entry, model_dir)
    return built


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "-"


def _sentence_transformer(model_dir: Path, reason: str) -> SentenceTransformerEncoder:
    if importlib.util.find_spec("sentence_transformers") is None:
        raise TorchExtraMissingError(
            f"the embedding model in {model_dir} is not one the ONNX builder covers "
            f"({reason}) and needs sentence-transformers: install ragent's torch extra "
            "(pip install -e '.[torch]')"
        )
    logger.warning(
        "embedding model not built for ONNX Runtime (%s): using sentence-transformers", reason
    )
    # Never reach for a model hub: everything is in the model directory.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    # By name: transformers comes with the extra, so mypy may not see it.
    importlib.import_module("transformers.utils.logging").disable_progress_bar()
    return SentenceTransformerEncoder(SentenceTransformer(str(model_dir), device="cpu"))


def _save(built: Any, entry: Path, model_dir: Path) -> None:
    """Write ``built`` into ``entry`` all at once: readers never see half an entry.

    Then remove the entries it replaces: those built from the same model directory with
    the same precision, or before the precision was recorded.
    """
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=entry.parent))
    except OSError as exc:
        logger.warning("embedding model cache not writable, not saved: %s", exc)
        return
    source = str(model_dir.resolve())
    try:
        built.save(staging)
        (staging / _SOURCE).write_text(f"{source}\n{built.precision}", encoding="utf-8")
        os.rename(staging, entry)  # fails if another process saved it first: keep theirs
    except OSError as exc:
        if not entry.is_dir():
            logger.warning("embedding model not saved to the cache: %s", exc)
            return
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for other in entry.parent.iterdir():
        if other == entry or other.name.startswith("."):
            continue
        try:
            lines = (other / _SOURCE).read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        replaced = lines[:1] == [source] and lines[1:] in ([], [built.precision])
        if replaced:
            shutil.rmtree(other, ignore_errors=True)
