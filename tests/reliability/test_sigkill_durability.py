"""A crash (SIGKILL) at any moment loses no acknowledged write and leaves a ledger that verifies.

A child process (`writer_child.py`) writes as fast as it can from several threads and prints
every acknowledged write; the parent kills it at a random moment, reopens the same data
directory and checks every acknowledgement against the store, the ledger's integrity and its
history (each recovered tree extends the one recovered before it).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

import cortex
from cortex import Settings
from cortex.ledger.merkle import verify_consistency

CHILD = Path(__file__).with_name("writer_child.py")
KILLS = max(20, int(os.environ.get("CORTEX_RELIABILITY_KILLS", "24")))
START_TIMEOUT = 30.0  # seconds for the child to import, init and open (generous for slow CI)


@dataclass
class Acks:
    """Writes the child acknowledged (complete stdout lines only)."""

    stored: dict[str, str] = field(default_factory=dict)  # fact id -> tenant
    deprecated: dict[str, str] = field(default_factory=dict)  # fact id -> tenant
    superseded: dict[str, tuple[str, str]] = field(default_factory=dict)  # old -> (tenant, new)
    checkpoints: set[tuple[str, int]] = field(default_factory=set)
    ready: bool = False

    def count(self) -> int:
        return (
            len(self.stored) + len(self.deprecated) + len(self.superseded) + len(self.checkpoints)
        )

    def merge(self, other: Acks) -> None:
        self.stored.update(other.stored)
        self.deprecated.update(other.deprecated)
        self.superseded.update(other.superseded)
        self.checkpoints |= other.checkpoints


class Child:
    """The writer child process and a thread draining its stdout."""

    def __init__(self, home: Path, seed: int, stderr: IO[bytes]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), str(home), str(seed)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=CHILD.parent,
        )
        self.lines: list[str] = []
        self.started = threading.Event()
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            if not raw.endswith(b"\n"):
                break  # cut by the kill: not a complete acknowledgement
            line = raw.decode()[:-1]
            self.lines.append(line)
            if line == "START":
                self.started.set()
            elif line == "READY":
                self.ready.set()

    def wait_for(self, event: threading.Event) -> bool:
        """Wait until `event` is set; False if the child ended or START_TIMEOUT passed first."""
        deadline = time.monotonic() + START_TIMEOUT
        while not event.wait(0.02):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                return event.is_set()
        return True

    def kill(self) -> int | None:
        """SIGKILL the child (unless it already ended); return the exit status it had before."""
        status = self.proc.poll()
        if status is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._reader.join(timeout=30)
        assert not self._reader.is_alive(), "the child's stdout never closed"
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return status

    def acks(self) -> Acks:
        acks = Acks()
        for line in self.lines:
            kind, *rest = line.split(" ")
            if kind == "READY":
                acks.ready = True
            elif kind == "S":
                tenant, *ids = rest
                acks.stored.update(dict.fromkeys(ids, tenant))
            elif kind == "D":
                acks.deprecated[rest[1]] = rest[0]
            elif kind == "U":
                acks.superseded[rest[1]] = (rest[0], rest[2])
                acks.stored[rest[2]] = rest[0]
            elif kind == "C":
                acks.checkpoints.add((rest[0], int(rest[1])))
            elif kind == "E":
                pytest.fail(f"the writer child hit an unexpected error: {line}")
            else:
                assert kind == "START", f"unexpected line from the child: {line!r}"
        return acks


def _run_and_kill(home: Path, seed: int, log: Path, *, early: bool, rng: random.Random) -> Acks:
    with log.open("wb") as stderr:
        child = Child(home, seed, stderr)
        try:
            if early:
                # Right after start: during init_home / open / WAL recovery / migration, which
                # take about 2 ms here.
                reached = child.wait_for(child.started)
                delay = rng.uniform(0.0, 0.004)
            else:
                reached = child.wait_for(child.ready)
                delay = rng.uniform(0.05, 0.6)
            if reached:
                time.sleep(delay)
        finally:
            status = child.kill()
    assert status is None, (
        f"the writer child exited by itself with status {status} before the kill:\n"
        + "\n".join(line for line in child.lines if line.startswith("E "))
        + "\n"
        + log.read_text(errors="replace")[-4000:]
    )
    assert reached, "the writer child did not reach " + ("START" if early else "READY") + " in time"
    return child.acks()


def _check_store(
    settings: Settings,
    this_round: Acks,
    everything: Acks,
    heads: dict[str, tuple[int, bytes]],
    census: Callable[[Path], Any],
    raw_facts: Callable[[Path], dict[str, tuple[str, str | None, bool]]],
    rng: random.Random,
    where: str,
) -> None:
    """Reopen the store after a kill and check it against every acknowledgement so far."""
    with cortex.connect(settings) as mem:
        report = mem.verify()
        assert report.problems == (), f"{where}: verify found {report.problems[:5]}"

        # The ledger is dense: seqs 0..n-1 without gaps, one Merkle leaf each (raw SQL), and
        # the engine's own counters agree.
        tenants = census(settings.database_path)
        for name, tenant in tenants.items():
            assert tenant.dense, f"{where}: ledger of {name} is not dense: {tenant}"
            assert mem.stats(tenant=name).transactions == tenant.transactions
        assert report.entries == sum(t.transactions for t in tenants.values())

        # History is never rewritten: each recovered tree extends the previously recovered one.
        for name, (old_size, old_root) in heads.items():
            proof = mem.consistency_proof(old_size, tenant=name)
            assert proof.old_root == old_root, f"{where}: {name}'s first {old_size} entries changed"
            assert verify_consistency(
                proof.old_size, proof.new_size, proof.old_root, proof.new_root, proof.path
            )
        for name, tenant in tenants.items():
            if tenant.next_seq:
                now = mem.consistency_proof(tenant.next_seq, tenant=name)
                heads[name] = (tenant.next_seq, now.new_root)

        # Every write acknowledged in any run so far is there (raw SQL, all of them) ...
        facts = raw_facts(settings.database_path)
        missing = [i for i in everything.stored if i not in facts]
        assert not missing, f"{where}: {len(missing)} acknowledged facts lost, e.g. {missing[:3]}"
        for fid, tenant in everything.stored.items():
            assert facts[fid][0] == tenant
        for fid in everything.deprecated:
            assert facts[fid][2], f"{where}: acknowledged deprecation of {fid} lost"
        for old, (_, new) in everything.superseded.items():
            assert facts[old][1] == new, f"{where}: acknowledged supersession of {old} lost"

        # ... and readable through the engine (this run's: a sample of stores, every change).
        sample = rng.sample(sorted(this_round.stored.items()), min(300, len(this_round.stored)))
        for fid, tenant in sample:
            assert mem.get(fid, tenant=tenant).id == fid
        for fid, tenant in this_round.deprecated.items():
            assert mem.get(fid, tenant=tenant).status == "deprecated"
        for old, (tenant, new) in this_round.superseded.items():
            assert mem.get(old, tenant=tenant).superseded_by == new
            assert mem.get(new, tenant=tenant).supersedes == old
        for tenant, size in this_round.checkpoints:
            assert size in {c.tree_size for c in mem.checkpoints(tenant=tenant)}


@pytest.mark.slow
@pytest.mark.timeout(120 + KILLS * KILLS // 10)  # the store (and each verify) grows every kill
def test_acknowledged_writes_survive_sigkill_at_random_moments(
    tmp_path: Path, ledger_census: Callable[[Path], Any], raw_facts: Any
) -> None:
    seed = int(os.environ.get("CORTEX_RELIABILITY_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    home = tmp_path / "home"  # the child initialises it on its first run (a kill may hit that)
    settings = Settings.load(home, environ={}, embedder="none")
    early_rounds = {0, 1, 2} | set(range(7, KILLS, 7))
    everything = Acks()
    heads: dict[str, tuple[int, bytes]] = {}
    writing_rounds = killed_while_opening = 0
    for number in range(KILLS):
        where = (
            f"kill {number} (seed {seed}; CORTEX_RELIABILITY_SEED={seed} reuses its kill delays)"
        )
        early = number in early_rounds
        acks = _run_and_kill(home, number, tmp_path / f"child-{number}.err", early=early, rng=rng)
        everything.merge(acks)
        if acks.count() >= 10:
            writing_rounds += 1
        killed_while_opening += early and not acks.ready
        # A kill during init may leave no database yet; the next child initialises it again.
        if settings.database_path.exists() and settings.signing_key_path.exists():
            _check_store(settings, acks, everything, heads, ledger_census, raw_facts, rng, where)
        else:
            assert not acks.ready, f"{where}: READY was printed but the store is incomplete"

    late_rounds = KILLS - len(early_rounds)
    assert writing_rounds >= late_rounds * 0.8, (
        f"only {writing_rounds} of {late_rounds} runs wrote anything before being killed: the"
        " test did not exercise the write path"
    )
    assert len(everything.deprecated) > 0
    assert len(everything.superseded) > 0
    assert len(everything.checkpoints) > 0

    # Finally a clean open must still accept writes and verify.
    with cortex.connect(settings) as mem:
        fact = mem.store("after all the kills")
        assert mem.get(fact.id).content == "after all the kills"
        report = mem.verify()
        assert report.ok
    print(
        f"{KILLS} kills (seed {seed}): {killed_while_opening} before the store was open,"
        f" {len(everything.stored)} facts, {len(everything.deprecated)} deprecations,"
        f" {len(everything.superseded)} supersessions, {len(everything.checkpoints)} checkpoints"
        f" acknowledged; {report.entries} ledger entries verified"
    )


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_store_killed_while_being_initialised_can_be_initialised_and_opened(
    tmp_path: Path, ledger_census: Callable[[Path], Any]
) -> None:
    rng = random.Random()
    for number in range(5):
        home = tmp_path / f"home-{number}"
        log = tmp_path / f"child-{number}.err"
        with log.open("wb") as stderr:
            child = Child(home, number, stderr)
            try:
                reached = child.wait_for(child.started)
                if reached:
                    time.sleep(rng.uniform(0.0, 0.003))
            finally:
                status = child.kill()
        assert status is None, log.read_text(errors="replace")[-4000:]
        assert reached, "the writer child did not start in time"
        settings = Settings.load(home, environ={}, embedder="none")
        result = cortex.init_home(settings)  # must recover from whatever the kill left
        assert result.home == home
        with cortex.connect(settings) as mem:
            fact = mem.store("first fact after a killed init")
            assert mem.get(fact.id).id == fact.id
            report = mem.verify()
            assert report.ok, report.problems
        assert all(t.dense for t in ledger_census(settings.database_path).values())
