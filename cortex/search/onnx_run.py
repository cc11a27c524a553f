"""Texts to sentence vectors with an ONNX Runtime session of all-MiniLM-L6-v2.

The steps sentence-transformers takes for this model, without torch: WordPiece tokens (the
package's tokenizer.json, cut at 256 tokens), the network, the mean of the token vectors under
the attention mask, L2 normalisation. Texts are encoded in chunks of similar length (sorted
first, as sentence-transformers does) so that padding stays short.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cortex.search.onnx_model import MAX_SEQ_LENGTH

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["OnnxEncoder"]


class OnnxEncoder:
    """Encodes texts with `session` (an onnxruntime InferenceSession) and the tokenizer in
    `weights` (the model package's directory). Thread-safe: both parts are."""

    def __init__(self, session: Any, weights: Path, *, batch_size: int = 64) -> None:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(weights / "tokenizer.json"))
        tokenizer.enable_truncation(MAX_SEQ_LENGTH)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._tokenizer = tokenizer
        self._session = session
        self._batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Unit-norm float32 vectors of shape (len(texts), 384), in the order of `texts`."""
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), 384), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            chunk = order[start : start + self._batch_size]
            out[chunk] = self._encode_chunk([texts[i] for i in chunk])
        return out

    def _encode_chunk(self, texts: list[str]) -> NDArray[np.float32]:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        (hidden,) = self._session.run(
            ["last_hidden_state"],
            {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
        )
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(pooled / norms, dtype=np.float32)
