"""Key rotation: data keys under concurrent writes, crashes mid-way, master keys and their files."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import apsw
import pytest

import cortex
from cortex import Settings
from cortex.crypto import rotate_data
from cortex.crypto.master import pending_key_path
from cortex.errors import ConfigError, WrongKey
from tests.crypto.conftest import PASSPHRASE


def _versions(database: Path) -> dict[int, int]:
    """How many fact rows are sealed with each data key version."""
    conn = apsw.Connection(str(database))
    try:
        rows = conn.execute("SELECT key_version, count(*) FROM facts GROUP BY key_version")
        return {int(v): int(n) for v, n in rows}
    finally:
        conn.close()


def _key_versions(database: Path) -> list[int]:
    conn = apsw.Connection(str(database))
    try:
        return [int(r[0]) for r in conn.execute("SELECT version FROM data_keys ORDER BY version")]
    finally:
        conn.close()


def _all_contents(memory: cortex.CortexSync, tenant: str | None = None) -> list[str]:
    contents, cursor = [], None
    while True:
        page = memory.list(include_inactive=True, limit=1000, cursor=cursor, tenant=tenant)
        contents += [f.content for f in page.items]
        if page.next_cursor is None:
            return contents
        cursor = page.next_cursor


async def test_rotating_the_data_key_under_concurrent_writes_loses_nothing(
    encrypted: Settings,
) -> None:
    async with await cortex.open(encrypted, embedder=None) as engine:
        old = await engine.store_many([{"content": f"old fact {i}"} for i in range(400)])
        done = asyncio.Event()
        written: list[str] = []

        async def writer(number: int) -> None:
            i = 0
            while not done.is_set() or i < 5:
                fact = await engine.store(f"new fact {number}-{i}", meta={"i": i})
                written.append(fact.content)
                i += 1
                await asyncio.sleep(0)

        async def changer() -> None:
            for fact in old[:10]:
                await engine.supersede(fact.id, fact.content + " (revised)", reason="revised")
            for fact in old[10:20]:
                await engine.deprecate(fact.id, "no longer true")

        writers = [asyncio.create_task(writer(n)) for n in range(4)]
        changes = asyncio.create_task(changer())
        seen: list[tuple[int, int]] = []
        rotation = await engine.rotate_data_key(
            batch=25, progress=lambda done_, total: seen.append((done_, total))
        )
        done.set()
        await asyncio.gather(*writers, changes)
        stats = await engine.stats()
        report = await engine.verify()
        events = await engine.events(["key_rotate"])
    assert rotation.version == 2
    assert not rotation.resumed
    assert rotation.resealed >= 390  # the superseded and deprecated rows were re-sealed too
    assert seen[-1][0] == seen[-1][1]
    assert len(seen) > 5
    assert stats.facts == 400 + 10 + len(written)
    assert report.ok, report.problems
    assert _versions(encrypted.database_path) == {2: stats.facts}
    assert _key_versions(encrypted.database_path) == [2]  # the old key was deleted
    assert [e.payload for e in events] == [{"kind": "data", "tenant": "default", "version": 2}]
    with cortex.connect(encrypted) as memory:
        contents = _all_contents(memory)
    assert sorted(contents) == sorted(
        [f"old fact {i}" for i in range(400)]
        + [f"old fact {i} (revised)" for i in range(10)]
        + written
    )


class _Stop(Exception):
    pass


def test_a_data_rotation_that_raises_midway_resumes_where_it_stopped(encrypted: Settings) -> None:
    with cortex.connect(encrypted) as memory:
        memory.store_many([{"content": f"fact {i}", "meta": {"i": i}} for i in range(300)])

        def stop_after_three_batches(done: int, total: int) -> None:
            if done >= 150:
                raise _Stop

        with pytest.raises(_Stop):
            memory.rotate_data_key(batch=50, progress=stop_after_three_batches)
        assert _versions(encrypted.database_path) == {1: 150, 2: 150}
        assert len(_all_contents(memory)) == 300  # both keys still open their rows
        rotation = memory.rotate_data_key(batch=50)
        assert (rotation.version, rotation.resumed, rotation.resealed) == (2, True, 150)
        assert memory.verify().ok
    assert _versions(encrypted.database_path) == {2: 300}


_CHILD = """
import os, signal, sys
import cortex
from cortex import Settings

