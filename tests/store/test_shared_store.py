"""Several engines (processes) writing one SQLite store keep one ledger per tenant."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cortex
from cortex import Settings

_WRITER = """
import sys
import cortex
settings = cortex.Settings.load(sys.argv[1], embedder="none", checkpoint_every=7)
with cortex.connect(settings) as memory:
    for i in range(int(sys.argv[3])):
        memory.store(f"fact {i} from {sys.argv[2]}", tenant="shared" if i % 2 else sys.argv[2])
        if i % 10 == 0:
            memory.store_many([{"content": f"batch {i}.{j}"} for j in range(5)], tenant="shared")
"""


def test_two_engines_interleaving_writes_keep_a_dense_verifiable_ledger(settings: Settings) -> None:
    with cortex.connect(settings) as first, cortex.connect(settings) as second:
        stored = []
        for i in range(40):
            handle = first if i % 3 else second
            stored.append(handle.store(f"fact number {i}", tenant="t"))
        old = stored[5]
        second.supersede(old.id, "fact number 5, corrected", tenant="t")
        first.deprecate(stored[6].id, "wrong", tenant="t")
        seqs = [fact.seq for fact in stored]
        assert seqs == list(range(40))
        assert first.verify(tenant="t").ok
        assert second.stats(tenant="t").transactions == 42
        assert {f.id for f in first.list(tenant="t", limit=100).items} == {
            f.id for f in second.list(tenant="t", limit=100).items
        }


def test_processes_writing_one_store_at_once_lose_nothing_and_verify(
    settings: Settings, tmp_path: Path
) -> None:
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    children = [
        subprocess.Popen([sys.executable, str(script), str(settings.home), name, "60"])
        for name in ("a", "b", "c")
    ]
    assert [child.wait(timeout=120) for child in children] == [0, 0, 0]
    with cortex.connect(settings) as memory:
        report = memory.verify()
        assert report.ok, report.problems
        # each child: 30 facts in its own tenant, 30 + 6 batches of 5 in "shared"
        assert memory.stats(tenant="shared").facts == 3 * (30 + 30)
        for name in ("a", "b", "c"):
            assert memory.stats(tenant=name).facts == 30
