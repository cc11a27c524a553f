"""Shared helpers for the CORTEX benchmarks: data directories, synthetic facts, timing, output.

Not a public module: `bench/ingest.py` and `bench/ledger.py` import it from their own folder.
Everything printed for humans goes to stderr; the single JSON result line goes to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import io
import json
import math
import os
import platform
import pstats
import random
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import apsw

import cortex
from cortex.config import Settings
from cortex.engine import init_home

__all__ = [
    "FactGenerator",
    "PhaseProfiler",
    "add_common_args",
    "bench_home",
    "checkpointed_db_bytes",
    "cpu_seconds",
    "db_breakdown",
    "db_files_bytes",
    "emit",
    "environment",
    "fsync_probe_ms",
    "log",
    "log_breakdown",
    "maybe_phase",
    "pct",
    "peak_rss_mib",
    "percentiles_ms",
    "settings_for",
    "target_line",
]

_T0 = time.perf_counter()


# ---------------------------------------------------------------------------------- output


def log(message: str) -> None:
    """Progress for humans, on stderr, with seconds since start."""
    print(f"[{time.perf_counter() - _T0:8.1f}s] {message}", file=sys.stderr, flush=True)


def emit(result: dict[str, Any]) -> None:
    """The one machine-readable line on stdout."""
    print(json.dumps(result, sort_keys=True, default=str), flush=True)


def target_line(label: str, value: float, unit: str, op: str, target: float) -> dict[str, Any]:
    """Log `label: value unit (target op target) PASS/MISS` and return it as a dict."""
    ok = value >= target if op == ">=" else value < target if op == "<" else value <= target
    verdict = "PASS" if ok else "MISS"
    log(f"  {label}: {value:,.3f} {unit}   target {op} {target:,} {unit}   {verdict}")
    return {"value": round(value, 4), "unit": unit, "target": f"{op} {target}", "pass": ok}


# ---------------------------------------------------------------------------------- stats


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of `values`, nearest-rank on sorted data."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max/mean of durations given in seconds, reported in milliseconds."""
    if not seconds:
        return {}
    ms = sorted(s * 1000 for s in seconds)
    return {
        "n": len(ms),
        "p50_ms": round(pct(ms, 50), 4),
        "p95_ms": round(pct(ms, 95), 4),
        "p99_ms": round(pct(ms, 99), 4),
        "max_ms": round(ms[-1], 4),
        "mean_ms": round(sum(ms) / len(ms), 4),
    }


def peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size so far (ru_maxrss is KiB on Linux, bytes on macOS).

    With `resource.RUSAGE_CHILDREN`: the largest peak of any waited-for child process.
    """
    usage = resource.getrusage(who).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024
    return round(usage * scale / (1 << 20), 1)


def cpu_seconds() -> dict[str, float]:
    """User+system CPU seconds used so far by this process and by its waited-for children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"self": me.ru_utime + me.ru_stime, "children": kids.ru_utime + kids.ru_stime}


def db_files_bytes(path: Path) -> dict[str, int]:
    """Sizes of the database file and its WAL/SHM companions (0 when absent)."""
    sizes = {}
    for suffix in ("", "-wal", "-shm"):
        p = Path(f"{path}{suffix}")
        sizes["db" + suffix.replace("-", "_")] = p.stat().st_size if p.exists() else 0
    return sizes


def checkpointed_db_bytes(path: Path) -> dict[str, int]:
    """Fold the WAL into the main file (engine must be closed); return the files' sizes."""
    conn = apsw.Connection(str(path))
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()
    return db_files_bytes(path)


def db_breakdown(path: Path, facts: int) -> dict[str, dict[str, float]] | None:
    """Bytes per table and index (SQLite `dbstat`), total and per fact; None if unavailable."""
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        rows = conn.execute(
            "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
        ).fetchall()
    except apsw.Error:
        return None
    finally:
        conn.close()
    return {
        name: {"bytes": size, "bytes_per_fact": round(size / max(facts, 1), 1)}
        for name, size in rows
        if size
    }


def log_breakdown(breakdown: dict[str, dict[str, float]] | None) -> None:
    if not breakdown:
        return
    total = sum(v["bytes"] for v in breakdown.values())
    c = ", ".join(
        f"{name} {v['bytes_per_fact']:,.0f}"
        for name, v in breakdown.items()
        if v["bytes"] >= total / 200
    )
    log(f"  bytes/fact by table and index: {c}")


