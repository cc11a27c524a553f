"""Relevance regression on the shipped agent-memory set (tests/data/relevance).

335 facts as agents write them and 161 paraphrased queries with graded judgments. Hybrid must
beat both single modes on nDCG@10, and no mode may fall below the floor set from its measured
value (see the floors below; they leave a small margin for model and library updates).
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
# Measured on this set with all-MiniLM-L6-v2 and the default fusion (max-normalised scores,
# weights vector 0.6 / text 0.4): hybrid 0.885, vector 0.865, text 0.776. Floors sit ~0.02 below.
FLOORS = {"hybrid": 0.865, "vector": 0.845, "text": 0.755}


def _lines(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbedder) -> dict[str, float]:
    facts, queries = _lines("facts.jsonl"), _lines("queries.jsonl")
    settings = Settings.load(tmp_path_factory.mktemp("relevance"), embedder="none")
    cortex.init_home(settings)
    with cortex.connect(settings, embedder=embedder) as memory:
        stored = memory.store_many([{k: v for k, v in f.items() if k != "key"} for f in facts])
        key_of = {fact.id: f["key"] for fact, f in zip(stored, facts, strict=True)}
        result = {}
        for mode in ("hybrid", "vector", "text"):
            result[mode] = mean(
                ndcg_at_k(
                    [key_of[h.fact.id] for h in memory.search(q["query"], k=10, mode=mode)],
                    q["relevant"],
                    10,
                )
                for q in queries
            )
    print("nDCG@10:", {m: round(v, 4) for m, v in result.items()})
    return result


def test_the_relevance_set_is_as_documented() -> None:
    facts, queries = _lines("facts.jsonl"), _lines("queries.jsonl")
    keys = {f["key"] for f in facts}
    assert len(facts) >= 300
    assert len(queries) >= 100
    assert all(set(q["relevant"]) <= keys for q in queries)
    assert all(2 in q["relevant"].values() for q in queries)


def test_hybrid_beats_both_single_modes(scores: dict[str, float]) -> None:
    assert scores["hybrid"] > scores["vector"]
    assert scores["hybrid"] > scores["text"]


@pytest.mark.parametrize("mode", ["hybrid", "vector", "text"])
def test_each_mode_stays_above_its_floor(scores: dict[str, float], mode: str) -> None:
    assert scores[mode] >= FLOORS[mode]
