"""Ledger benchmark: build a large ledger, then time verify, proofs and proof verification.

1. Build: N store transactions via `engine.store_many` batches (skipped when `--home` already
   holds >= N entries; extended when it holds fewer). Reports build time and facts/s.
2. `await engine.verify()`: full recomputation of chain, Merkle tree, fact digests and
   checkpoint signatures (target < 10 s at 1,000,000 entries).
3. Inclusion proofs for `--samples` random seqs (target p95 < 1 ms), timed as
   a) the engine call `await engine.inclusion_proof(seq)`,
   b) the store call `await engine._store.inclusion_proof(tenant, seq, None)`,
   c) the store's work inside its reader thread (the same call, timed around the reader-pool
      function, so (a) - (c) is the cost of the thread hop and the event loop),
   d) a trivial read (`store.tree_size`) as the floor of any async read.
4. `merkle.verify_inclusion` on each proof (target p95 < 0.2 ms), also with the leaf hash
   recomputed from the entry bytes.
5. Consistency proofs for random (old, new) pairs (target p95 < 2 ms), and
   `merkle.verify_consistency` on each.
6. Database bytes per fact and peak RSS.

    .venv/bin/python bench/ledger.py --quick                     # 20,000 entries, < 30 s
    .venv/bin/python bench/ledger.py --home /tmp/l1m --keep      # 1,000,000 entries, reusable

Human-readable progress goes to stderr; one JSON line with every figure goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import random
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common as c

import cortex
from cortex.config import Settings
from cortex.ledger import merkle

TARGET_VERIFY_S_AT_1M = 10.0
TARGET_INCLUSION_P95_MS = 1.0
TARGET_VERIFY_INCLUSION_P95_MS = 0.2
TARGET_CONSISTENCY_P95_MS = 2.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Figures: stderr (human) and one JSON line on stdout.",
    )
    c.add_common_args(parser)
    parser.add_argument(
        "-n",
        "--entries",
        type=int,
        help="ledger size to build / require (default 1000000; quick 20000)",
    )
    parser.add_argument("--batch", type=int, default=1000, help="facts per store_many call")
    parser.add_argument(
        "--pipeline",
        type=int,
        default=1,
        help="store_many calls in flight while building (the writer may merge them into one"
        " group commit of up to write_batch_max rows)",
    )
    parser.add_argument(
        "--samples", type=int, default=2000, help="random seqs for inclusion proofs"
    )
    parser.add_argument(
        "--pairs", type=int, default=2000, help="random (old, new) pairs for consistency proofs"
    )
    parser.add_argument("--skip-verify", action="store_true", help="do not run engine.verify()")
    parser.add_argument(
        "--no-verify-serial",
        dest="verify_serial",
        action="store_false",
        help="skip the extra single-process run, engine.verify(workers=1), that follows the"
        " default (possibly multi-process) verify",
    )
    parser.add_argument(
        "--phases",
        default="build,verify,inclusion,consistency",
        help="comma-separated phases (build, verify, inclusion, consistency)",
    )
    args = parser.parse_args(argv)
    if args.entries is None:
        args.entries = 20_000 if args.quick else 1_000_000
    args.phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    if args.skip_verify:
        args.phases.discard("verify")
    unknown = args.phases - {"build", "verify", "inclusion", "consistency"}
    if unknown:
        parser.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    if min(args.entries, args.batch, args.pipeline, args.samples, args.pairs) < 1:
        parser.error("counts must be positive")
    return args


# ---------------------------------------------------------------------------------- build


async def build(engine: cortex.Cortex, start: int, target: int, args: Any) -> dict[str, Any]:
    """Append `target - start` facts with store_many, `--pipeline` calls in flight."""
    todo = target - start
    gen = c.FactGenerator(args.seed + start)  # deterministic continuation of a reused home
    c.log(
        f"build: {start:,} -> {target:,} entries, store_many batches of {args.batch:,},"
        f" {args.pipeline} in flight"
    )
    queue: asyncio.Queue[int | None] = asyncio.Queue()
    for offset in range(0, todo, args.batch):
        queue.put_nowait(min(args.batch, todo - offset))
    done = 0
    t0 = time.perf_counter()
    last_report = t0

    async def worker() -> None:
        nonlocal done, last_report
        while not queue.empty():
            n = queue.get_nowait()
            assert n is not None
            facts = await engine.store_many(gen.batch(n))
            done += len(facts)
            now = time.perf_counter()
            if now - last_report >= 10:
                last_report = now
                rate = done / (now - t0)
                eta = (todo - done) / rate
                c.log(
                    f"  built {start + done:,}/{target:,}  {rate:,.0f} facts/s"
                    f"  ETA {eta:,.0f} s  RSS {c.peak_rss_mib()} MiB"
                )

    await asyncio.gather(*(worker() for _ in range(args.pipeline)))
    seconds = time.perf_counter() - t0
    c.log(f"build done: {todo:,} facts in {seconds:,.1f} s = {todo / seconds:,.0f} facts/s")
    return {
        "built": todo,
        "seconds": round(seconds, 2),
        "facts_per_s": round(todo / seconds, 1),
        "batch": args.batch,
        "pipeline": args.pipeline,
        "group_commits": engine.writer.stats.groups,
        "peak_rss_mib": c.peak_rss_mib(),
    }


# ---------------------------------------------------------------------------------- timing


class ReaderTimer:
    """Times each call the store runs on its reader pool, inside the reader thread."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.samples: list[float] = []
        self._original = store.__dict__.get("_with_reader", store._with_reader)

    def __enter__(self) -> ReaderTimer:
        original = self._original

        def timed(fn: Callable[[Any], Any]) -> Any:
            t = time.perf_counter()
            try:
                return original(fn)
            finally:
                self.samples.append(time.perf_counter() - t)

        self.store._with_reader = timed
        return self

    def __exit__(self, *exc: object) -> None:
        self.store._with_reader = self._original


