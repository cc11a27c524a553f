"""Loopback load on the REST service: N concurrent SDK clients, mixed store/search, then overload.

    .venv/bin/python bench/api_load.py --quick      # 2,000 facts, 50 clients x 6 s, ~1 min
    .venv/bin/python bench/api_load.py              # 10,000 facts, 50 clients x 30 s

Phase 1 preloads facts (batches of 1,000, embedded by the real model unless --embedder none).
Phase 2 runs `--clients` AsyncClient instances (one API key each, no retries, so every refusal
counts as an error) against a `cortex serve` process on 127.0.0.1 for `--seconds`: each request
is a `store` or a hybrid `search` (k=10, query embedding included), with `--think` seconds
(mean) between a client's requests; each client starts its loop at a random point of its first
think time (ramp-up), not all at once. `--think 0` saturates the server: every store and query is
embedded on one model thread (concurrent texts share model batches), so latency then grows
with the number of clients. It reports requests/s and p50/p95/p99 per operation; each client's
first request (a `list`: connection set-up and the key's first check, all 50 at once) is timed
apart as `first_request` and not counted in the operations' figures. Phase 3 restarts the
server on a fresh home with a tiny write queue (`write_queue_size` 4, `write_timeout` 0.05 s)
and hammers it with batch writes while a probe times GET /health: it reports the 503s (each
must carry Retry-After) and /health p95, and checks that every acknowledged fact is stored
and the ledger verifies.
Targets (issue 5): 0 errors, store p95 < 25 ms, search p95 < 60 ms at 10k facts, /health p95
< 10 ms under overload.
Human-readable progress on stderr; one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    FactGenerator,
    add_home_args,
    bench_home,
    emit,
    environment,
    log,
    percentiles_ms,
    target_line,
)

from cortex.api.keys import KeyStore
from cortex.client import AsyncClient
from cortex.config import Settings
from cortex.engine import init_home
from cortex.errors import CortexError

CORTEX = str(Path(sys.executable).with_name("cortex"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(home: Path, env: dict[str, str]) -> Iterator[str]:
    """Run `cortex serve` on a free loopback port until the block ends; yield its URL."""
    port = _free_port()
    process = subprocess.Popen(
        [CORTEX, "serve", "--home", str(home), "--port", str(port), "--log-level", "error"],
        env={**os.environ, **env},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"cortex serve exited with {process.returncode}")
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("cortex serve did not become ready in 120 s")
            time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def issue_keys(settings: Settings, count: int, role: str = "writer") -> list[str]:
    """`count` keys of tenant `bench` (one per client)."""
    with KeyStore.open(settings) as store:
        return [store.create("bench", role).key for _ in range(count)]


async def preload(url: str, key: str, facts: int, seed: int) -> float:
    """Store `facts` facts in batches of 1,000; return the seconds it took."""
    generator = FactGenerator(seed)
    start = time.perf_counter()
    async with AsyncClient(url, key, timeout=600) as client:
        done = 0
        while done < facts:
            size = min(1000, facts - done)
            await client.store_many(generator.batch(size))
            done += size
            log(f"  preloaded {done:,} facts")
    return time.perf_counter() - start


async def mixed_load(
    url: str, keys: list[str], seconds: float, search_ratio: float, seed: int, think: float
) -> dict[str, Any]:
    """Each key's client stores or searches in a loop for `seconds`, pausing `think` seconds
    between requests (0: back to back); latencies per operation."""
    latencies: dict[str, list[float]] = {"store": [], "search": []}
    errors: Counter[str] = Counter()
    first: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client_loop(number: int, key: str) -> None:
        rng = random.Random(seed + number)
        generator = FactGenerator(seed * 1000 + number)
        async with AsyncClient(url, key, timeout=30, retries=0) as client:
            # The connection and the key's first check (each client has its own key) are timed
            # apart, as `first_request`: all clients start at once, so they queue together.
            start = time.perf_counter()
            await client.list(limit=1)
            first.append(time.perf_counter() - start)
            if think > 0:
                # Ramp-up: each client starts its loop at a random point of one think time,
                # as independent clients would (not all at the instant the set-up ended).
                await asyncio.sleep(rng.uniform(0, think))
            while time.perf_counter() < deadline:
                op = "search" if rng.random() < search_ratio else "store"
                start = time.perf_counter()
                try:
                    if op == "store":
                        content, options = generator.store_kwargs()
                        await client.store(content, **options)
                    else:
                        await client.search(generator.query(), k=10, mode="hybrid")
                except CortexError as exc:
                    errors[f"{op}:{type(exc).__name__}"] += 1
                    continue
                latencies[op].append(time.perf_counter() - start)
                if think > 0:
                    await asyncio.sleep(rng.uniform(0.5, 1.5) * think)

    start = time.perf_counter()
    await asyncio.gather(*(client_loop(n, key) for n, key in enumerate(keys)))
    elapsed = time.perf_counter() - start
    requests = sum(len(v) for v in latencies.values()) + sum(errors.values())
    return {
        "clients": len(keys),
        "seconds": round(elapsed, 2),
        "requests": requests,
        "requests_per_s": round(requests / elapsed, 1),
        "first_request": percentiles_ms(first),
        "store": percentiles_ms(latencies["store"]),
        "search": percentiles_ms(latencies["search"]),
        "errors": dict(errors),
        "error_count": sum(errors.values()),
    }


_PROBE = """
import json, sys, time
import httpx
url, seconds = sys.argv[1], float(sys.argv[2])
times = []
deadline = time.perf_counter() + seconds
with httpx.Client(base_url=url, timeout=30) as http:
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        if http.get("/health").status_code == 200:
            times.append(time.perf_counter() - start)
        time.sleep(0.02)
