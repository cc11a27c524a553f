"""Purge (right to erasure): the content is gone from every file, the proof still verifies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import apsw
import numpy as np
import psycopg
import pytest

import cortex
from cortex import CortexSync, Settings
from cortex.engine import verify_export_sync
from cortex.search.embedder import Embedder
from tests.gate.through_gate import export_through_gate

# Words whose Porter stems are themselves and that no other text here shares a prefix with, so
# the full-text index would hold them whole (the positive controls below check that it does).
CONTENT = "Zorblaxia Quuxfrob lives at 42 Wibblewob Lane and her phone is 555-0199"
WORDS = ("zorblaxia", "quuxfrob", "wibblewob")
META = {"email": "jane.vexquorn@example.org", "ticket": "GDPR-QX-99121"}
TAG = "cust-yzzyvrag"
SECRETS = (
    CONTENT.encode(),
    *(w.encode() for w in WORDS),
    b"vexquorn",
    b"GDPR-QX-99121",
    b"yzzyvrag",
)


def _files(home: Path) -> Iterator[Path]:
    return (p for p in home.rglob("*") if p.is_file())


def _found(home: Path, needles: tuple[bytes, ...] = SECRETS) -> dict[str, list[str]]:
    """Which needles (case-insensitively) each file under `home` holds."""
    hits: dict[str, list[str]] = {}
    for path in _files(home):
        data = path.read_bytes().lower()
        found = [n.decode(errors="replace") for n in needles if n.lower() in data]
        if found:
            hits[str(path.relative_to(home))] = found
    return hits


def _ungated(settings: Settings) -> Settings:
    return settings.with_overrides(gated_actions=())


def _fill(memory: CortexSync, n: int = 300) -> list[cortex.Fact]:
    """Ordinary facts around the one to erase, in several commits (several index segments)."""
    facts = []
    for start in range(0, n, 50):
        facts += memory.store_many(
            [
                {"content": f"service {i} runs on host-{i % 7} in rack {i % 3}"}
                for i in range(start, start + 50)
            ]
        )
    return facts


def test_after_a_purge_no_file_of_the_data_directory_holds_the_content(
    settings: Settings,
) -> None:
    home = settings.home
    with cortex.connect(_ungated(settings)) as memory:
        _fill(memory)
        fact = memory.store(CONTENT, meta=META, tags=[TAG, "keep-this-tag"])
        _fill(memory, 100)
        memory.checkpoint()
        before = _found(home)
        assert memory.search("wibblewob", mode="text")[0].fact.id == fact.id

        memory.purge(fact.id, "GDPR art. 17 request")
        while_open = _found(home)
        still_searchable = memory.search("host-3 rack", mode="text", k=3)
    after_close = _found(home)

    # Positive control: before, the words were in the database files (row, index, tags, WAL).
    assert {w for words in before.values() for w in words} == {s.decode() for s in SECRETS}
    assert while_open == {}, while_open
    assert after_close == {}, after_close
    assert len(still_searchable) == 3  # the merged text index still answers for the others


def test_a_purged_fact_reads_as_purged_everywhere_and_is_never_found(memory: CortexSync) -> None:
    fact = memory.store(CONTENT, meta=META, tags=[TAG])
    other = memory.store("Quuxfrob is also a word in this other fact")
    memory.purge(fact.id, "GDPR art. 17 request", approval=_approval(memory, fact.id))

    got = memory.get(fact.id)
    as_then = memory.get(fact.id, as_of=fact.created_at)
    (version,) = memory.history(fact.id)
    listed = memory.list(include_inactive=True).items
    hits = memory.search("quuxfrob wibblewob zorblaxia", mode="text", include_inactive=True)

    assert (got.status, got.content, got.tags, dict(got.meta)) == ("purged", "", (), {})
    assert got.purge_reason == "GDPR art. 17 request"
    assert (got.id, got.seq, got.created_at) == (fact.id, fact.seq, fact.created_at)
    assert (as_then.content, as_then.status) == ("", "purged")
    assert [tx.op for tx in version.transactions] == ["store", "purge"]
    assert version.transactions[1].payload["reason"] == "GDPR art. 17 request"
    assert CONTENT not in json.dumps([tx.to_dict() for tx in version.transactions])
    assert [f.status for f in listed if f.id == fact.id] == ["purged"]
    assert fact.id not in {f.id for f in memory.list().items}
    assert [h.fact.id for h in hits] == [other.id]
    assert memory.stats().purged == 1


def _approval(memory: CortexSync, fact_id: str, reason: str = "GDPR art. 17 request") -> str:
    with pytest.raises(cortex.errors.ApprovalRequired) as asked:
        memory.purge(fact_id, reason)
    assert asked.value.tenant == memory.settings.tenant
    token = memory.approve(asked.value.approval_id).token
    assert token is not None
    return token


def test_verify_passes_after_a_purge_and_counts_the_fact_as_purged(memory: CortexSync) -> None:
    facts = memory.store_many([{"content": f"fact {i}"} for i in range(5)])
    memory.checkpoint()
    memory.purge(facts[2].id, "erasure", approval=_approval(memory, facts[2].id, "erasure"))
    memory.checkpoint()

    report = memory.verify()

    assert report.ok, report.problems
    assert (report.facts, report.purged) == (5, 1)


def test_an_export_after_a_purge_verifies_offline_and_holds_no_content(
    memory: CortexSync, tmp_path: Path
) -> None:
    fact = memory.store(CONTENT, meta=META)
    memory.purge(fact.id, "erasure", approval=_approval(memory, fact.id, "erasure"))
    bundle = tmp_path / "after.jsonl"
    export_through_gate(memory, bundle)

    report = verify_export_sync(bundle)

    assert report.ok, report.problems
    assert report.purged == 1
    assert _found(tmp_path) == {}


def _tamper(settings: Settings, *statements: str) -> None:
    conn = apsw.Connection(str(settings.database_path))
    try:
        for sql in statements:
            conn.execute(sql)
    finally:
        conn.close()


def test_blanking_a_fact_without_a_purge_entry_is_reported_as_tampering(
    settings: Settings,
) -> None:
    with cortex.connect(settings) as memory:
        kept, blanked, marked = memory.store_many([{"content": f"fact {i}"} for i in range(3)])
    _tamper(
        settings,
        f"UPDATE facts SET content = '', meta = '{{}}' WHERE id = '{blanked.id}'",
        f"UPDATE facts SET content = '', purged_at = 1 WHERE id = '{marked.id}'",
    )

    with cortex.connect(settings) as memory:
        report = memory.verify()

    assert {(p.seq, p.kind) for p in report.problems} == {
        (blanked.seq, "content_changed"),
        (marked.seq, "content_changed"),
    }
    assert "no purge entry" in next(p.detail for p in report.problems if p.seq == marked.seq)
    assert kept.seq not in {p.seq for p in report.problems}


def test_undoing_a_purge_mark_is_reported(settings: Settings) -> None:
    with cortex.connect(_ungated(settings)) as memory:
        fact = memory.store("erased")
        memory.purge(fact.id, "erasure")
    _tamper(settings, f"UPDATE facts SET purged_at = NULL WHERE id = '{fact.id}'")

    with cortex.connect(settings) as memory:
        report = memory.verify()

    kinds = {p.kind for p in report.problems}
    assert {"content_changed", "state_changed"} <= kinds


def test_purging_one_version_leaves_the_others_and_all_versions_erases_the_chain(
    settings: Settings,
) -> None:
    with cortex.connect(_ungated(settings)) as memory:
        first = memory.store("address: 1 Old Road")
        second = memory.supersede(first.id, "address: 2 Middle Road")
        third = memory.supersede(second.id, "address: 3 New Road")

        (only,) = memory.purge(second.id, "erasure")
        assert [memory.get(f.id).content for f in (first, third)] == [
            "address: 1 Old Road",
            "address: 3 New Road",
        ]
        rest = memory.purge(third.id, "erasure", all_versions=True)
        with pytest.raises(cortex.Conflict, match="every version"):
            memory.purge(first.id, "erasure", all_versions=True)

        assert only.id == second.id
        assert [f.id for f in rest] == [first.id, third.id]
        assert {memory.get(f.id).status for f in (first, second, third)} == {"purged"}
        assert memory.verify().ok


def test_the_vector_leaves_the_index_and_its_saved_graph(
    settings: Settings, embedder: Embedder
) -> None:
    options = {"gated_actions": (), "ann_threshold": 32}
    vector = embedder.embed([CONTENT])[0]
    needles = (vector.astype(np.float16).tobytes(), vector.astype(np.float32).tobytes())
    with cortex.connect(settings, embedder=embedder, **options) as memory:
        fact = memory.store(CONTENT)
        memory.store_many([{"content": f"unrelated note number {i}"} for i in range(40)])
        memory.search("where does she live", mode="vector")
    before = _found(settings.home, needles)  # positive control: the saved graph and the row
    assert any(name.startswith("index/") for name in before), before
    assert "cortex.db" in before or "cortex.db-wal" in before, before

    with cortex.connect(settings, embedder=embedder, **options) as memory:
        assert memory.search(CONTENT, mode="vector", k=1)[0].fact.id == fact.id  # saved graph
        memory.purge(fact.id, "erasure")
        hits = memory.search(CONTENT, mode="vector", k=50, include_inactive=True)
        while_open = _found(settings.home, needles)
    after_close = _found(settings.home, needles)
    with cortex.connect(settings, embedder=embedder, **options) as memory:
        rebuilt = memory.search(CONTENT, mode="vector", k=50, include_inactive=True)
    after_rebuild = _found(settings.home, needles)

    assert fact.id not in {h.fact.id for h in hits}
    assert fact.id not in {h.fact.id for h in rebuilt}
    assert len(rebuilt) == 40
    assert (while_open, after_close, after_rebuild) == ({}, {}, {})
    assert list((settings.home / "index").glob("*.usearch"))  # the rebuilt graph was saved


def test_purge_on_postgresql_leaves_no_trace_in_any_table(pg_settings: Settings) -> None:
    with cortex.connect(pg_settings) as memory:
        fact = memory.store(CONTENT, meta=META, tags=[TAG])
        other = memory.store("Quuxfrob again, in a fact that stays")
        memory.purge(fact.id, "GDPR art. 17 request", approval=_approval(memory, fact.id))
        report = memory.verify()
        hits = memory.search("quuxfrob", mode="text", include_inactive=True)
        got = memory.get(fact.id)

    assert report.ok, report.problems
    assert report.purged == 1
    assert [h.fact.id for h in hits] == [other.id]
    assert (got.status, got.content) == ("purged", "")
    assert pg_settings.database_url is not None
    with psycopg.connect(pg_settings.database_url) as conn:
        row = conn.execute(
            "SELECT rowid_, content, tags, meta, purged_at IS NOT NULL FROM facts WHERE id = %s",
            (fact.id,),
        ).fetchone()
        assert row is not None
        rowid = row[0]
        assert row[1:] == ("", "[]", "{}", True)
        for table, column in (("fact_text", "fact_rowid"), ("fact_vectors", "fact_rowid")):
            count = conn.execute(f"SELECT count(*) FROM {table} WHERE {column} = %s", (rowid,))
            assert count.fetchone() == (0,)
        tagged = conn.execute("SELECT count(*) FROM fact_tags WHERE fact_id = %s", (fact.id,))
        assert tagged.fetchone() == (0,)
        for word in ("zorblaxia", "wibblewob", "vexquorn", "yzzyvrag", "99121"):
            pattern = f"%{word}%"
            for sql in (
                "SELECT count(*) FROM facts WHERE content ILIKE %s OR meta ILIKE %s"
                " OR tags ILIKE %s",
                "SELECT count(*) FROM fact_text WHERE doc::text ILIKE %s"
                " OR doc::text ILIKE %s OR doc::text ILIKE %s",
                "SELECT count(*) FROM fact_tags WHERE tag ILIKE %s OR tag ILIKE %s"
                " OR fact_id ILIKE %s",
                "SELECT count(*) FROM transactions WHERE payload ILIKE %s OR actor ILIKE %s"
                " OR subject ILIKE %s",
            ):
                assert conn.execute(sql, (pattern,) * 3).fetchone() == (0,), (word, sql)