async def timed_calls(
    label: str, make: Callable[[int], Any], keys: list[Any]
) -> tuple[list[float], list[Any]]:
    """Await `make(key)` for each key sequentially; return durations and results."""
    times: list[float] = []
    results: list[Any] = []
    for key in keys:
        t = time.perf_counter()
        value = await make(key)
        times.append(time.perf_counter() - t)
        results.append(value)
    p = c.percentiles_ms(times)
    c.log(
        f"  {label:<44} p50 {p['p50_ms']:8.4f}  p95 {p['p95_ms']:8.4f}  p99 {p['p99_ms']:8.4f} ms"
    )
    return times, results


def timed_sync(label: str, fn: Callable[[Any], bool], items: list[Any]) -> dict[str, float]:
    times = []
    failures = 0
    for item in items:
        t = time.perf_counter()
        ok = fn(item)
        times.append(time.perf_counter() - t)
        failures += not ok
    p = c.percentiles_ms(times)
    c.log(
        f"  {label:<44} p50 {p['p50_ms']:8.4f}  p95 {p['p95_ms']:8.4f}"
        f"  p99 {p['p99_ms']:8.4f} ms  failures {failures}"
    )
    if failures:
        raise SystemExit(f"{label}: {failures} proofs did not verify")
    return p


# ---------------------------------------------------------------------------------- phases


def _supports_workers(engine: cortex.Cortex) -> bool:
    return "workers" in inspect.signature(engine.verify).parameters


async def timed_verify(engine: cortex.Cortex, size: int, **kwargs: Any) -> dict[str, Any]:
    """One `engine.verify(**kwargs)`: wall time, CPU of this process and of child processes."""
    cpu0 = c.cpu_seconds()
    t = time.perf_counter()
    report = await engine.verify(**kwargs)
    seconds = time.perf_counter() - t
    cpu1 = c.cpu_seconds()
    cpu_self = cpu1["self"] - cpu0["self"]
    cpu_kids = cpu1["children"] - cpu0["children"]
    c.log(
        f"  verify({', '.join(f'{k}={v}' for k, v in kwargs.items())}) {seconds:,.2f} s"
        f" ({size / seconds:,.0f} entries/s; CPU {cpu_self:,.1f} s here +"
        f" {cpu_kids:,.1f} s in child processes): ok={report.ok} entries={report.entries:,}"
        f" facts={report.facts:,} checkpoints={report.checkpoints:,}"
    )
    if not report.ok:
        c.log(f"  PROBLEMS: {[p.to_dict() for p in report.problems[:5]]}")
    return {
        "seconds": round(seconds, 3),
        "entries_per_s": round(size / seconds, 1),
        "us_per_entry": round(seconds / size * 1e6, 2),
        "cpu_seconds_self": round(cpu_self, 2),
        "cpu_seconds_children": round(cpu_kids, 2),
        "ok": report.ok,
        "entries": report.entries,
        "facts": report.facts,
        "checkpoints": report.checkpoints,
        "problems": len(report.problems),
    }


