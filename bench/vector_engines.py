"""Vector search side by side: CORTEX, Chroma and LanceDB fed the same vectors and queries.

At `--size` (default 100,000; quick 20,000) 384-d unit vectors, one process, one run:

- the vectors and queries are those of bench/search.py at that size (clustered synthetic unit
  vectors over synthetic facts; the CORTEX home `<home>/n<size>` is built by it when missing);
- the truth is exact float64 top-k by brute force over the stored vectors;
- CORTEX: `engine.search(query, mode="vector")` end to end (graph search, filter check and fact
  rows from SQLite) and its vector index alone (`TenantVectors.search`, what Chroma's and
  LanceDB's figures compare with);
- Chroma `PersistentClient` (HNSW, cosine space) and LanceDB (flat scan and IVF_PQ), each with
  only ids and distances returned, when the optional `bench` extra is installed
  (`pip install -e '.[bench]'`); a missing one is reported as such.

Target (issue 4): CORTEX's vector-only p95 no slower than Chroma's in the same run, at recall@10
>= 0.99 against exact search.

    .venv/bin/python bench/vector_engines.py --home /tmp/bench-search/full
    .venv/bin/python bench/vector_engines.py --quick

Human-readable progress goes to stderr; one JSON line with every figure goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import _common as c
import apsw
import numpy as np
import search as search_bench

import cortex


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    c.add_common_args(parser)
    parser.add_argument("--size", type=int, help="vectors (default 100000; quick 20000)")
    parser.add_argument("--queries", type=int, help="timed queries (default 300; quick 100)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed queries first")
    parser.add_argument("-k", type=int, default=10, help="results per search (default 10)")
    args = parser.parse_args(argv)
    args.size = args.size or (20_000 if args.quick else 100_000)
    args.queries = args.queries or (100 if args.quick else 300)
    if min(args.size, args.queries, args.k) < 1:
        parser.error("sizes and counts must be positive")
    return args


def stored_vectors(database: Path, tenant: str) -> tuple[np.ndarray, np.ndarray]:
    """(rowids, matrix) of every stored vector of `tenant`, by rowid."""
    conn = apsw.Connection(str(database), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        rows = conn.execute(
            "SELECT fact_rowid, vector FROM fact_vectors"
            " WHERE tenant_id = (SELECT id FROM tenants WHERE name = ?) ORDER BY fact_rowid",
            (tenant,),
        ).fetchall()
    finally:
        conn.close()
    rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
    return rowids, matrix


def exact_top_k(
    rowids: np.ndarray, matrix: np.ndarray, queries: np.ndarray, k: int
) -> list[set[int]]:
    """Brute-force float64 top-k rowids per query."""
    scores = matrix.astype(np.float64) @ queries.astype(np.float64).T  # (rows, queries)
    top = np.argsort(-scores, axis=0, kind="stable")[:k].T
    return [set(rowids[row].tolist()) for row in top]


async def measure(
    label: str,
    search: Callable[[int, np.ndarray], Awaitable[Sequence[int]]],
    queries: np.ndarray,
    truth: list[set[int]],
    warmup: int,
    k: int,
) -> dict[str, Any]:
    """Latency of `search(i, vector)` (rowids back) after `warmup` untimed queries; recall@k."""
    for i in range(warmup):
        await search(i, queries[i])
    times, overlaps = [], []
    for i in range(warmup, len(queries)):
        t = time.perf_counter()
        got = await search(i, queries[i])
        times.append(time.perf_counter() - t)
        overlaps.append(len(set(got) & truth[i]) / k)
    figures = c.latency_figures(label, times)
    figures["recall_at_k"] = round(float(np.mean(overlaps)), 4)
    c.log(f"  {'':<36} recall@{k} {figures['recall_at_k']:.4f}")
    return figures


async def run_cortex(
    args: argparse.Namespace,
    settings: cortex.Settings,
    texts: list[str],
    queries: np.ndarray,
    truth: list[set[int]],
) -> dict[str, Any]:
    """The engine end to end and its index alone; the first search loads or builds the graph."""
    cache = search_bench.QueryVectorCache(search_bench.ClusteredEmbedder(args.seed))
    cache.vectors = {text: queries[i : i + 1] for i, text in enumerate(texts)}
    engine = await cortex.open(settings, embedder=cache)
    try:
        t = time.perf_counter()
        await engine.search(texts[0], k=args.k, mode="vector")
        result: dict[str, Any] = {"cold_first_search_seconds": round(time.perf_counter() - t, 3)}
        index = engine._searcher._indexes[settings.tenant]
        result["index"] = {
            "graph_rows": 0 if index.ann is None else len(index.ann),
            "exact_rows": len(index.exact),
            "bytes": index.nbytes,
        }
        rowid_of = fact_rowids(settings.database_path)

        async def end_to_end(i: int, _: np.ndarray) -> list[int]:
            hits = await engine.search(texts[i], k=args.k, mode="vector")
            return [rowid_of[h.fact.id] for h in hits]

        async def index_alone(_: int, vector: np.ndarray) -> list[int]:
            rowids: list[int] = index.search(vector, args.k)[0].tolist()
            return rowids

        result["end_to_end"] = await measure(
            "CORTEX engine.search(mode=vector)", end_to_end, queries, truth, args.warmup, args.k
        )
        result["index_alone"] = await measure(
            "CORTEX vector index alone", index_alone, queries, truth, args.warmup, args.k
        )
        return result
    finally:
        await engine.aclose()


def fact_rowids(database: Path) -> dict[str, int]:
    conn = apsw.Connection(str(database), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return {r[1]: r[0] for r in conn.execute("SELECT rowid_, id FROM facts")}
    finally:
        conn.close()


async def run_chroma(
    args: argparse.Namespace,
    rowids: np.ndarray,
    matrix: np.ndarray,
    queries: np.ndarray,
    truth: list[set[int]],
    scratch: Path,
) -> dict[str, Any]:
    """Chroma PersistentClient, HNSW in cosine space, ids and distances only."""
    import chromadb

    client = chromadb.PersistentClient(
        path=str(scratch / "chroma"), settings=chromadb.Settings(anonymized_telemetry=False)
    )
    collection = client.create_collection(
        "bench", metadata={"hnsw:space": "cosine"}, embedding_function=None
    )
    t = time.perf_counter()
    step = min(5000, client.get_max_batch_size())
    for start in range(0, len(rowids), step):
        collection.add(
            ids=[str(r) for r in rowids[start : start + step]],
            embeddings=matrix[start : start + step],
        )
    build = time.perf_counter() - t
    c.log(f"  Chroma: {len(rowids):,} vectors added in {build:.1f} s")

    async def query(_: int, vector: np.ndarray) -> list[int]:
        found = collection.query(query_embeddings=[vector], n_results=args.k, include=["distances"])
        return [int(x) for x in found["ids"][0]]

    figures = await measure(
        "Chroma PersistentClient (HNSW)", query, queries, truth, args.warmup, args.k
    )
    return {"version": chromadb.__version__, "build_seconds": round(build, 1), **figures}


async def run_lancedb(
    args: argparse.Namespace,
    rowids: np.ndarray,
    matrix: np.ndarray,
    queries: np.ndarray,
    truth: list[set[int]],
    scratch: Path,
) -> dict[str, Any]:
    """LanceDB: a flat scan, then an IVF_PQ index; cosine distance, ids only."""
    import lancedb
    import pyarrow as pa

    db = lancedb.connect(str(scratch / "lance"))
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1])
    table = db.create_table("bench", pa.table({"id": pa.array(rowids), "vector": vectors}))

    async def query(_: int, vector: np.ndarray) -> list[int]:
        search = table.search(vector).distance_type("cosine").limit(args.k)
        rows = search.select(["id", "_distance"]).to_list()
        return [int(r["id"]) for r in rows]

    result: dict[str, Any] = {"version": lancedb.__version__}
    result["flat"] = await measure("LanceDB flat", query, queries, truth, args.warmup, args.k)
    t = time.perf_counter()
    table.create_index(metric="cosine", index_type="IVF_PQ", num_sub_vectors=48)
    result["ivf_pq_build_seconds"] = round(time.perf_counter() - t, 1)
    result["ivf_pq"] = await measure("LanceDB IVF_PQ", query, queries, truth, args.warmup, args.k)
    return result


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


async def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    home = root / f"n{args.size}"
    search_args = search_bench.parse_args(
        [
            "--home",
            str(root),
            "--sizes",
            str(args.size),
            "--real-max",
            "0",
            "--seed",
            str(args.seed),
        ]
    )
    await search_bench.child_build(search_args, home, args.size)
    settings = c.settings_for(home, args)
    texts = search_bench.SyntheticCorpus(args.seed).queries(args.warmup + args.queries)
    queries = search_bench.ClusteredEmbedder(args.seed).embed(texts)
    rowids, matrix = stored_vectors(settings.database_path, settings.tenant)
    c.log(f"n={len(rowids):,} vectors of {matrix.shape[1]} dimensions, {len(texts)} queries")
    truth = exact_top_k(rowids, matrix, queries, args.k)
    result: dict[str, Any] = {"size": len(rowids), "k": args.k, "env": c.environment()}
    result["cortex"] = await run_cortex(args, settings, texts, queries, truth)
    scratch = Path(tempfile.mkdtemp(prefix="vector-engines-"))
    try:
        for name, runner in (("chroma", run_chroma), ("lancedb", run_lancedb)):
            module = "chromadb" if name == "chroma" else name
            if not installed(module):
                c.log(f"  {name}: not installed (pip install -e '.[bench]'); skipped")
                result[name] = {"installed": False}
                continue
            result[name] = await runner(args, rowids, matrix, queries, truth, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ours = result["cortex"]["end_to_end"]
    if result["chroma"].get("p95_ms") is not None:
        result["target"] = {
            "cortex_vector_p95_ms": ours["p95_ms"],
            "chroma_p95_ms": result["chroma"]["p95_ms"],
            "ratio": round(ours["p95_ms"] / result["chroma"]["p95_ms"], 3),
            "recall_at_k": ours["recall_at_k"],
            "met": ours["p95_ms"] <= result["chroma"]["p95_ms"] and ours["recall_at_k"] >= 0.99,
        }
        c.log(f"target: {result['target']}")
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with c.bench_home(args.home, args.keep) as (root, _):
        c.emit(asyncio.run(run(args, root)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
