"""The ledger: store-backed proofs equal the reference; tampering of any kind is named by seq."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import apsw
import pytest

import cortex
from cortex import CortexSync, Settings
from cortex.canonical import canonical_json, parse_ts
from cortex.ledger import merkle
from cortex.ledger.chain import build_transaction
from tests.gate.through_gate import export_through_gate


@pytest.fixture
def filled(settings: Settings) -> Iterator[tuple[CortexSync, list[cortex.Fact]]]:
    """A store with 40 facts, one deprecation and one supersession (42 entries)."""
    with cortex.connect(settings, checkpoint_every=16) as handle:
        facts = handle.store_many([{"content": f"fact {i}", "tags": ["t"]} for i in range(40)])
        handle.deprecate(facts[5].id, "obsolete")
        handle.supersede(facts[7].id, "fact 7, corrected")
        yield handle, facts


def _all_entries(settings: Settings, memory: CortexSync) -> list[bytes]:
    size = memory.stats().transactions
    return [memory.inclusion_proof(seq).entry for seq in range(size)]


def test_store_backed_proofs_equal_the_reference_functions(
    filled: tuple[CortexSync, list[cortex.Fact]], settings: Settings
) -> None:
    memory, _ = filled
    entries = _all_entries(settings, memory)
    size = len(entries)
    assert size == 42
    for tree_size in (1, 2, 3, 16, 17, 31, 42):
        for seq in range(tree_size):
            proof = memory.inclusion_proof(seq, tree_size=tree_size)
            assert list(proof.path) == merkle.inclusion_proof(entries[:tree_size], seq)
            assert proof.root == merkle.merkle_root(entries[:tree_size])
            assert proof.leaf_hash == merkle.leaf_hash(entries[seq])
            assert merkle.verify_inclusion(proof.leaf_hash, seq, tree_size, proof.path, proof.root)
    for old in range(0, size + 1):
        proof = memory.consistency_proof(old)
        assert list(proof.path) == merkle.consistency_proof(entries, old)
        assert merkle.verify_consistency(old, size, proof.old_root, proof.new_root, proof.path)


def test_inclusion_proof_by_fact_id_is_the_proof_of_its_store_entry(
    filled: tuple[CortexSync, list[cortex.Fact]],
) -> None:
    memory, facts = filled
    assert memory.inclusion_proof(facts[3].id) == memory.inclusion_proof(facts[3].seq)


def test_proof_arguments_out_of_range_are_validation_errors(
    filled: tuple[CortexSync, list[cortex.Fact]],
) -> None:
    memory, _ = filled
    with pytest.raises(cortex.NotFound):
        memory.inclusion_proof(42)
    with pytest.raises(cortex.ValidationError):
        memory.inclusion_proof(0, tree_size=43)
    with pytest.raises(cortex.ValidationError):
        memory.consistency_proof(10, 5)


def test_checkpoints_are_signed_automatically_every_n_and_on_demand(
    filled: tuple[CortexSync, list[cortex.Fact]],
) -> None:
    memory, _ = filled
    sizes = [c.tree_size for c in memory.checkpoints()]
    assert sizes == [40]  # the batch of 40 crossed 16 and 32 in one group
    memory.store("one more")
    on_demand = memory.checkpoint()
    assert on_demand.tree_size == 43
    assert memory.checkpoint() == on_demand  # same size: same checkpoint
    assert memory.verify().ok


def test_a_checkpoint_signed_after_a_group_is_stamped_between_its_facts_and_the_next(
    settings: Settings,
) -> None:
    """The automatic checkpoint carries the time of the last transaction it covers: every fact
    in it is stamped at or before it, every later fact after it; one on demand is stamped now."""
    with cortex.connect(settings, checkpoint_every=10) as memory:
        facts: list[cortex.Fact] = []
        for round_ in range(4):
            facts += memory.store_many([{"content": f"r{round_} {i}"} for i in range(12)])
        checkpoints = memory.checkpoints()
        assert [c.tree_size for c in checkpoints] == [12, 24, 36, 48]
        for checkpoint in checkpoints:
            stamp = parse_ts(checkpoint.ts)
            assert stamp == facts[checkpoint.tree_size - 1].created_at
            if checkpoint.tree_size < len(facts):
                assert stamp < facts[checkpoint.tree_size].created_at
        memory.deprecate(facts[0].id, "stale")
        on_demand = memory.checkpoint()
        assert parse_ts(on_demand.ts) > parse_ts(checkpoints[-1].ts)
        later = memory.store("after the checkpoint on demand")
        assert later.created_at > parse_ts(on_demand.ts)
        assert memory.verify().ok


def _tamper(settings: Settings, *statements: str) -> None:
    conn = apsw.Connection(str(settings.database_path))
    try:
        with conn:
            for sql in statements:
                conn.execute(sql)
    finally:
        conn.close()


def _problems(memory: CortexSync) -> set[tuple[int | None, str]]:
    return {(p.seq, p.kind) for p in memory.verify().problems}


def _entry_problems(memory: CortexSync) -> set[tuple[int | None, str]]:
    """Problems other than the checkpoint's root mismatch that any altered entry also causes."""
    problems = _problems(memory)
    assert (39, "root_mismatch") in problems  # the signed checkpoint at 40 no longer matches
    return problems - {(39, "root_mismatch")}