async def phase_verify(
    engine: cortex.Cortex, size: int, profiler: c.PhaseProfiler | None, args: Any
) -> dict[str, Any]:
    c.log(f"verify: engine.verify() over {size:,} entries")
    with c.maybe_phase(profiler, "ledger-verify"):
        result = await timed_verify(engine, size)
    projected = result["seconds"] * 1_000_000 / size
    result["projected_seconds_at_1m"] = round(projected, 2)
    result["target"] = c.target_line(
        "verify time, projected to 1M entries" if size != 1_000_000 else "verify time",
        projected,
        "s",
        "<",
        TARGET_VERIFY_S_AT_1M,
    )
    if args.verify_serial and _supports_workers(engine):
        # The same checks in one scan inside the engine's reader thread (no child processes):
        # the per-entry cost, and what cProfile can see.
        with c.maybe_phase(profiler, "ledger-verify-serial"):
            result["serial"] = await timed_verify(engine, size, workers=1)
        result["parallel_speedup"] = round(result["serial"]["seconds"] / result["seconds"], 2)
    result["peak_rss_mib"] = c.peak_rss_mib()
    result["peak_rss_children_mib"] = c.peak_rss_mib(resource.RUSAGE_CHILDREN)
    return result


async def phase_inclusion(
    engine: cortex.Cortex, size: int, rng: random.Random, args: Any
) -> dict[str, Any]:
    tenant = engine.settings.tenant
    store = engine._store
    seqs = [rng.randrange(size) for _ in range(args.samples)]
    c.log(f"inclusion proofs: {len(seqs):,} random seqs in a tree of {size:,}")
    for seq in seqs[:50]:  # warm the reader connections and statement caches
        await engine.inclusion_proof(seq)
    # Engine and store calls are interleaved (alternating which goes first) so that machine
    # noise hits both alike; the reader-thread timer sees both calls' store work.
    engine_t: list[float] = []
    store_t: list[float] = []
    proofs = []
    with ReaderTimer(store) as timer:
        for i, seq in enumerate(seqs):
            for which in (0, 1) if i % 2 == 0 else (1, 0):
                t = time.perf_counter()
                if which == 0:
                    proof = await engine.inclusion_proof(seq)
                    engine_t.append(time.perf_counter() - t)
                    proofs.append(proof)
                else:
                    await store.inclusion_proof(tenant, seq, None)
                    store_t.append(time.perf_counter() - t)
    for label, times in (
        ("engine.inclusion_proof(seq)", engine_t),
        ("store.inclusion_proof(tenant, seq, None)", store_t),
        ("  store work inside the reader thread", timer.samples),
    ):
        p = c.percentiles_ms(times)
        c.log(
            f"  {label:<44} p50 {p['p50_ms']:8.4f}  p95 {p['p95_ms']:8.4f}"
            f"  p99 {p['p99_ms']:8.4f} ms"
        )
    thread = c.percentiles_ms(timer.samples)
    floor_t, _ = await timed_calls(
        "store.tree_size(tenant) (trivial read floor)",
        lambda _s: store.tree_size(tenant),
        seqs,
    )
    path_lengths = [len(p.path) for p in proofs]
    c.log("verify_inclusion:")
    for p in proofs[:200]:  # warm-up
        merkle.verify_inclusion(merkle.leaf_hash(p.entry), p.seq, p.tree_size, p.path, p.root)
    verify = timed_sync(
        "merkle.verify_inclusion(proof)",
        lambda p: merkle.verify_inclusion(p.leaf_hash, p.seq, p.tree_size, p.path, p.root),
        proofs,
    )
    verify_leaf = timed_sync(
        "leaf_hash(entry) + verify_inclusion",
        lambda p: merkle.verify_inclusion(
            merkle.leaf_hash(p.entry), p.seq, p.tree_size, p.path, p.root
        ),
        proofs,
    )
    engine_p = c.percentiles_ms(engine_t)
    return {
        "samples": len(seqs),
        "tree_size": size,
        "mean_path_length": round(sum(path_lengths) / len(path_lengths), 2),
        "engine": engine_p,
        "store": c.percentiles_ms(store_t),
        "store_in_reader_thread": thread,
        "trivial_read_floor": c.percentiles_ms(floor_t),
        "verify_inclusion": verify,
        "verify_inclusion_with_leaf_hash": verify_leaf,
        "target_generation_p95": c.target_line(
            "inclusion proof p95 (engine)", engine_p["p95_ms"], "ms", "<", TARGET_INCLUSION_P95_MS
        ),
        "target_verification_p95": c.target_line(
            "verify_inclusion p95",
            verify["p95_ms"],
            "ms",
            "<",
            TARGET_VERIFY_INCLUSION_P95_MS,
        ),
    }


