"""Purge benchmark: what erasing one fact costs on a large SQLite store.

A purge destroys the fact's row content, deletes its text row and vector, then merges the FTS5
index (`optimize`: a deleted row's terms stay in the index segments until they are merged) and
truncates the WAL, so that no byte of the content is left in any file. This measures:

1. Build: N facts (synthetic agent memories, text-only engine) in `store_many` batches.
2. Purge latency end to end (`engine.purge`, gate off) for `--purges` random facts, and the
   part spent in the FTS5 merge and the WAL truncation (timed alone afterwards, the merge on
   one deleted row inside a transaction that is rolled back); a deprecation as the baseline.
3. The cost of `PRAGMA secure_delete` (always on in the writer) on ingest: facts/s with it off
   and on, in the same run, interleaved.
4. The full-text index and database sizes.

    .venv/bin/python bench/purge.py --quick          # 10,000 facts, < 1 min
    .venv/bin/python bench/purge.py                  # 100,000 facts

Human-readable progress goes to stderr; one JSON line with every figure goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any

import _common as c

import cortex


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    c.add_common_args(parser)
    parser.add_argument("-n", "--facts", type=int, default=100_000, help="facts to build")
    parser.add_argument("--purges", type=int, default=5, help="facts to purge (timed)")
    parser.add_argument(
        "--ingest-rounds", type=int, default=4, help="interleaved rounds per secure_delete mode"
    )
    return parser.parse_args(argv)


async def _writer_pragma(engine: cortex.Cortex, sql: str) -> None:
    store = engine._store  # the bench reaches into the SQLite store, as _common.durability does

    def run() -> None:
        store._conn().execute(sql)  # type: ignore[union-attr]

    await store._run_write(run)  # type: ignore[union-attr]


async def _purge_parts_seconds(engine: cortex.Cortex) -> tuple[float, float]:
    """Seconds of a purge's FTS5 merge (one row deleted, then `optimize`, rolled back) and of
    the WAL truncation that follows it."""
    store = engine._store

    def run() -> tuple[float, float]:
        conn = store._conn()  # type: ignore[union-attr]
        rowid = next(iter(conn.execute("SELECT max(rowid_) FROM facts WHERE purged_at IS NULL")))[0]
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM fact_text WHERE rowid = ?", (rowid,))
            start = time.perf_counter()
            conn.execute("INSERT INTO fact_text(fact_text) VALUES ('optimize')")
            merged = time.perf_counter() - start
        finally:
            conn.execute("ROLLBACK")
        start = time.perf_counter()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return merged, time.perf_counter() - start

    merged, truncated = await store._run_write(run)  # type: ignore[union-attr]
    return float(merged), float(truncated)


async def _fts_bytes(engine: cortex.Cortex) -> int:
    store = engine._store

    def read(conn: Any) -> int:
        (size,) = next(iter(conn.execute("SELECT sum(length(block)) FROM fact_text_data")))
        return int(size or 0)

    return int(await store._run_read(read))  # type: ignore[union-attr]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    facts = 10_000 if args.quick else args.facts
    rng = random.Random(args.seed)
    generator = c.FactGenerator(args.seed)
    result: dict[str, Any] = {"facts": facts}
    with c.bench_home(args.home, args.keep) as (home, _):
        settings = c.settings_for(home, args, embedder="none", gated_actions=())
        async with await cortex.open(settings, embedder=None) as engine:
            start = time.perf_counter()
            ids: list[str] = []
            for done in range(0, facts, 2000):
                stored = await engine.store_many(generator.batch(min(2000, facts - done)))
                ids += [f.id for f in stored]
            result["build_facts_per_s"] = round(facts / (time.perf_counter() - start))
            c.log(f"built {facts} facts at {result['build_facts_per_s']}/s")
            result["fts_index_mib_before"] = round(await _fts_bytes(engine) / 2**20, 1)

            purge_s = []
            for fact_id in rng.sample(ids, args.purges):
                t = time.perf_counter()
                await engine.purge(fact_id, "benchmark erasure")
                purge_s.append(time.perf_counter() - t)
            result["purge"] = c.latency_figures("purge", purge_s)
            parts = [await _purge_parts_seconds(engine) for _ in range(3)]
            result["fts_merge"] = c.latency_figures("fts_merge", [p[0] for p in parts])
            result["wal_truncate"] = c.latency_figures("wal_truncate", [p[1] for p in parts])
            deprecate_s = []
            for fact_id in rng.sample(ids, args.purges):
                t = time.perf_counter()
                await engine.deprecate(fact_id, "baseline write")
                deprecate_s.append(time.perf_counter() - t)
            result["deprecate_baseline"] = c.latency_figures("deprecate", deprecate_s)
            c.log(
                f"purge p50 {result['purge']['p50_ms']} ms (of it: FTS5 merge p50"
                f" {result['fts_merge']['p50_ms']} ms; a deprecation"
                f" {result['deprecate_baseline']['p50_ms']} ms)"
            )
            result["fts_index_mib_after"] = round(await _fts_bytes(engine) / 2**20, 1)

            rates: dict[str, list[float]] = {"off": [], "on": []}
            batch = 2000 if args.quick else 5000
            for _ in range(args.ingest_rounds):
                for mode in ("off", "on"):
                    await _writer_pragma(engine, f"PRAGMA secure_delete = {mode.upper()}")
                    t = time.perf_counter()
                    for _ in range(2):
                        await engine.store_many(generator.batch(batch // 2))
                    rates[mode].append(batch / (time.perf_counter() - t))
            await _writer_pragma(engine, "PRAGMA secure_delete = ON")
            on, off = c.mean(rates["on"]), c.mean(rates["off"])
            result["ingest_facts_per_s"] = {"secure_delete_off": round(off), "on": round(on)}
            result["ingest_ratio_on_over_off"] = round(on / off, 3)
            c.log(f"ingest with secure_delete on/off: {on:.0f}/{off:.0f} facts/s = {on / off:.2f}")
        result["database_bytes"] = c.db_files_bytes(settings.database_path)
    result["environment"] = c.environment()
    return result


def main() -> None:
    args = parse_args()
    c.emit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