def test_a_clean_ledger_verifies(filled: tuple[CortexSync, list[cortex.Fact]]) -> None:
    memory, _ = filled
    report = memory.verify()
    assert report.ok, report.problems
    assert (report.entries, report.facts, report.checkpoints) == (42, 41, 1)


def test_changed_fact_content_is_named_by_its_seq(
    filled: tuple[CortexSync, list[cortex.Fact]], settings: Settings
) -> None:
    memory, facts = filled
    _tamper(settings, f"UPDATE facts SET content = 'rewritten' WHERE id = '{facts[12].id}'")
    assert _problems(memory) == {(12, "content_changed")}


def test_changed_transaction_field_is_named_by_its_seq(
    filled: tuple[CortexSync, list[cortex.Fact]], settings: Settings
) -> None:
    memory, _ = filled
    _tamper(settings, "UPDATE transactions SET actor = 'mallory' WHERE seq = 20")
    assert _entry_problems(memory) == {(20, "entry_altered")}


def test_deleted_transaction_is_reported_missing(
    filled: tuple[CortexSync, list[cortex.Fact]], settings: Settings
) -> None:
    memory, _ = filled
    _tamper(settings, "DELETE FROM transactions WHERE seq = 9")
    problems = _entry_problems(memory)
    assert (9, "entry_missing") in problems
    assert all(seq in (9, 10) for seq, _ in problems), problems


def test_swapped_transactions_are_reported_as_reordered(
    filled: tuple[CortexSync, list[cortex.Fact]], settings: Settings
) -> None:
    memory, _ = filled
    cols = "op, subject, actor, ts, payload, payload_digest, prev_hash, hash"
    _tamper(
        settings,
        f"CREATE TEMP TABLE a AS SELECT {cols} FROM transactions WHERE seq = 3",
        f"CREATE TEMP TABLE b AS SELECT {cols} FROM transactions WHERE seq = 4",
        "UPDATE transactions SET (" + cols + ") = (SELECT * FROM b) WHERE seq = 3",
        "UPDATE transactions SET (" + cols + ") = (SELECT * FROM a) WHERE seq = 4",
    )
    problems = _entry_problems(memory)
    assert (3, "entries_reordered") in problems
    assert (4, "entries_reordered") in problems


def test_replaced_checkpoint_signature_is_reported(
    filled: tuple[CortexSync, list[cortex.Fact]], settings: Settings
) -> None:
    memory, _ = filled
    _tamper(settings, "UPDATE checkpoints SET signature = zeroblob(64)")
    assert _problems(memory) == {(39, "checkpoint_signature_invalid")}