async def phase_consistency(
    engine: cortex.Cortex, size: int, rng: random.Random, args: Any
) -> dict[str, Any]:
    tenant = engine.settings.tenant
    store = engine._store
    pairs = []
    for _ in range(args.pairs):
        a, b = rng.randint(1, size), rng.randint(1, size)
        pairs.append((min(a, b), max(a, b)))
    c.log(f"consistency proofs: {len(pairs):,} random (old, new) pairs, new <= {size:,}")
    for old, new in pairs[:50]:
        await engine.consistency_proof(old, new)
    engine_t, proofs = await timed_calls(
        "engine.consistency_proof(old, new)",
        lambda pair: engine.consistency_proof(*pair),
        pairs,
    )
    with ReaderTimer(store) as timer:
        await timed_calls(
            "store.consistency_proof (reader-thread timed)",
            lambda pair: store.consistency_proof(tenant, *pair),
            pairs,
        )
    thread = c.percentiles_ms(timer.samples)
    c.log(
        f"  {'  inside the reader thread':<44} p50 {thread['p50_ms']:8.4f}"
        f"  p95 {thread['p95_ms']:8.4f}  p99 {thread['p99_ms']:8.4f} ms"
    )
    c.log("verify_consistency:")
    for p in proofs[:200]:  # warm-up
        merkle.verify_consistency(p.old_size, p.new_size, p.old_root, p.new_root, p.path)
    verify = timed_sync(
        "merkle.verify_consistency(proof)",
        lambda p: merkle.verify_consistency(p.old_size, p.new_size, p.old_root, p.new_root, p.path),
        proofs,
    )
    engine_p = c.percentiles_ms(engine_t)
    return {
        "pairs": len(pairs),
        "engine": engine_p,
        "store_in_reader_thread": thread,
        "verify_consistency": verify,
        "mean_path_length": round(sum(len(p.path) for p in proofs) / len(proofs), 2),
        "target_generation_p95": c.target_line(
            "consistency proof p95 (engine)",
            engine_p["p95_ms"],
            "ms",
            "<",
            TARGET_CONSISTENCY_P95_MS,
        ),
    }


# ---------------------------------------------------------------------------------- main


