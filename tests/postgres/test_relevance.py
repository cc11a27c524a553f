"""Relevance on PostgreSQL, on the shipped agent-memory set (tests/data/relevance).

The text side ranks with ts_rank, not BM25 (no inverse document frequency, no diacritics
folding), so its floors sit below SQLite's (tests/store/test_relevance.py); vectors are the same
model and must score alike. Measured here: hybrid 0.864, vector 0.865, text 0.697.
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import mean
from typing import Any

import pytest

import cortex
from cortex import Settings
from cortex.search.embedder import MiniLMEmbedder
from cortex.search.metrics import ndcg_at_k

DATA = Path(__file__).parent.parent / "data" / "relevance"
FLOORS = {"hybrid": 0.845, "vector": 0.845, "text": 0.675}


def _lines(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_each_mode_stays_above_its_postgres_floor(
    pg_settings: Settings, embedder: MiniLMEmbedder
) -> None:
    facts, queries = _lines("facts.jsonl"), _lines("queries.jsonl")
    with cortex.connect(pg_settings, embedder=embedder) as memory:
        stored = memory.store_many([{k: v for k, v in f.items() if k != "key"} for f in facts])
        key_of = {fact.id: f["key"] for fact, f in zip(stored, facts, strict=True)}
        scores = {
            mode: mean(
                ndcg_at_k(
                    [key_of[h.fact.id] for h in memory.search(q["query"], k=10, mode=mode)],
                    q["relevant"],
                    10,
                )
                for q in queries
            )
            for mode in FLOORS
        }
    print("nDCG@10 on PostgreSQL:", {m: round(v, 4) for m, v in scores.items()})
    assert all(scores[mode] >= floor for mode, floor in FLOORS.items()), scores
