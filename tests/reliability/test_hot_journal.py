"""A process killed while it wrote through a rollback journal leaves a hot journal, which only a
writer may roll back: the store must still open (as SQLite's own recovery would), not fail.

`init` switches the new database file to WAL through such a journal, so a kill at that moment
leaves exactly this state; here it is made deterministic by killing a writer of a file in
rollback-journal mode in the middle of its transaction.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import apsw
import pytest
from typer.testing import CliRunner

import cortex
from cortex import Settings
from cortex.api.keys import KeyStore
from cortex.cli import app

_WRITER = """
import sys, time, apsw
conn = apsw.Connection(sys.argv[1])
conn.execute("BEGIN IMMEDIATE")
conn.execute("CREATE TABLE scratch(v)")
for _ in range(2000):
    conn.execute("INSERT INTO scratch VALUES (randomblob(1000))")
conn.execute(f"DELETE FROM {sys.argv[2]}")
conn.cache_flush()  # the changed pages reach the file; their old content is in the journal
print("mid-transaction", flush=True)
time.sleep(60)
"""


def _kill_mid_write(database: Path, table: str) -> Path:
    """Leave `database` (switched to rollback-journal mode) with a hot journal: a writer that
    emptied `table` is killed before it commits. Return the journal's path."""
    conn = apsw.Connection(str(database))
    assert conn.execute("PRAGMA journal_mode = DELETE").fetchall() == [("delete",)]
    conn.close()
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(database), table], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "mid-transaction"
    writer.kill()
    writer.wait()
    journal = Path(f"{database}-journal")
    assert journal.stat().st_size > 0
    with pytest.raises(apsw.ReadOnlyError):  # the state that broke opening: RO cannot roll back
        apsw.Connection(str(database), flags=apsw.SQLITE_OPEN_READONLY).execute(
            f"SELECT count(*) FROM {table}"
        ).fetchall()
    return journal


@pytest.mark.timeout(60)
def test_the_store_opens_after_a_kill_left_a_hot_rollback_journal(
    make_home: Callable[..., Settings],
) -> None:
    settings = make_home()
    with cortex.connect(settings) as mem:
        stored = [f.id for f in mem.store_many([{"content": f"fact {i}"} for i in range(20)])]
    journal = _kill_mid_write(settings.database_path, "facts")

    with cortex.connect(settings) as mem:
        found = [mem.get(fact_id).content for fact_id in stored]
        report = mem.verify()

    assert found == [f"fact {i}" for i in range(20)]  # the killed transaction was rolled back
    assert report.ok, report
    assert not journal.exists() or journal.stat().st_size == 0


@pytest.mark.timeout(120)
def test_migrate_store_copies_api_keys_whose_database_has_a_hot_journal(
    make_home: Callable[..., Settings], tmp_path: Path
) -> None:
    source = make_home()
    with cortex.connect(source) as mem:
        mem.store("one fact to copy")
    with KeyStore.open(source) as keys:
        issued = keys.create("default", "writer")
    _kill_mid_write(source.service_database_path, "api_keys")

    result = CliRunner().invoke(
        app, ["migrate-store", "--from", str(source.home), "--to", str(tmp_path / "copy")]
    )

    assert result.exit_code == 0, result.output
    with KeyStore.open(Settings.load(tmp_path / "copy", environ={})) as keys:
        assert [k.key_id for k in keys.list_keys()] == [issued.record.key_id]