async def run(args: argparse.Namespace, home: Path, settings: Settings) -> dict[str, Any]:
    result: dict[str, Any] = {
        "bench": "ledger",
        "quick": args.quick,
        "home": str(home),
        "requested_entries": args.entries,
        "env": c.environment(),
        "settings": {
            "checkpoint_every": settings.checkpoint_every,
            "write_batch_max": settings.write_batch_max,
            "read_threads": settings.read_threads,
        },
    }
    rng = random.Random(args.seed)
    c.log(f"home {home}; cortex source {result['env']['cortex_src_sha256']}")
    profiler = c.PhaseProfiler(args.profile) if args.profile else None
    engine = await cortex.open(settings, embedder=None)  # the ledger, not the model, is measured
    try:
        result["durability"] = await c.durability(engine)
        if profiler is not None:
            profiler.install(engine)
        existing = (await engine.stats()).transactions
        result["existing_entries"] = existing
        marker = home / "bench-ledger.json"
        if existing and marker.exists():
            built_by = json.loads(marker.read_text()).get("cortex_src_sha256")
            result["built_by_cortex_src_sha256"] = built_by
            if built_by != result["env"]["cortex_src_sha256"]:
                c.log(
                    f"WARNING: this ledger was built by other cortex code ({built_by}); figures"
                    " (verify especially) may not match a ledger built by the current code"
                )
        if existing >= args.entries:
            c.log(f"home already holds {existing:,} entries (>= {args.entries:,}): no build")
        elif "build" in args.phases:
            with c.maybe_phase(profiler, "ledger-build"):
                result["build"] = await build(engine, existing, args.entries, args)
            marker.write_text(
                json.dumps(
                    {
                        "entries": args.entries,
                        "cortex_src_sha256": result["env"]["cortex_src_sha256"],
                    }
                )
            )
        else:
            c.log(f"home holds {existing:,} entries and the build phase was not requested")
        stats = await engine.stats()
        size = stats.transactions
        result["tree_size"] = size
        result["checkpoints"] = stats.checkpoints
        if size == 0:
            raise SystemExit("the ledger is empty; nothing to measure")
        if "verify" in args.phases:
            result["verify"] = await phase_verify(engine, size, profiler, args)
        if "inclusion" in args.phases:
            with c.maybe_phase(profiler, "ledger-inclusion"):
                result["inclusion"] = await phase_inclusion(engine, size, rng, args)
        if "consistency" in args.phases:
            with c.maybe_phase(profiler, "ledger-consistency"):
                result["consistency"] = await phase_consistency(engine, size, rng, args)
    finally:
        await engine.aclose()
    if profiler is not None:
        result["profile"] = profiler.reports
    files = c.checkpointed_db_bytes(settings.database_path)
    total = files["db"] + files["db_wal"]
    result["db"] = {
        **files,
        "bytes": total,
        "facts": stats.facts,
        "bytes_per_fact": round(total / max(stats.facts, 1), 1),
        "by_table": c.db_breakdown(settings.database_path, stats.facts),
    }
    result["peak_rss_mib"] = c.peak_rss_mib()
    result["peak_rss_children_mib"] = c.peak_rss_mib(resource.RUSAGE_CHILDREN)
    c.log(
        f"db: {total / 1e6:,.1f} MB for {stats.facts:,} facts ="
        f" {result['db']['bytes_per_fact']:,.0f} bytes/fact; peak RSS {result['peak_rss_mib']} MiB"
    )
    c.log_breakdown(result["db"]["by_table"])
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    with c.bench_home(args.home, args.keep) as (home, _temporary):
        settings = c.settings_for(home, args)
        result = asyncio.run(run(args, home, settings))
    result["total_seconds"] = round(time.perf_counter() - t0, 2)
    c.log("summary:")
    if "build" in result:
        b = result["build"]
        c.log(f"  build        {b['seconds']:>10,.1f} s   {b['facts_per_s']:>10,.0f} facts/s")
    if "verify" in result:
        v = result["verify"]
        c.log(
            f"  verify       {v['seconds']:>10,.2f} s   (projected 1M: "
            f"{v['projected_seconds_at_1m']:,.1f} s; target < 10 s)"
        )
        if "serial" in v:
            c.log(
                f"  verify 1 proc{v['serial']['seconds']:>10,.2f} s   "
                f"({v['serial']['us_per_entry']:.1f} us/entry; parallel speedup"
                f" {v['parallel_speedup']}x)"
            )
    if "inclusion" in result:
        i = result["inclusion"]
        c.log(
            f"  inclusion    p95 {i['engine']['p95_ms']:.4f} ms (< 1 ms);"
            f" verify p95 {i['verify_inclusion']['p95_ms']:.4f} ms (< 0.2 ms)"
        )
    if "consistency" in result:
        k = result["consistency"]
        c.log(f"  consistency  p95 {k['engine']['p95_ms']:.4f} ms (< 2 ms)")
    c.log(f"  db           {result['db']['bytes_per_fact']:,.0f} bytes/fact")
    c.log(
        f"  peak RSS     {result['peak_rss_mib']} MiB"
        f" (child processes: {result['peak_rss_children_mib']} MiB)"
    )
    c.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
