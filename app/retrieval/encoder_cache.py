"""The local embedding model, exported to ONNX once and kept in a cache directory.

Importing sentence-transformers (and transformers and torch under it) is most of a
``ragent`` command's start-up: about 9 of the 11 s that loading the model took on this
project's two-core test machine. The first process that needs the model exports it
(:class:`~app.retrieval.onnx_encoder.OnnxEncoder`) and saves it under
``<cache>/encoders/<key>``; every later process loads the saved model with onnxruntime
and tokenizers alone, in well under a second, and never imports torch. The key covers
the model's files (path, size, modification time), the versions of the exporter and the
runtime, the weights' precision and the save format, so a changed model or library
builds a new entry, and the entries it replaces (those of the same model directory and
precision) are removed. An entry that fails to load is logged, removed and rebuilt.
"""

from __future__ import annotations

import hashlib
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

if TYPE_CHECKING:
    from app.retrieval.onnx_encoder import Precision

__all__ = ["Encoder", "default_cache_dir", "entry_dir", "load_encoder"]

logger = logging.getLogger(__name__)

Matrix = npt.NDArray[np.float32]

FORMAT = 4
"""Bumped whenever what :meth:`OnnxEncoder.save` writes changes (4: the precision is
recorded; 3: ONNX, was TorchScript)."""
_LIBRARIES = ("torch", "onnx", "onnxruntime", "tokenizers")
"""Whose versions key an entry: the exporter, its serialiser, the runtime, the tokenizer."""
_SOURCE = "source"
"""The file of an entry that names the model directory it was exported from, then its
precision on a second line."""


class Encoder(Protocol):
    """Texts to rows of an embedding matrix."""

    def encode(self, texts: Sequence[str], batch_size: int, threads: int = 0) -> Matrix:
        """Embed ``texts`` into one float32 row each, in order, on ``threads`` cores (0: all)."""
        ...


class SentenceTransformerEncoder:
    """The sentence-transformers path, for models that cannot be exported."""

    def __init__(self, model: Any) -> None:
        """Wrap a loaded ``SentenceTransformer``."""
        self.model = model
        self._threads = threading.local()

    def encode(self, texts: Sequence[str], batch_size: int, threads: int = 0) -> Matrix:
        """Embed ``texts`` into unit rows with ``SentenceTransformer.encode``."""
        # Torch keeps its thread count per OS thread: set it once per calling thread.
        if getattr(self._threads, "count", None) != threads:
            import torch

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
    """The directory that holds, or will hold, the exported model of ``model_dir``."""
    # Versions from the installed distributions: importing torch to ask would cost the
    # second that a cached load saves.
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
    """Load the sentence-transformers model in ``model_dir``, exported when it can be.

    Args:
        model_dir: A sentence-transformers model directory.
        cache_dir: Where exported models are kept; created when missing. A cache that
            cannot be written is logged and skipped: the model is then exported in each
            process.
        precision: The exported model's weights: ``int8`` quantizes them
            (:mod:`app.retrieval.quantize`). The sentence-transformers fallback keeps
            float32 whatever this says.

    Returns:
        The saved exported model when there is one, else a freshly exported one (saved
        for the next process), else the sentence-transformers model itself.
    """
    from app.retrieval.onnx_encoder import OnnxEncoder

    entry = entry_dir(model_dir, cache_dir, precision)
    if entry.is_dir():
        try:
            return OnnxEncoder.load(entry)
        # tokenizers and onnxruntime raise bare Exceptions for unreadable files.
        except Exception as exc:  # noqa: BLE001 - any broken entry is rebuilt, never fatal
            logger.warning("rebuilding the cached embedding model (%s): %s", entry, exc)
            shutil.rmtree(entry, ignore_errors=True)
    model = _sentence_transformer(model_dir)
    exported = OnnxEncoder.from_sentence_transformer(model)
    if exported is None:
        return SentenceTransformerEncoder(model)
    if precision == "int8":
        exported = exported.to_int8()
    _save(exported, entry, model_dir)
    return exported


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "-"


def _sentence_transformer(model_dir: Path) -> Any:
    # Never reach for a model hub: everything is in the installed package.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    return SentenceTransformer(str(model_dir), device="cpu")


def _save(exported: Any, entry: Path, model_dir: Path) -> None:
    """Write ``exported`` into ``entry`` all at once: readers never see half an entry.

    Then remove the entries it replaces: those exported from the same model directory
    with the same precision, or before the precision was recorded.
    """
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=entry.parent))
    except OSError as exc:
        logger.warning("embedding model cache not writable, not saved: %s", exc)
        return
    source = str(model_dir.resolve())
    try:
        exported.save(staging)
        (staging / _SOURCE).write_text(f"{source}\n{exported.precision}", encoding="utf-8")
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
        replaced = lines[:1] == [source] and lines[1:] in ([], [exported.precision])
        if replaced:
            shutil.rmtree(other, ignore_errors=True)