print(json.dumps(times))
"""


async def overload(url: str, keys: list[str], seconds: float) -> dict[str, Any]:
    """Batch writes from every key with no retries, while a probe times GET /health."""
    statuses: Counter[int] = Counter()
    missing_retry_after = 0
    acknowledged: list[str] = []
    health: list[float] = []
    deadline = time.perf_counter() + seconds

    async def writer(number: int, key: str) -> None:
        nonlocal missing_retry_after
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
            batch = 0
            while time.perf_counter() < deadline:
                facts = [{"content": f"overload {number}-{batch}-{i}"} for i in range(20)]
                batch += 1
                response = await http.post("/v1/facts/batch", json={"facts": facts})
                statuses[response.status_code] += 1
                if response.status_code == 201:
                    acknowledged.extend(f["id"] for f in response.json()["items"])
                elif response.status_code == 503:
                    if "retry-after" not in response.headers:
                        missing_retry_after += 1
                    await asyncio.sleep(0.01)

    # The probe is a process of its own: in this one it would wait for the writers' event loop
    # and the server's responsiveness would be mixed up with the load generator's.
    probe = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _PROBE, url, str(seconds), stdout=asyncio.subprocess.PIPE
    )
    await asyncio.gather(*(writer(n, key) for n, key in enumerate(keys)))
    out, _ = await probe.communicate()
    health.extend(json.loads(out))
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {keys[0]}"}, timeout=120
    ) as http:
        stored: set[str] = set()
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if cursor:
                params["cursor"] = cursor
            page = (await http.get("/v1/facts", params=params)).json()
            stored |= {f["id"] for f in page["items"]}
            cursor = page["next_cursor"]
            if cursor is None:
                break
        verified = (await http.get("/v1/ledger/verify")).json()["ok"]
    lost = len(set(acknowledged) - stored)
    return {
        "seconds": seconds,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "503_without_retry_after": missing_retry_after,
        "acknowledged_facts": len(acknowledged),
        "lost_facts": lost,
        "ledger_verifies": verified,
        "health": percentiles_ms(health),
    }


def _preload_phase(
    settings: Settings, env: dict[str, str], facts: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Phase 1: store `facts` facts through a server of their own; with background vector
    writes, have every vector written before the load phase starts."""
    log(f"phase 1: cortex serve ({args.embedder}), preload {facts:,} facts")
    key = issue_keys(settings, 1)[0]
    with serving(settings.home, env) as url:
        preload_s = asyncio.run(preload(url, key, facts, args.seed))
    figures: dict[str, Any] = {"facts": facts, "seconds": round(preload_s, 2)}
    if args.vector_writes == "background" and args.embedder != "none":
        # The preloaded facts' vectors were written behind them: finish that first so the load
        # phase starts level.
        started = time.perf_counter()
        subprocess.run(
            [CORTEX, "reindex", "--home", str(settings.home), "--tenant", "bench"],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
        figures["vectors_after_s"] = round(time.perf_counter() - started, 2)
        log(f"  vectors of the preload written in {time.perf_counter() - started:.1f} s")
    return figures


def _load_phases(
    home: Path, env: dict[str, str], facts: int, seconds: float, args: argparse.Namespace
) -> dict[str, Any]:
    """Phases 1 and 2: preload (or reuse a preload), then the mixed load; its figures."""
    settings = Settings.load(home / "load", environ={}, embedder=args.embedder)
    # With --home, the preloaded store is kept in <home>/preloaded and copied for each later
    # run with the same facts, seed and embedder (phase 1 takes minutes at 10k facts).
    saved, marker = home / "preloaded", home / "preloaded.json"
    wanted = {"facts": facts, "seed": args.seed, "embedder": args.embedder}
    reuse = args.home is not None and marker.exists() and json.loads(marker.read_text()) == wanted
    shutil.rmtree(settings.home, ignore_errors=True)
    if reuse:
        log(f"phase 1: reusing the {facts:,} facts preloaded in {saved}")
        shutil.copytree(saved, settings.home)
        preload: dict[str, Any] = {"facts": facts, "reused": True}
    else:
        marker.unlink(missing_ok=True)
        shutil.rmtree(saved, ignore_errors=True)
        init_home(settings)
        preload = _preload_phase(settings, env, facts, args)
        if args.home is not None:
            shutil.copytree(settings.home, saved)
            marker.write_text(json.dumps(wanted))
    keys = issue_keys(settings, args.clients)
    with serving(settings.home, env) as url:
        log(
            f"phase 2: {args.clients} clients, {args.search_ratio:.0%} search,"
            f" think {args.think:g} s, {seconds:g} s, vector writes {args.vector_writes}"
        )
        load = asyncio.run(mixed_load(url, keys, seconds, args.search_ratio, args.seed, args.think))
        load["think_s"] = args.think
        load["vector_writes"] = args.vector_writes
    log(
        f"  {load['requests']:,} requests, {load['requests_per_s']:,} req/s,"
        f" errors {load['error_count']}"
    )
    for op in ("first_request", "store", "search"):
        figures = load[op]
        log(
            f"  {op}: n={figures.get('n', 0)} p50 {figures.get('p50_ms')} ms"
            f" p95 {figures.get('p95_ms')} ms p99 {figures.get('p99_ms')} ms"
        )
    load["preload"] = preload
    return load


def _overload_phase(
    home: Path, env: dict[str, str], seconds: float, args: argparse.Namespace
) -> dict[str, Any]:
    """Phase 3: a fresh server with a tiny write queue, hammered with batch writes."""
    log("phase 3: overload (write_queue_size 4, write_timeout 0.05 s)")
    shutil.rmtree(home / "overload", ignore_errors=True)
    tiny = Settings.load(home / "overload", environ={}, embedder="none")
    init_home(tiny)
    tiny_keys = issue_keys(tiny, args.clients)
    tiny_env = {
        **env,
        "CORTEX_EMBEDDER": "none",
        "CORTEX_WRITE_QUEUE_SIZE": "4",
        "CORTEX_WRITE_TIMEOUT": "0.05",
    }
    with serving(tiny.home, tiny_env) as url:
        over = asyncio.run(overload(url, tiny_keys, seconds))
    log(
        f"  statuses {over['statuses']}, 503 without Retry-After"
        f" {over['503_without_retry_after']}, lost {over['lost_facts']},"
        f" verifies {over['ledger_verifies']}"
    )
    return over


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 facts, 6 s of load, ~1 min")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument("--facts", type=int, help="facts to preload (default 10,000)")
    parser.add_argument("--seconds", type=float, help="seconds of mixed load (default 30)")
    parser.add_argument("--search-ratio", type=float, default=0.5, help="share of searches")
    parser.add_argument(
        "--think",
        type=float,
        default=0.5,
        help="mean seconds each client waits between requests (0: closed loop, saturating)",
    )
    parser.add_argument("--embedder", choices=("minilm", "minilm-torch", "none"), default="minilm")
    parser.add_argument(
        "--vector-writes",
        choices=("inline", "background"),
        default="inline",
        help="engine setting vector_writes: embed stored facts before acknowledging them"
        " (inline) or after (background)",
    )
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument(
        "--phases",
        type=lambda text: set(text.split(",")),
        default={"load", "overload"},
        help="what to run, comma-separated: load (phases 1-2), overload (phase 3); default both",
    )
    add_home_args(parser)
    args = parser.parse_args(argv)
    facts = args.facts or (2_000 if args.quick else 10_000)
    seconds = args.seconds or (6.0 if args.quick else 30.0)
    overload_seconds = 5.0 if args.quick else 15.0
    result: dict[str, Any] = {"benchmark": "api_load", "quick": args.quick, "env": environment()}
    env = {
        "CORTEX_EMBEDDER": args.embedder,
        "CORTEX_KEY_RATE_PER_SECOND": "100000",
        "CORTEX_VECTOR_WRITES": args.vector_writes,
    }

    targets: dict[str, Any] = {}
    with bench_home(args.home, args.keep) as (home, _):
        if "load" in args.phases:
            load = _load_phases(home, env, facts, seconds, args)
            result["load"] = load
            targets["errors"] = target_line("errors under load", load["error_count"], "", "<=", 0)
            targets["store_p95"] = target_line(
                "store p95", load["store"].get("p95_ms", 1e9), "ms", "<", 25
            )
            targets["search_p95"] = target_line(
                "search p95", load["search"].get("p95_ms", 1e9), "ms", "<", 60
            )
        if "overload" in args.phases:
            over = _overload_phase(home, env, overload_seconds, args)
            result["overload"] = over
            targets["overload_503"] = target_line(
                "503s under overload", over["statuses"].get("503", 0), "", ">=", 1
            )
            targets["overload_health_p95"] = target_line(
                "/health p95 under overload", over["health"].get("p95_ms", 1e9), "ms", "<", 10
            )
            targets["overload_lost"] = target_line(
                "acknowledged facts lost", over["lost_facts"], "", "<=", 0
            )
    result["targets"] = targets
    emit(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