settings = Settings.load(sys.argv[1], embedder="none")
with cortex.connect(settings) as memory:
    def die(done, total):
        if done >= 100:
            os.kill(os.getpid(), signal.SIGKILL)
    memory.rotate_data_key(batch=20, progress=die)
"""


def test_a_data_rotation_killed_midway_resumes_in_the_next_process(encrypted: Settings) -> None:
    with cortex.connect(encrypted) as memory:
        memory.store_many([{"content": f"fact {i}"} for i in range(250)])
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(encrypted.home)],
        capture_output=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    versions = _versions(encrypted.database_path)
    assert versions[2] >= 100
    assert versions[1] > 0
    with cortex.connect(encrypted) as memory:
        rotation = memory.rotate_data_key(batch=20)
        assert rotation.resumed
        assert rotation.version == 2
        assert sorted(_all_contents(memory)) == sorted(f"fact {i}" for i in range(250))
        assert memory.verify().ok
        assert len(memory.events(["key_rotate"])) == 1
    assert _versions(encrypted.database_path) == {2: 250}


async def test_a_rotation_that_resealed_everything_but_was_not_logged_is_finished_not_repeated(
    encrypted: Settings,
) -> None:
    async with await cortex.open(encrypted, embedder=None) as engine:
        await engine.store_many([{"content": f"fact {i}"} for i in range(30)])

        async def crash(tenant: str, payload: Any) -> None:
            raise _Stop

        with pytest.raises(_Stop):
            await rotate_data(engine._store, engine._write, crash, "default", batch=10)
        assert _versions(encrypted.database_path) == {2: 30}
        rotation = await engine.rotate_data_key()
        assert (rotation.version, rotation.resumed, rotation.resealed) == (2, True, 0)
        events = await engine.events(["key_rotate"])
        assert [e.payload["version"] for e in events] == [2]
        assert (await engine.rotate_data_key()).version == 3  # a further run rotates again


def test_rotating_the_master_key_rewrites_no_fact_and_retires_the_old_key(
    encrypted: Settings,
) -> None:
    old_key = encrypted.master_key_path.read_bytes()
    with cortex.connect(encrypted) as memory:
        fact = memory.store("under the first master key", tenant="acme")
        memory.store("another tenant", tenant="globex")
        before = _sealed_rows(encrypted.database_path)
        rotation = memory.rotate_master_key()
        assert memory.get(fact.id, tenant="acme").content == "under the first master key"
        later = memory.store("written after the rotation", tenant="newco")
    assert (rotation.version, rotation.source, rotation.rewrapped) == (2, "file", 2)
    assert rotation.tenants == ("acme", "globex")
    assert _sealed_rows(encrypted.database_path) == before | _sealed_rows_of(
        encrypted.database_path, later.id
    )
    assert encrypted.master_key_path.read_bytes() != old_key
    assert not pending_key_path(encrypted.master_key_path).exists()
    with cortex.connect(encrypted) as memory:  # reopens with the new key
        assert memory.get(later.id, tenant="newco").content == "written after the rotation"
        for tenant in ("acme", "globex"):
            (event,) = memory.events(["key_rotate"], tenant=tenant)
            assert event.payload == {"kind": "master", "tenant": None, "version": 2}
        assert memory.verify().ok
    encrypted.master_key_path.write_bytes(old_key)
    with pytest.raises(WrongKey):
        cortex.connect(encrypted)


def _sealed_rows(database: Path) -> set[tuple[str, str, str]]:
    conn = apsw.Connection(str(database))
    try:
        return {
            (str(i), str(c), str(m))
            for i, c, m in conn.execute("SELECT id, content, meta FROM facts")
        }
    finally:
        conn.close()


def _sealed_rows_of(database: Path, fact_id: str) -> set[tuple[str, str, str]]:
    return {row for row in _sealed_rows(database) if row[0] == fact_id}


def test_a_crash_between_commit_and_renaming_the_key_file_is_finished_at_open(
    encrypted: Settings,
) -> None:
    path = encrypted.master_key_path
    old_key = path.read_bytes()
    with cortex.connect(encrypted) as memory:
        fact = memory.store("survives an interrupted rotation")
        memory.rotate_master_key()
    new_key = path.read_bytes()
    # As the process would have left things: the store committed to the new key, still in
    # master.key.new; master.key still holds the old one.
    path.rename(pending_key_path(path))
    path.write_bytes(old_key)
    path.chmod(0o600)
    with cortex.connect(encrypted) as memory:
        assert memory.get(fact.id).content == "survives an interrupted rotation"
    assert path.read_bytes() == new_key
    assert not pending_key_path(path).exists()


def test_a_crash_before_the_commit_leaves_a_store_that_opens_with_the_old_key(
    encrypted: Settings,
) -> None:
    with cortex.connect(encrypted) as memory:
        fact = memory.store("the old key still opens me")
    pending = pending_key_path(encrypted.master_key_path)
    pending.write_bytes(os.urandom(32))  # a new key written, never committed to
    pending.chmod(0o600)
    with cortex.connect(encrypted) as memory:
        assert memory.get(fact.id).content == "the old key still opens me"
        assert memory.rotate_master_key().version == 2  # the stale file is replaced
    assert not pending.exists()
    with cortex.connect(encrypted) as memory:
        assert memory.get(fact.id).content == "the old key still opens me"


def test_the_master_key_can_move_from_a_file_to_a_passphrase_and_back(
    encrypted: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with cortex.connect(encrypted) as memory:
        fact = memory.store("moves between master keys")
        assert memory.rotate_master_key(passphrase=PASSPHRASE).source == "passphrase"
    assert not encrypted.master_key_path.exists()
    with pytest.raises(ConfigError, match="CORTEX_PASSPHRASE"):
        cortex.connect(encrypted)
    monkeypatch.setenv("CORTEX_PASSPHRASE", PASSPHRASE)
    with cortex.connect(encrypted) as memory:
        assert memory.get(fact.id).content == "moves between master keys"
        assert memory.rotate_master_key().source == "file"
    monkeypatch.delenv("CORTEX_PASSPHRASE")
    with cortex.connect(encrypted) as memory:
        assert memory.get(fact.id).content == "moves between master keys"
        assert [e.payload["version"] for e in memory.events(["key_rotate"])] == [2, 3]


def test_a_process_still_holding_the_old_master_key_cannot_create_data_keys(
    encrypted: Settings,
) -> None:
    with cortex.connect(encrypted) as stale, cortex.connect(encrypted) as rotating:
        stale.store("gives tenant default its key")
        rotating.rotate_master_key()
        # Existing keys stay loaded in the stale process: its tenant keeps working ...
        assert stale.store("still fine").content == "still fine"
        # ... but a key it wrapped now would be unreadable to everyone else: refused.
        with pytest.raises(ConfigError, match="master key changed"):
            stale.store("first fact of a new tenant", tenant="fresh")
        assert rotating.store("the rotating process can", tenant="fresh").content


def test_processes_sharing_a_store_seal_with_the_current_data_key(encrypted: Settings) -> None:
    with cortex.connect(encrypted) as first, cortex.connect(encrypted) as second:
        made_by_first = first.store("sealed by the first process")
        # The second process loads the first's data key from the store on demand.
        assert second.get(made_by_first.id).content == "sealed by the first process"
        second.rotate_data_key()
        # The first process sees the new key in its next write transaction.
        later = first.store("sealed after the other process rotated")
        assert _versions(encrypted.database_path) == {2: 2}
        assert second.get(later.id).content == "sealed after the other process rotated"
