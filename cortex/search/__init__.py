"""Search: local embeddings, vector and full-text candidates, rank fusion, time travel."""

from cortex.search.embedder import (
    DEFAULT_EMBEDDER,
    Embedder,
    MiniLMEmbedder,
    TorchMiniLMEmbedder,
    make_embedder,
)
from cortex.search.fusion import reciprocal_rank_fusion
from cortex.search.searcher import MAX_TOP_K, Searcher, SearchMode, SearchOptions
from cortex.search.text import fts5_query, index_text
from cortex.search.vectors import VectorIndex

__all__ = [
    "DEFAULT_EMBEDDER",
    "MAX_TOP_K",
    "Embedder",
    "MiniLMEmbedder",
    "SearchMode",
    "SearchOptions",
    "Searcher",
    "TorchMiniLMEmbedder",
    "VectorIndex",
    "fts5_query",
    "index_text",
    "make_embedder",
    "reciprocal_rank_fusion",
]
