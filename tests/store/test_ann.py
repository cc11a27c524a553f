"""The HNSW graph for large tenants: recall against exact search, merges, persistence, repair."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import cortex
from cortex import Settings
from cortex.search import searcher
from cortex.search.ann import AnnIndex, index_stem
from cortex.search.embedder import MiniLMEmbedder
from cortex.search.tenant_vectors import TenantVectors
from cortex.search.vectors import VectorIndex
from cortex.store.base import ListFilter

DATA = Path(__file__).parent.parent / "data" / "relevance"


def _clustered(n: int, dim: int = 64, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 50), dim))
    points = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.standard_normal((n, dim))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points.astype(np.float32)


def _recall_at_10(found: list[np.ndarray], exact: list[np.ndarray]) -> float:
    hits = [
        len(set(f[:10].tolist()) & set(e[:10].tolist())) / 10
        for f, e in zip(found, exact, strict=True)
    ]
    return float(np.mean(hits))


def test_hnsw_recall_at_10_against_exact_search_is_at_least_099() -> None:
    vectors = _clustered(5000)
    rowids = np.arange(1, 5001, dtype=np.int64)
    ann, exact = AnnIndex(64, "m"), VectorIndex(64, "m")
    ann.add(rowids, vectors, threads=2)
    exact.add(rowids, vectors)
    rng = np.random.default_rng(8)
    queries = vectors[rng.integers(0, 5000, 100)] + 0.05 * rng.standard_normal((100, 64))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    found = [ann.search(q, 10)[0] for q in queries]
    truth = [exact.search(q, 10)[0] for q in queries]
    assert _recall_at_10(found, truth) >= 0.99
    keys, sims = ann.search(vectors[123], 1)
    assert keys.tolist() == [124]
    assert sims[0] == pytest.approx(1.0, abs=1e-2)


def test_a_saved_graph_loads_with_its_rows_and_answers_alike(tmp_path: Path) -> None:
    vectors = _clustered(800)
    ann = AnnIndex(64, "m")
    ann.add(np.arange(10, 810, dtype=np.int64), vectors)
    ann.save(tmp_path, "ann-x")
    ann.save(tmp_path, "ann-x")  # a second generation replaces the first file
    assert len(list(tmp_path.glob("ann-x-*.usearch"))) == 1
    loaded = AnnIndex.load(tmp_path, "ann-x", 64, "m")
    assert loaded is not None
    assert (len(loaded), loaded.last_rowid, loaded.saved_size) == (800, 809, 800)
    query = vectors[5]
    assert loaded.search(query, 10)[0].tolist() == ann.search(query, 10)[0].tolist()


@pytest.mark.parametrize("damage", ["model", "graph-bytes", "missing-graph", "manifest-json"])
def test_a_damaged_or_foreign_saved_graph_is_refused_for_a_rebuild(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    ann = AnnIndex(64, "m")
    ann.add(np.arange(1, 301, dtype=np.int64), _clustered(300))
    ann.save(tmp_path, "ann-x")
    manifest = tmp_path / "ann-x.json"
    graph = next(tmp_path.glob("ann-x-*.usearch"))
    if damage == "model":
        data = json.loads(manifest.read_text())
        manifest.write_text(json.dumps({**data, "model_id": "other"}))
    elif damage == "graph-bytes":
        graph.write_bytes(graph.read_bytes()[:1000])
    elif damage == "missing-graph":
        graph.unlink()
    else:
        manifest.write_text("{not json")
    with caplog.at_level(logging.INFO):
        assert AnnIndex.load(tmp_path, "ann-x", 64, "m") is None
    assert "rebuilding" in caplog.text


def test_tenant_vectors_cross_the_threshold_and_merge_without_losing_a_row() -> None:
    vectors = _clustered(700)
    index = TenantVectors(64, "m", threshold=200, merge_at=100)
    merges = 0
    for start in range(0, 700, 50):
        index.add(np.arange(start + 1, start + 51, dtype=np.int64), vectors[start : start + 50])
        if index.wants_merge():
            ann, covered = index.build_merged(threads=1)
            index.finish_merge(ann, covered)
            merges += 1
    assert merges >= 4
    assert index.ann is not None
    assert len(index.ann) + len(index.exact) == 700
    assert index.last_rowid == 700
    for row in (0, 199, 350, 699):
        assert index.search(vectors[row], 1)[0].tolist() == [row + 1]


def test_a_search_during_a_merge_counts_each_row_once() -> None:
    vectors = _clustered(300)
    index = TenantVectors(64, "m", threshold=100, merge_at=50)
    index.add(np.arange(1, 301, dtype=np.int64), vectors)
    ann, covered = index.build_merged(threads=1)
    # Before finish_merge, every row is in the graph and in the exact part.
    index._parts = (ann, index.exact)
    rowids, _ = index.search(vectors[10], 50)
    assert len(rowids) == len(set(rowids.tolist())) == 50
    index.finish_merge(ann, covered)
    assert len(index.exact) == 0


@pytest.fixture(scope="module")
def relevance() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    def lines(name: str) -> list[dict[str, Any]]:
        return [json.loads(x) for x in (DATA / name).read_text().splitlines() if x.strip()]

    facts = [{k: v for k, v in f.items() if k != "key"} for f in lines("facts.jsonl")]
    return facts, lines("queries.jsonl")


def _ids(memory: cortex.CortexSync, query: str, **options: Any) -> list[str]:
    return [hit.fact.id for hit in memory.search(query, k=10, mode="vector", **options)]


def test_an_engine_above_the_threshold_finds_what_exact_search_finds_and_saves_its_graph(
    tmp_path: Path,
    embedder: MiniLMEmbedder,
    relevance: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    facts, queries = relevance
    settings = Settings.load(tmp_path / "home", embedder="none", ann_threshold=100)
    cortex.init_home(settings)
    exact_settings = settings.with_overrides(ann_threshold=1_000_000)
    with cortex.connect(settings, embedder=embedder) as memory:
        memory.store_many(facts[:150])
        first = _ids(memory, queries[0]["query"])  # builds the graph from 150 stored vectors
        memory.store_many(facts[150:])  # the tail, merged in the background
        graph_results = {q["qid"]: _ids(memory, q["query"]) for q in queries}
    assert first
    stem = index_stem(settings.tenant, embedder.model_id)
    assert (settings.index_dir / f"{stem}.json").exists()
    saved = json.loads((settings.index_dir / f"{stem}.json").read_text())
    assert saved["count"] == len(facts)
    with cortex.connect(exact_settings, embedder=embedder) as memory:
        exact_results = {q["qid"]: _ids(memory, q["query"]) for q in queries}
    overlap = np.mean(
        [len(set(graph_results[q]) & set(exact_results[q])) / 10 for q in exact_results]
    )
    assert overlap >= 0.99
    # Reopened: the saved graph is loaded, results are the same; deleted: rebuilt, the same.
    with cortex.connect(settings, embedder=embedder) as memory:
        assert {q["qid"]: _ids(memory, q["query"]) for q in queries[:20]} == {
            q["qid"]: graph_results[q["qid"]] for q in queries[:20]
        }
    for path in settings.index_dir.iterdir():
        path.unlink()
    with cortex.connect(settings, embedder=embedder) as memory:
        rebuilt = {q["qid"]: _ids(memory, q["query"]) for q in queries}
    overlap = np.mean([len(set(rebuilt[q]) & set(exact_results[q])) / 10 for q in exact_results])
    assert overlap >= 0.99


@pytest.mark.parametrize("exact_after", [100, 1600])
def test_a_selective_filter_on_a_graph_still_returns_every_match(
    tmp_path: Path,
    embedder: MiniLMEmbedder,
    relevance: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    exact_after: int,
) -> None:
    # 100: the widening gives up early and scores the filter's facts exactly; 1600: it widens
    # the graph search until every vector was a candidate.
    monkeypatch.setattr(searcher, "_EXACT_FILTER_AFTER", exact_after)
    facts, _ = relevance
    settings = Settings.load(tmp_path / "home", embedder="none", ann_threshold=50)
    cortex.init_home(settings)
    with cortex.connect(settings, embedder=embedder) as memory:
        memory.store_many([{**f, "project": "bulk"} for f in facts])
        rare = memory.store_many(
            [
                {"content": f"rare note {i} on the vendor contract", "project": "rare"}
                for i in range(3)
            ]
        )
        hits = memory.search("database migration decision", k=10, mode="vector", project="rare")
        assert {h.fact.id for h in hits} == {f.id for f in rare}
        everything = memory.search("database", k=400, mode="vector", project="bulk")
        assert len(everything) == len(facts)


async def test_filtered_vectors_gives_up_above_its_limit(
    settings: Settings, embedder: MiniLMEmbedder
) -> None:
    async with await cortex.open(settings, embedder=embedder) as engine:
        store = engine._store
        await engine.store_many([{"content": f"fact {i}", "project": "p"} for i in range(5)])
        await engine.store("another project", project="q")
        rows = await store.filtered_vectors("default", embedder.model_id, ListFilter("p"), 5)
        assert rows is not None
        assert len(rows) == 5
        assert all(len(vector) == 4 * embedder.dim for _, vector in rows)
        assert await store.filtered_vectors("default", embedder.model_id, ListFilter(), 5) is None
        assert await store.filtered_vectors("default", "other-model", ListFilter(), 5) == []


def test_reindex_discards_the_saved_graph(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    settings = Settings.load(tmp_path / "home", embedder="none", ann_threshold=20)
    cortex.init_home(settings)
    with cortex.connect(settings, embedder=embedder) as memory:
        memory.store_many([{"content": f"note number {i} on the release train"} for i in range(40)])
        assert memory.search("release", k=3, mode="vector")
    stem = index_stem(settings.tenant, embedder.model_id)
    assert (settings.index_dir / f"{stem}.json").exists()
    with cortex.connect(settings, embedder=embedder) as memory:
        memory.reindex()
        assert not (settings.index_dir / f"{stem}.json").exists()
        assert len(memory.search("release", k=50, mode="vector")) == 40


def test_two_writers_saving_one_graph_never_leave_a_broken_pair(tmp_path: Path) -> None:
    vectors = _clustered(400)
    first = AnnIndex(64, "m")
    first.add(np.arange(1, 401, dtype=np.int64), vectors)
    first.save(tmp_path, "ann-x")
    # Two processes load the same saved graph, extend it differently and both save.
    a = AnnIndex.load(tmp_path, "ann-x", 64, "m")
    b = AnnIndex.load(tmp_path, "ann-x", 64, "m")
    assert a is not None
    assert b is not None
    a.add(np.arange(401, 411, dtype=np.int64), _clustered(10, seed=3))
    b.add(np.arange(401, 421, dtype=np.int64), _clustered(20, seed=4))
    a.save(tmp_path, "ann-x")
    b.save(tmp_path, "ann-x")
    loaded = AnnIndex.load(tmp_path, "ann-x", 64, "m")
    assert loaded is not None
    assert (len(loaded), loaded.last_rowid) == (420, 420)
    assert not list(tmp_path.glob("*.partial"))
    assert all("-1-" not in graph.name for graph in tmp_path.glob("*.usearch"))
