"""Many server processes, one ledger: appends from several processes never gap, fork or repeat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cortex
from cortex import Settings

ROOT = Path(__file__).parent.parent.parent


def _writer(
    settings: Settings, name: str, facts: int, writers: int, batch: int = 1
) -> subprocess.Popen[str]:
    assert settings.database_url is not None
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.postgres.writer_child",
            str(settings.home),
            settings.database_url,
            name,
            str(facts),
            str(writers),
            str(batch),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _assert_dense_and_verified(settings: Settings, acknowledged: set[str]) -> None:
    with cortex.connect(settings) as memory:
        size = memory.stats(tenant="shared").transactions
        seen: list[str] = []
        cursor = None
        while True:
            page = memory.list(tenant="shared", limit=1000, cursor=cursor)
            seen += [f.id for f in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        facts = [memory.get(fid, tenant="shared") for fid in seen[:50]]
        report = memory.verify(tenant="shared")
        assert report.ok, report.problems[:5]
        assert report.entries == size
        # Every stored fact exists exactly once; seqs of facts are distinct and inside the ledger.
        assert len(seen) == len(set(seen))
        assert acknowledged <= set(seen)
        assert all(0 <= f.seq < size for f in facts)
        assert {memory.inclusion_proof(seq, tenant="shared").seq for seq in (0, size - 1)} == {
            0,
            size - 1,
        }


def _acknowledged(children: list[subprocess.Popen[str]], each: int) -> set[str]:
    """The ids every child acknowledged, once each has ended well after `each` facts."""
    acknowledged: set[str] = set()
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err[-2000:]
        ids = out.split()
        assert ids[-1] == "done"
        assert len(ids) == each + 1
        acknowledged.update(ids[:-1])
    return acknowledged


def test_four_processes_of_sixteen_writers_keep_one_dense_verifiable_ledger(
    pg_settings: Settings,
) -> None:
    children = [_writer(pg_settings, f"p{n}", 2000, 16) for n in range(4)]
    acknowledged = _acknowledged(children, 2000)
    assert len(acknowledged) == 8000
    with cortex.connect(pg_settings) as memory:
        stats = memory.stats(tenant="shared")
        assert stats.facts == 8000
        assert stats.transactions == 8000  # seq dense from 0: size equals the entry count
        # One signed checkpoint at the end of each group that crossed a multiple of 500.
        sizes = [c.tree_size for c in memory.checkpoints(tenant="shared")]
        assert [size // 500 for size in sizes] == list(range(1, 17))
    _assert_dense_and_verified(pg_settings, acknowledged)


def test_four_processes_chaining_batches_ahead_on_heads_the_others_move(
    pg_settings: Settings,
) -> None:
    # One writer per process: each group is the only one open in its process, so the store
    # chains it before the lock on the head its last group left (link-ahead), and the other
    # processes' appends move that head: guesses are used, missed and turned back on, and the
    # ledger must come out dense and verified all the same.
    children = [_writer(pg_settings, f"b{n}", 2000, 1, 50) for n in range(4)]
    acknowledged = _acknowledged(children, 2000)
    assert len(acknowledged) == 8000
    with cortex.connect(pg_settings) as memory:
        stats = memory.stats(tenant="shared")
        assert stats.facts == stats.transactions == 8000
    _assert_dense_and_verified(pg_settings, acknowledged)


def test_a_killed_process_loses_nothing_it_acknowledged_and_the_others_go_on(
    pg_settings: Settings,
) -> None:
    victim = _writer(pg_settings, "victim", 100_000, 8)
    others = [_writer(pg_settings, f"p{n}", 600, 8) for n in range(2)]
    acknowledged: set[str] = set()
    assert victim.stdout is not None
    while len(acknowledged) < 300:  # kill it mid-write, well into its run
        line = victim.stdout.readline()
        assert line, victim.stderr.read() if victim.stderr else "victim ended early"
        acknowledged.add(line.strip())
    os.kill(victim.pid, signal.SIGKILL)
    rest, _ = victim.communicate(timeout=60)
    acknowledged.update(rest.split())  # acknowledged before the kill, still in the pipe
    for child in others:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err[-2000:]
        ids = out.split()
        assert ids[-1] == "done"
        acknowledged.update(ids[:-1])
    time.sleep(0.1)
    _assert_dense_and_verified(pg_settings, acknowledged)
