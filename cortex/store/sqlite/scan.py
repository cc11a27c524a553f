"""Ledger scans for `verify`: one range of a tenant's ledger, in this process or a child.

A large ledger is split into contiguous ranges scanned by child processes in parallel (Python
hashing is CPU-bound and holds the GIL). Each range starts from the *stored* chain hash and
Merkle right edge at its first seq; the caller then checks that each range's recomputed end state
equals the stored state the next range started from, so the split loses no check.

Children are started with `python -m cortex.store.sqlite.scan` (not `multiprocessing`), so a
caller's `__main__` is never re-imported and no threads are forked.
"""

from __future__ import annotations

import base64
import json
import pickle
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import apsw

from cortex.canonical import ZERO_HASH
from cortex.errors import StoreError
from cortex.ledger.merkle import frontier_keys
from cortex.ledger.verify import (
    LedgerRow,
    TenantVerifier,
    opened_fact_digest,
    stored_fact_digest,
)
from cortex.model import Problem
from cortex.store.sqlite.sealing import FactOpener

__all__ = ["ChunkResult", "ParallelScan", "scan_parallel", "scan_range"]

_ROWS_SQL = (
    "SELECT x.seq, x.op, x.subject, x.actor, x.ts, x.payload, x.payload_digest,"
    " x.prev_hash, x.hash, f.id, f.project, f.content, f.fact_type, f.tags, f.source,"
    " f.confidence, f.valid_from, f.valid_until, f.supersedes, f.created_at, f.meta,"
    " f.key_version, f.purged_at"
    " FROM transactions x LEFT JOIN facts f ON f.tenant_id = x.tenant_id AND f.seq = x.seq"
    " WHERE x.tenant_id = ? AND x.seq >= ? AND x.seq < ? ORDER BY x.seq"
)
_NODES_SQL = (
    "SELECT last_leaf, level, hash FROM merkle_nodes WHERE tenant_id = ?"
    " AND last_leaf >= ? AND last_leaf < ? ORDER BY last_leaf, level"
)
_NO_END = 2**62


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """What scanning the seqs [start, stop) found, and the state it ended in."""

    start: int
    start_prev_hash: bytes
    problems: tuple[Problem, ...]
    truncated: bool
    entries: int
    facts: int
    purged: int
    roots: dict[int, bytes]
    start_frontier: tuple[tuple[int, int, bytes, bool], ...]
    end_frontier: tuple[tuple[int, int, bytes, bool], ...]
    position: int
    last_hash: bytes


Frontier = tuple[tuple[int, int, bytes, bool], ...]


def _start_state(conn: apsw.Connection, tenant_id: int, start: int) -> tuple[bytes, Frontier]:
    """The stored chain hash before `start` and the stored right edge of the tree of `start`."""
    if start == 0:
        return ZERO_HASH, ()
    row = list(
        conn.execute(
            "SELECT hash FROM transactions WHERE tenant_id = ? AND seq = ?", (tenant_id, start - 1)
        )
    )
    prev = row[0][0] if row else ZERO_HASH
    frontier = []
    for level, index in frontier_keys(start):
        found = list(
            conn.execute(
                "SELECT hash FROM merkle_nodes WHERE tenant_id = ? AND last_leaf = ? AND level = ?",
                (tenant_id, ((index + 1) << level) - 1, level),
            )
        )
        frontier.append((level, index, found[0][0] if found else ZERO_HASH, not found))
    return prev, tuple(frontier)