def fsync_probe_ms(directory: Path, rounds: int = 200) -> dict[str, float]:
    """Latency of write(4 KiB) + fsync on this file system: the floor of a durable commit."""
    probe = directory / ".fsync-probe"
    times = []
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        block = os.urandom(4096)
        for i in range(rounds):
            t = time.perf_counter()
            os.pwrite(fd, block, (i % 16) * 4096)
            os.fsync(fd)
            times.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        probe.unlink(missing_ok=True)
    return percentiles_ms(times)


def _source_fingerprint() -> str:
    """SHA-256 (12 hex digits) over cortex/**/*.py: which engine code a run measured."""
    root = Path(cortex.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _git_head() -> str | None:
    """The checked-out commit, read from .git without running git."""
    git = Path(cortex.__file__).parent.parent / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            ref = git / head[5:]
            return ref.read_text().strip()[:12] if ref.exists() else head[5:]
        return head[:12]
    except OSError:
        return None


def environment() -> dict[str, Any]:
    """Versions and machine facts that figures depend on."""
    return {
        "cortex_src_sha256": _source_fingerprint(),
        "git_head": _git_head(),
        "python": platform.python_version(),
        "sqlite": apsw.sqlite_lib_version(),
        "apsw": apsw.apswversion(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "system": platform.system(),
        "cortex": getattr(cortex, "__version__", None),
        "loadavg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


# ---------------------------------------------------------------------------------- homes


def add_home_args(parser: argparse.ArgumentParser) -> None:
    """--home and --keep: which data directory a benchmark uses and whether it is kept."""
    parser.add_argument(
        "--home",
        type=Path,
        help="CORTEX data directory to use (default: a fresh temporary directory)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary data directory (a --home given explicitly is always kept)",
    )


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """--quick, --home, --keep, --seed, --profile, --checkpoint-every."""
    parser.add_argument("--quick", action="store_true", help="small run that finishes in < 30 s")
    add_home_args(parser)
    parser.add_argument("--seed", type=int, default=1234, help="RNG seed for synthetic data")
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        help="engine setting checkpoint_every (default: the engine's own default)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run the measured phases under cProfile (event loop thread and the store's"
        " writer/reader threads) and write .prof files and top-25 text reports to DIR."
        " Timings taken with --profile are inflated; do not compare them with targets.",
    )


@contextlib.contextmanager
def bench_home(home: Path | None, keep: bool) -> Iterator[tuple[Path, bool]]:
    """Yield (home, is_temporary); a temporary home is removed afterwards unless `keep`."""
    if home is not None:
        home.mkdir(parents=True, exist_ok=True)
        yield home.resolve(), False
        return
    tmp = Path(tempfile.mkdtemp(prefix="cortex-bench-"))
    try:
        yield tmp, True
    finally:
        if keep:
            log(f"kept data directory {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def settings_for(home: Path, args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings for `home`, initialised with `init_home` (call outside any event loop)."""
    if args.checkpoint_every is not None:
        overrides["checkpoint_every"] = args.checkpoint_every
    settings = Settings.load(home, environ={}, **overrides)
    init_home(settings)
    return settings


# ---------------------------------------------------------------------------------- profiling


class PhaseProfiler:
    """cProfile per named phase: the event-loop thread plus the store's worker threads.

    cProfile only sees the thread that enabled it, and the store runs its SQL and hashing on a
    writer thread and a pool of reader threads. `install(engine)` wraps the store's
    `_apply_group` (writer thread) and `_with_reader` (reader threads) on that one store
    instance, so each call runs under a profiler of the current phase for the thread it runs
    on; nothing in `cortex` is modified. `with profiler.phase("verify"): ...` profiles a phase
    and writes `<dir>/<name>-{main,threads}.prof` and a top-N text report `<dir>/<name>.txt`.
    """

    def __init__(self, directory: Path, top: int = 25) -> None:
        self.directory = directory
        self.top = top
        self.reports: dict[str, dict[str, str]] = {}
        self._phase: str | None = None
        self._lock = threading.Lock()
        self._per_thread: dict[tuple[str, int], cProfile.Profile] = {}

    def install(self, engine: Any) -> None:
        store = engine._store
        store._apply_group = self._wrap(store._apply_group)
        store._with_reader = self._wrap(store._with_reader)

    def _wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            phase = self._phase
            if phase is None:
                return fn(*args, **kwargs)
            key = (phase, threading.get_ident())
            with self._lock:
                prof = self._per_thread.setdefault(key, cProfile.Profile())
            prof.enable()
            try:
                return fn(*args, **kwargs)
            finally:
                prof.disable()

        return run

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        main = cProfile.Profile()
        self._phase = name
        main.enable()
        try:
            yield
        finally:
            main.disable()
            self._phase = None
            threads = [p for (ph, _), p in self._per_thread.items() if ph == name]
            self.reports[name] = self._dump(name, main, threads)

    def _dump(
        self, name: str, main: cProfile.Profile, threads: list[cProfile.Profile]
    ) -> dict[str, str]:
        self.directory.mkdir(parents=True, exist_ok=True)
        paths = {}
        text = io.StringIO()
        for part, profs in (("threads", threads), ("main", [main])):
            profs = [p for p in profs if p.getstats()]
            if not profs:
                continue
            stats = pstats.Stats(profs[0], stream=text)
            for extra in profs[1:]:
                stats.add(extra)
            out = self.directory / f"{name}-{part}.prof"
            stats.dump_stats(out)
            paths[part] = str(out)
            for key in ("cumulative", "tottime"):
                title = "store worker threads" if part == "threads" else "event-loop thread"
                print(f"\n===== {name}: {title}, top {self.top} by {key} =====", file=text)
                stats.sort_stats(key).print_stats(self.top)
        report = self.directory / f"{name}.txt"
        report.write_text(text.getvalue())
        paths["report"] = str(report)
        log(f"profile of {name!r} written to {report}")
        return paths


@contextlib.contextmanager
def maybe_phase(profiler: PhaseProfiler | None, name: str) -> Iterator[None]:
    """`profiler.phase(name)` when profiling, else nothing."""
    if profiler is None:
        yield
    else:
        with profiler.phase(name):
            yield


# ---------------------------------------------------------------------------------- data

_PROJECTS = (
    "infra", "web-app", "billing", "mobile", "data-platform", "research", "support",
    "onboarding", "security", "ml-ops", "docs", "personal",
)  # fmt: skip
_FACT_TYPES = ("knowledge", "preference", "decision", "observation", "task", "episode")
_TAGS = (
    "postgres", "redis", "kubernetes", "staging", "prod", "ci", "deploy", "incident", "oncall",
    "python", "typescript", "rust", "api", "auth", "payments", "latency", "cost", "customer",
    "meeting", "roadmap", "bug", "refactor", "migration", "backup", "monitoring", "alerting",
    "terraform", "aws", "gcp", "sso", "ux", "design", "legal", "hiring", "q3", "q4", "todo",
    "blocked", "follow-up", "decision-log", "user-pref", "tooling", "docs", "perf", "security",
)  # fmt: skip
_SOURCES = ("agent-planner", "agent-coder", "agent-support", "chat", "email-import", "slack")
_PEOPLE = (
    "Alice", "Bob", "Chen", "Dana", "Emeka", "Farah", "Goran", "Hiroko", "Ines", "Jamal",
    "Kasia", "Luis", "Mina", "Noor", "Olu", "Priya", "Quentin", "Rosa", "Sven", "Tariq",
)  # fmt: skip
_THINGS = (
    "the staging database", "the billing service", "the nightly backup job", "the auth proxy",
    "the mobile release train", "the feature-flag service", "the data warehouse",
    "the customer export API", "the search index", "the CI runners", "the payment webhook",
    "the onboarding email sequence", "the on-call rotation", "the GPU inference pool",
    "the internal wiki", "the rate limiter", "the log pipeline", "the SSO integration",
)  # fmt: skip
_VERBS = (
    "moved to", "was migrated to", "now depends on", "should be rolled back to",
    "is blocked on", "was replaced by", "must be reviewed with", "was split from",
    "now reads from", "is scheduled to switch to", "has been paired with",
)  # fmt: skip
_TARGETS = (
    "db-2 in eu-west-1", "the new Kubernetes cluster", "version 4.2.1", "a read replica",
    "the managed Redis tier", "a weekly cadence", "the vendor's v3 API", "the shared VPC",
    "an on-prem fallback", "Postgres 16", "the async job queue", "a canary deployment",
)  # fmt: skip
_REASONS = (
    "because p95 latency doubled after the last release",
    "after the incident review on Tuesday",
    "to cut storage costs by roughly 30 percent",
    "as agreed in the architecture sync",
    "since the old host is being decommissioned",
    "because the customer asked for data residency in the EU",
    "while the security audit is in progress",
    "until the load test confirms the new limits",
    "so that on-call gets paged only once per incident",
)  # fmt: skip
_PREFS = (
    "prefers concise answers with code first",
    "wants weekly summaries on Friday afternoons",
    "dislikes being paged for warnings, only for errors",
    "asks for diffs rather than whole files",
    "reviews pull requests in the morning (UTC+1)",
    "uses tabs in Go and spaces everywhere else",
    "wants cost estimates attached to every infra proposal",
)  # fmt: skip
_EXTRAS = (
    "Ticket {t} tracks the follow-up.",
    "Confirmed by {p} in the {d} standup.",
    "Revisit on {date}.",
    "Runbook section {n}.{m} was updated accordingly.",
    "Error budget left this quarter: {n}.{m}%.",
    "Related PR #{t} is still open.",
    "{p} owns this going forward.",
    "Dashboards: latency p99 {n}{m} ms, error rate 0.{m}%.",
)  # fmt: skip
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")


class FactGenerator:
    """Deterministic synthetic agent-memory facts (~100-300 UTF-8 bytes of content each)."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self.generated = 0
        self.content_bytes = 0

    def _sentence(self) -> str:
        r = self._rng
        kind = r.random()
        if kind < 0.45:
            return f"{r.choice(_THINGS).capitalize()} {r.choice(_VERBS)} {r.choice(_TARGETS)} {r.choice(_REASONS)}."  # noqa: E501
        if kind < 0.75:
            return f"{r.choice(_PEOPLE)} {r.choice(_PREFS)}."
        return (
            f"Decision ({r.choice(_DAYS)}): {r.choice(_THINGS)} {r.choice(_VERBS)} "
            f"{r.choice(_TARGETS)}; owner {r.choice(_PEOPLE)}."
        )

    def _extra(self) -> str:
        r = self._rng
        return r.choice(_EXTRAS).format(
            t=r.randint(100, 99999),
            p=r.choice(_PEOPLE),
            d=r.choice(_DAYS),
            date=f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
            n=r.randint(1, 9),
            m=r.randint(0, 99),
        )

    def content(self) -> str:
        target = self._rng.randint(100, 300)
        text = self._sentence()
        while len(text) < target:
            text += " " + (self._extra() if self._rng.random() < 0.6 else self._sentence())
        if len(text) > 300:
            text = text[:297].rstrip() + "..."
        return text

    def fact(self) -> dict[str, Any]:
        """One fact as `store_many` accepts it (a JSON-like mapping)."""
        r = self._rng
        item: dict[str, Any] = {
            "content": self.content(),
            "project": r.choice(_PROJECTS),
            "fact_type": r.choice(_FACT_TYPES),
            "tags": r.sample(_TAGS, r.randint(0, 4)),
        }
        if r.random() < 0.7:
            item["source"] = r.choice(_SOURCES)
        if r.random() < 0.5:
            item["confidence"] = round(r.uniform(0.5, 1.0), 2)
        if r.random() < 0.3:
            item["meta"] = {"session": f"s-{r.randint(1, 5000)}", "turn": r.randint(1, 200)}
        self.generated += 1
        self.content_bytes += len(item["content"].encode())
        return item

    def query(self) -> str:
        """A short question about the generated facts (thousands of distinct ones, so nothing
        in the service can answer from a cache of a few texts)."""
        r = self._rng
        kind = r.random()
        if kind < 0.4:
            return f"what happened to {r.choice(_THINGS)}?"
        if kind < 0.6:
            return f"what does {r.choice(_PEOPLE)} prefer?"
        if kind < 0.8:
            return f"{r.choice(_THINGS).removeprefix('the ')} {r.choice(_TARGETS)}"
        return f"decision on {r.choice(_DAYS)} about {r.choice(_THINGS).removeprefix('the ')}"

    def batch(self, n: int) -> list[dict[str, Any]]:
        return [self.fact() for _ in range(n)]

    def store_kwargs(self) -> tuple[str, dict[str, Any]]:
        """One fact as (content, keyword arguments) for `engine.store`."""
        item = self.fact()
        return item.pop("content"), item


# ---------------------------------------------------------------------------------- engine


async def durability(engine: Any) -> dict[str, Any]:
    """journal_mode and synchronous as seen by the engine's own write connection."""
    store = engine._store

    def read() -> dict[str, Any]:
        conn = store._conn()
        sync = conn.execute("PRAGMA synchronous").fetchall()[0][0]
        mode = conn.execute("PRAGMA journal_mode").fetchall()[0][0]
        names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
        return {"journal_mode": mode, "synchronous": names.get(sync, sync)}

    result: dict[str, Any] = await store._run_write(read)
    return result


# ---------------------------------------------------------------------------------- retrieval
# Helpers of the retrieval-quality benchmarks (bench/retrieval.py, bench/locomo.py): these run
# with the embedding model, so their homes are created with plain settings and searched in
# every mode.

__all__ += [
    "CachedQueryEmbedder",
    "add_eval_args",
    "eval_settings",
    "load_embedder",
    "mean",
    "settings_figures",
]


def add_eval_args(parser: argparse.ArgumentParser) -> None:
    """--quick, --home, --keep, and the ranking settings --rrf-k, --vector-weight, --text-weight."""
    parser.add_argument(
        "--quick", action="store_true", help="small run: fewer documents and queries"
    )
    add_home_args(parser)
    parser.add_argument("--rrf-k", type=int, help="engine setting rrf_k (default: the engine's)")
    parser.add_argument(
        "--vector-weight", type=float, help="engine setting vector_weight (default: the engine's)"
    )
    parser.add_argument(
        "--text-weight", type=float, help="engine setting text_weight (default: the engine's)"
    )


def eval_settings(home: Path, args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings for `home` with the ranking options of `args`, initialised with `init_home`."""
    ranking = {
        "rrf_k": args.rrf_k,
        "vector_weight": args.vector_weight,
        "text_weight": args.text_weight,
    }
    overrides.update({k: v for k, v in ranking.items() if v is not None})
    settings = Settings.load(home, environ={}, **overrides)
    init_home(settings)
    return settings


def settings_figures(settings: Settings) -> dict[str, Any]:
    """The settings that decide a ranking."""
    return {
        "embedder": settings.embedder,
        "rrf_k": settings.rrf_k,
        "vector_weight": settings.vector_weight,
        "text_weight": settings.text_weight,
    }


def load_embedder(name: str = "minilm") -> tuple[Any, float]:
    """The engine's embedder `name`, loaded (one warm-up call), and the seconds that took."""
    from cortex.search.embedder import make_embedder

    t = time.perf_counter()
    embedder = make_embedder(name)
    if embedder is not None:
        embedder.embed(["warm-up"])
    return embedder, time.perf_counter() - t


class CachedQueryEmbedder:
    """Wraps an embedder and remembers the vectors of single texts (queries).

    For re-running the same queries under several ranking settings: the ranking is what is
    measured there, not the time to embed a query again. Batches (documents) pass through.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._cache: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return int(self._inner.dim)

    @property
    def model_id(self) -> str:
        return str(self._inner.model_id)

    def embed(self, texts: Sequence[str]) -> Any:
        if len(texts) != 1:
            return self._inner.embed(texts)
        with self._lock:
            hit = self._cache.get(texts[0])
        if hit is None:
            hit = self._inner.embed(texts)
            with self._lock:
                self._cache[texts[0]] = hit
        return hit


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean (nan when empty)."""
    return math.fsum(values) / len(values) if values else math.nan


# ---------------------------------------------------------------------------------- search
# Helpers of bench/search.py (one fresh process per size) and of the embedding phase of
# bench/ingest.py.

__all__ += ["latency_figures", "loadavg_1m", "run_json_child"]


def loadavg_1m() -> float | None:
    """The 1-minute load average now (None where the OS has none); recorded with each figure."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def latency_figures(label: str, seconds: Sequence[float]) -> dict[str, Any]:
    """`percentiles_ms(seconds)` plus the load average now, logged as one line."""
    figures: dict[str, Any] = {**percentiles_ms(seconds), "loadavg_1m": loadavg_1m()}
    log(
        f"  {label:<36} p50 {figures['p50_ms']:9.3f}  p95 {figures['p95_ms']:9.3f}"
        f"  p99 {figures['p99_ms']:9.3f} ms   load {figures['loadavg_1m']}"
    )
    return figures


def run_json_child(argv: Sequence[str]) -> dict[str, Any]:
    """Run `argv` (a benchmark) in a fresh process, stderr passed through; its last JSON line."""
    import subprocess

    done = subprocess.run(list(argv), stdout=subprocess.PIPE, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(argv)} failed with exit code {done.returncode}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result
