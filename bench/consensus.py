"""Consensus benchmark: a tenant with N votes; cost of consensus and reputation reads.

1. Build: `--facts` facts written by `--agents` agents, then `--votes` votes (10% of them
   replace an agent's earlier vote), and 2% of the facts deprecated.
2. Cold read: a new engine's first `consensus(fact)` reads every vote/deprecate/supersede/purge
   entry, looks up the authors of voted and deprecated facts, and settles the tenant.
3. Warm reads: `consensus` and `reputation` when the ledger did not change (one `tree_size`
   query plus, for `consensus`, the fact's own vote entries).
4. Incremental: the first `consensus` after one more vote (reads the new entry, re-settles).
5. Search: text search with `consensus="not_disputed"` against the plain search.
6. Memory: bytes held by the tally after the cold read (tracemalloc), and `settle` alone.

    .venv/bin/python bench/consensus.py --quick            # 2,000 votes, a few seconds
    .venv/bin/python bench/consensus.py                    # 10,000 votes
    .venv/bin/python bench/consensus.py --database-url postgresql://...   # on PostgreSQL

Human-readable progress goes to stderr; one JSON line with every figure goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import tracemalloc
from pathlib import Path
from typing import Any

import _common as c

import cortex
from cortex.consensus import FactRecord, settle


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    c.add_common_args(parser)
    parser.add_argument("--votes", type=int, default=10_000, help="votes to cast (10,000)")
    parser.add_argument("--facts", type=int, default=2_000, help="facts voted on (2,000)")
    parser.add_argument("--agents", type=int, default=300, help="agents (300)")
    parser.add_argument("--samples", type=int, default=200, help="timed reads per phase")
    parser.add_argument("--database-url", default=None, help="run on this PostgreSQL database")
    args = parser.parse_args()
    if args.quick:
        args.votes, args.facts, args.agents, args.samples = 2_000, 400, 100, 50
    return args


async def build(settings: cortex.Settings, args: argparse.Namespace) -> list[str]:
    rng = random.Random(args.seed)
    agents = [f"agent-{i}" for i in range(args.agents)]
    async with await cortex.open(settings) as engine:
        facts = await engine.store_many(
            [
                {"content": f"fact {i} about service {i % 97}", "source": rng.choice(agents)}
                for i in range(args.facts)
            ]
        )
        ids = [f.id for f in facts]
        # Each fact has a leaning, so that facts settle both ways and reputations differ.
        leaning = {fid: rng.choice([0.9, 0.75, 0.5, 0.25, 0.1]) for fid in ids}
        cast: list[tuple[str, str]] = []
        start = time.perf_counter()
        for chunk in range(0, args.votes, 500):
            calls = []
            for _ in range(min(500, args.votes - chunk)):
                if cast and rng.random() < 0.1:
                    fid, agent = rng.choice(cast)  # a replacement
                else:
                    fid, agent = rng.choice(ids), rng.choice(agents)
                    cast.append((fid, agent))
                value = 1 if rng.random() < leaning[fid] else -1
                calls.append(engine.vote(fid, value, agent=agent))
            await asyncio.gather(*calls)
        elapsed = time.perf_counter() - start
        c.log(f"cast {args.votes:,} votes in {elapsed:.1f} s ({args.votes / elapsed:,.0f}/s)")
        for fid in rng.sample(ids, max(1, args.facts // 50)):
            await engine.deprecate(fid, "found wrong")
    return ids


async def measure(settings: cortex.Settings, ids: list[str], args: argparse.Namespace) -> Any:
    rng = random.Random(args.seed + 1)
    result: dict[str, Any] = {}
    async with await cortex.open(settings) as engine:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        found = await engine.consensus(ids[0])
        result["cold_read_s"] = round(time.perf_counter() - start, 4)
        held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        result["tally_bytes"] = held
        result["tree_size"] = found.tree_size
        result["converged"] = found.converged
        c.log(
            f"cold consensus read: {result['cold_read_s'] * 1000:,.0f} ms;"
            f" tally holds ~{held / 1e6:.1f} MB; converged={found.converged}"
        )

        def sample() -> str:
            return rng.choice(ids)

        times = []
        for _ in range(args.samples):
            start = time.perf_counter()
            await engine.consensus(sample())
            times.append(time.perf_counter() - start)
        result["warm_consensus"] = c.percentiles_ms(times)
        times = []
        for _ in range(args.samples):
            agent = f"agent-{rng.randrange(args.agents)}"
            start = time.perf_counter()
            await engine.reputation(agent)
            times.append(time.perf_counter() - start)
        result["warm_reputation"] = c.percentiles_ms(times)
        times = []
        for number in range(min(20, args.samples)):
            fid = sample()
            try:
                await engine.vote(fid, 1, agent=f"late-{number}")
            except cortex.Conflict:
                continue  # a deprecated fact
            start = time.perf_counter()
            await engine.consensus(fid)
            times.append(time.perf_counter() - start)
        result["after_one_vote"] = c.percentiles_ms(times)
        for name, options in (("plain", {}), ("not_disputed", {"consensus": "not_disputed"})):
            times = []
            for _ in range(args.samples):
                query = f"service {rng.randrange(97)}"
                start = time.perf_counter()
                await engine.search(query, mode="text", **options)
                times.append(time.perf_counter() - start)
            result[f"search_{name}"] = c.percentiles_ms(times)
        tally = engine._consensus._tallies[engine.settings.tenant]
        records = {
            fid: FactRecord(author, *tally.ends.get(fid, (None, None)))
            for fid, author in tally.authors.items()
        }
        start = time.perf_counter()
        settled = settle(records, tally.votes, engine._consensus.policy)
        result["settle_s"] = round(time.perf_counter() - start, 4)
        result["settle_rounds"] = settled.rounds
        statuses = [s.status for s in settled.scores.values()]
        result["statuses"] = {s: statuses.count(s) for s in ("verified", "disputed", "unverified")}
        result["standing_votes"] = sum(len(v) for v in tally.votes.values())
    for key in (
        "warm_consensus",
        "warm_reputation",
        "after_one_vote",
        "search_plain",
        "search_not_disputed",
    ):
        c.log(f"{key}: p50 {result[key]['p50_ms']:.2f} ms, p95 {result[key]['p95_ms']:.2f} ms")
    c.log(
        f"settle alone: {result['settle_s'] * 1000:.0f} ms in {result['settle_rounds']} rounds;"
        f" statuses {result['statuses']}"
    )
    return result


def main() -> None:
    args = parse_args()
    with c.bench_home(args.home, args.keep) as (home, _):
        overrides: dict[str, Any] = {"embedder": "none"}
        if args.database_url:
            overrides["database_url"] = args.database_url
        settings = c.settings_for(Path(home), args, **overrides)
        ids = asyncio.run(build(settings, args))
        result = asyncio.run(measure(settings, ids, args))
    c.emit(
        {
            "votes": args.votes,
            "facts": args.facts,
            "agents": args.agents,
            **result,
            "env": c.environment(),
        }
    )


if __name__ == "__main__":
    main()