def scan_range(
    conn: apsw.Connection,
    *,
    tenant: str,
    tenant_id: int,
    start: int,
    stop: int | None,
    fill_to: int,
    wanted_sizes: frozenset[int],
    check_nodes: bool,
    max_problems: int,
    resume: tuple[bytes, Frontier] | None = None,
    opener: FactOpener | None = None,
) -> ChunkResult:
    """Verify the seqs [start, stop) of one tenant on `conn` (inside a read transaction).

    The scan starts from the stored chain hash and tree edge at `start`, or from `resume`
    (the recomputed state a scan of the preceding range ended in). An encrypted store passes
    the `opener` that decrypts its rows: fact digests cover the plaintext.
    """
    end = _NO_END if stop is None else stop
    prev_hash, frontier = resume or _start_state(conn, tenant_id, start)
    stored: Iterator[Any] | None = None
    if check_nodes:
        stored = iter(conn.execute(_NODES_SQL, (tenant_id, start, end)))
    verifier = TenantVerifier(
        tenant=tenant,
        wanted_sizes=wanted_sizes,
        stored_nodes=stored,
        max_problems=max(1, max_problems),
        start_seq=start,
        start_prev_hash=prev_hash,
        start_frontier=frontier,
    )
    feed = verifier.feed
    for row in conn.execute(_ROWS_SQL, (tenant_id, start, end)):
        fact_id = row[9]
        if opener is None or fact_id is None:
            digest = stored_fact_digest(tenant, row)
        else:
            digest = opened_fact_digest(tenant, row, opener.fields)
        feed(LedgerRow(*row[:9], fact_id, digest, row[22] is not None))  # type: ignore[call-arg]
    verifier.close_range(fill_to)
    return ChunkResult(
        start=start,
        start_prev_hash=prev_hash,
        problems=tuple(verifier.problems),
        truncated=verifier.truncated,
        entries=verifier.entries,
        facts=verifier.facts,
        purged=verifier.purged,
        roots=dict(verifier.roots),
        start_frontier=frontier,
        end_frontier=verifier.frontier,
        position=verifier.position,
        last_hash=verifier.last_hash,
    )


def _scan_file(path: str, **kwargs: Any) -> ChunkResult:
    try:
        conn = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
    except apsw.Error as exc:
        raise StoreError(f"cannot open {path} for verification: {exc}") from exc
    try:
        conn.set_busy_timeout(10_000)
        conn.execute("BEGIN")
        return scan_range(conn, **kwargs)
    finally:
        conn.close()


@dataclass(slots=True)
class ParallelScan:
    """Child processes scanning ranges; `results()` waits for them."""

    children: list[subprocess.Popen[bytes]]

    def results(self) -> list[ChunkResult]:
        """Wait for every child; its results in range order, or StoreError if any failed."""
        results = []
        failure: list[str] | None = None
        for child in self.children:
            out, err = child.communicate()
            if child.returncode != 0:
                failure = failure or err.decode(errors="replace").strip().splitlines()[-1:]
                continue
            results.append(pickle.loads(base64.b64decode(out)))
        if failure is not None:
            raise StoreError(f"a verification worker failed: {' '.join(failure)}")
        return results

    def stop(self) -> None:
        """Kill and reap any child still running (after an error elsewhere)."""
        for child in self.children:
            if child.poll() is None:
                child.kill()
            child.communicate()


def scan_parallel(path: str, ranges: Sequence[dict[str, Any]]) -> ParallelScan:
    """Start scanning each range in its own child process (collect with `.results()`)."""
    children = []
    for spec in ranges:
        arg = json.dumps({**spec, "path": path, "wanted_sizes": sorted(spec["wanted_sizes"])})
        children.append(
            subprocess.Popen(
                [sys.executable, "-m", "cortex.store.sqlite.scan", arg],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    return ParallelScan(children)


def _main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    path = spec.pop("path")
    spec["wanted_sizes"] = frozenset(spec["wanted_sizes"])
    result = _scan_file(path, **spec)
    sys.stdout.write(base64.b64encode(pickle.dumps(result)).decode())
    return 0


if __name__ == "__main__":
    # Import under the real module name so that pickled results name `cortex.store.sqlite.scan`.
    from cortex.store.sqlite.scan import _main as main

    sys.exit(main(sys.argv[1:]))
