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


SMALL_CHUNK_TOKENS = 512
"""A chunk with fewer tokens runs on the `small` session (one thread): for short inputs a
second thread costs more CPU than it saves time (measured on 87 queries/s: the server used 1.5
cores with two threads for every call)."""


class OnnxEncoder:
    """Encodes texts with `session` (an onnxruntime InferenceSession) and the tokenizer in
    `weights` (the model package's directory); chunks of fewer than SMALL_CHUNK_TOKENS tokens
    go to `small` instead when given. Thread-safe: all parts are."""

    def __init__(
        self, session: Any, weights: Path, *, batch_size: int = 16, small: Any = None
    ) -> None:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(weights / "tokenizer.json"))
        tokenizer.enable_truncation(MAX_SEQ_LENGTH)
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self._session = session
        self._small = small if small is not None else session
        self._batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Unit-norm float32 vectors of shape (len(texts), 384), in the order of `texts`.

        On a CPU the network's cost grows with the padded batch (measured: no gain from
        batching, and 35 % lost to padding in chunks of 64 mixed-length facts), so texts are
        run in chunks of at most `batch_size` texts of nearly the same token count.
        """
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.empty((len(texts), 384), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            chunk = order[start : start + self._batch_size]
            out[chunk] = self._run([encodings[i].ids for i in chunk])
        return out

    def _run(self, rows: list[list[int]]) -> NDArray[np.float32]:
        width = max(len(row) for row in rows)
        ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for n, row in enumerate(rows):
            ids[n, : len(row)] = row
            mask[n, : len(row)] = 1
        session = self._small if ids.size < SMALL_CHUNK_TOKENS else self._session
        (hidden,) = session.run(
            ["last_hidden_state"],
            {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
        )
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(pooled / norms, dtype=np.float32)