def test_rewritten_history_with_recomputed_hashes_is_caught_by_the_signed_root(
    filled: tuple[CortexSync, list[cortex.Fact]], settings: Settings
) -> None:
    """A forger rewrites a fact and recomputes every digest, hash and node after it.

    Chain and tree are then self-consistent; only the signed checkpoint can tell.
    """
    memory, facts = filled
    forged = replace(memory.get(facts[2].id), content="forged")
    conn = apsw.Connection(str(settings.database_path))
    with conn:
        rows = list(
            conn.execute(
                "SELECT seq, op, subject, actor, ts, payload FROM transactions ORDER BY seq"
            )
        )
        conn.execute("UPDATE facts SET content = 'forged' WHERE id = ?", (forged.id,))
        conn.execute("DELETE FROM merkle_nodes")
        prev = bytes(32)
        nodes: dict[tuple[int, int], bytes] = {}
        for seq, op, subject, actor, ts, payload in rows:
            body = json.loads(payload)
            if subject == forged.id:
                body["fact_digest"] = forged.digest().hex()
            tx, entry, _ = build_transaction(
                tenant="default",
                seq=seq,
                op=op,
                subject=subject,
                actor=actor,
                ts=ts,
                payload=body,
                prev_hash=prev,
            )
            conn.execute(
                "UPDATE transactions SET payload = ?, payload_digest = ?, prev_hash = ?, hash = ?"
                " WHERE seq = ?",
                (canonical_json(body).decode(), tx.payload_digest, tx.prev_hash, tx.hash, seq),
            )
            for level, index, h in merkle.completed_subtrees(
                seq, merkle.leaf_hash(entry), lambda lv, ix: nodes[(lv, ix)]
            ):
                nodes[(level, index)] = h
                conn.execute(
                    "INSERT INTO merkle_nodes VALUES (1, ?, ?, ?)",
                    (((index + 1) << level) - 1, level, h),
                )
            prev = tx.hash
        conn.execute("UPDATE tenants SET head_hash = ?", (prev,))
    conn.close()
    assert _problems(memory) == {(39, "root_mismatch")}


def test_tampering_with_deprecation_state_is_reported(
    filled: tuple[CortexSync, list[cortex.Fact]], settings: Settings
) -> None:
    memory, facts = filled
    _tamper(
        settings,
        "UPDATE facts SET deprecated_at = NULL, deprecation_reason = NULL"
        f" WHERE id = '{facts[5].id}'",
        f"UPDATE facts SET deprecated_at = 1, deprecation_reason = 'x' WHERE id = '{facts[6].id}'",
    )
    problems = _problems(memory)
    assert (40, "state_changed") in problems  # the deprecate entry no longer shows
    assert (6, "state_changed") in problems  # deprecated without an entry


def test_every_bad_entry_is_reported_not_just_the_first(
    filled: tuple[CortexSync, list[cortex.Fact]], settings: Settings
) -> None:
    memory, facts = filled
    _tamper(
        settings,
        *(f"UPDATE facts SET content = 'x' WHERE id = '{facts[i].id}'" for i in (1, 15, 30)),
        "UPDATE transactions SET ts = '2020-01-01T00:00:00.000000Z' WHERE seq = 33",
    )
    assert _entry_problems(memory) == {
        (1, "content_changed"),
        (15, "content_changed"),
        (30, "content_changed"),
        (33, "entry_altered"),
    }


def test_export_bundle_verifies_with_nothing_but_itself(
    filled: tuple[CortexSync, list[cortex.Fact]], tmp_path: Path
) -> None:
    memory, _ = filled
    bundle = tmp_path / "out" / "acme.jsonl"
    assert export_through_gate(memory, bundle) == 45  # 42, then the export's 3 gate entries
    report = cortex.engine.verify_export_sync(bundle)
    assert report.ok, report.problems
    assert report.entries == 45
    pinned = cortex.engine.verify_export_sync(bundle, public_key_pem=memory.public_key_pem)
    assert pinned.ok


def test_tampered_export_bundle_fails_verification_naming_the_seq(
    filled: tuple[CortexSync, list[cortex.Fact]], tmp_path: Path
) -> None:
    memory, facts = filled
    bundle = tmp_path / "b.jsonl"
    export_through_gate(memory, bundle)
    lines = bundle.read_text().splitlines()
    out = []
    for line in lines:
        record = json.loads(line)
        if record["type"] == "fact" and record["id"] == facts[8].id:
            record["content"] = "edited after export"
        out.append(json.dumps(record))
    bundle.write_text("\n".join(out) + "\n")
    report = cortex.engine.verify_export_sync(bundle)
    assert {(p.seq, p.kind) for p in report.problems} == {(8, "content_changed")}


def test_export_bundle_with_a_foreign_key_is_rejected_when_a_key_is_pinned(
    filled: tuple[CortexSync, list[cortex.Fact]], tmp_path: Path, settings: Settings
) -> None:
    memory, _ = filled
    bundle = tmp_path / "b.jsonl"
    export_through_gate(memory, bundle)
    other = Settings.load(tmp_path / "other")
    pem = cortex.init_home(other).public_key_pem
    with pytest.raises(cortex.IntegrityError, match="pinned"):
        cortex.engine.verify_export_sync(bundle, public_key_pem=pem)


def test_malformed_bundle_is_a_validation_error_naming_the_line(tmp_path: Path) -> None:
    bundle = tmp_path / "junk.jsonl"
    bundle.write_text("not json\n")
    with pytest.raises(cortex.IntegrityError, match="line 1"):
        cortex.engine.verify_export_sync(bundle)


@pytest.mark.parametrize("workers", [2, 3, 7])
def test_parallel_verification_finds_exactly_what_a_single_scan_finds(
    filled: tuple[CortexSync, list[cortex.Fact]], settings: Settings, workers: int
) -> None:
    memory, facts = filled
    assert memory.verify(workers=workers).ok
    _tamper(
        settings,
        f"UPDATE facts SET content = 'x' WHERE id = '{facts[3].id}'",
        "UPDATE transactions SET actor = 'mallory' WHERE seq = 21",
        "DELETE FROM transactions WHERE seq = 30",
        "UPDATE merkle_nodes SET hash = zeroblob(32) WHERE last_leaf = 13 AND level = 1",
    )
    single = memory.verify(workers=1)
    parallel = memory.verify(workers=workers)
    assert not single.ok
    assert sorted(p.to_dict().items() for p in parallel.problems) == sorted(
        p.to_dict().items() for p in single.problems
    )
    assert (parallel.entries, parallel.facts) == (single.entries, single.facts)


def test_tampered_subtree_hash_is_reported(
    filled: tuple[CortexSync, list[cortex.Fact]], settings: Settings
) -> None:
    memory, _ = filled
    _tamper(
        settings, "UPDATE merkle_nodes SET hash = zeroblob(32) WHERE last_leaf = 15 AND level = 2"
    )
    assert _problems(memory) == {(15, "tree_node_mismatch")}


def test_bundle_with_a_duplicated_line_is_an_integrity_error(
    filled: tuple[CortexSync, list[cortex.Fact]], tmp_path: Path
) -> None:
    memory, _ = filled
    bundle = tmp_path / "b.jsonl"
    export_through_gate(memory, bundle)
    lines = bundle.read_text().splitlines()
    bundle.write_text("\n".join([*lines[:3], lines[2], *lines[3:]]) + "\n")
    with pytest.raises(cortex.IntegrityError, match="repeats"):
        cortex.engine.verify_export_sync(bundle)


def test_bundle_line_missing_a_field_names_the_field(
    filled: tuple[CortexSync, list[cortex.Fact]], tmp_path: Path
) -> None:
    memory, _ = filled
    bundle = tmp_path / "b.jsonl"
    export_through_gate(memory, bundle)
    lines = bundle.read_text().splitlines()
    record = json.loads(lines[2])
    del record["hash"]
    lines[2] = json.dumps(record)
    bundle.write_text("\n".join(lines) + "\n")
    with pytest.raises(cortex.IntegrityError, match="line 3 is malformed: missing field 'hash'"):
        cortex.engine.verify_export_sync(bundle)
