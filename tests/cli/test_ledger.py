"""The ledger through the CLI: verify, proofs, checkpoints, export and verify-export, stats."""

from __future__ import annotations

import json
from pathlib import Path

import apsw
import pytest
from typer.testing import CliRunner

from cortex.cli import app
from cortex.ledger.merkle import verify_consistency, verify_inclusion
from tests.cli.invoke import Cli, as_json, ok, stored_id
from tests.gate.through_gate import cli_through_gate

pytestmark = pytest.mark.usefixtures("initialised")


def _tamper_content(home: Path, fact_id: str) -> None:
    """Rewrite a fact's content behind CORTEX's back, as an attacker with file access could."""
    connection = apsw.Connection(str(home / "cortex.db"))
    try:
        connection.execute("UPDATE facts SET content = 'x' WHERE id = ?", (fact_id,))
    finally:
        connection.close()


def test_verify_on_a_clean_store_exits_0(cli: Cli) -> None:
    for n in range(3):
        stored_id(cli, f"fact {n}")

    result = ok(cli("verify"))
    report = as_json(cli("verify", "--json"))

    assert result.stdout.startswith("ok:")
    assert report["ok"] is True
    assert report["entries"] == 3
    assert report["problems"] == []


def test_verify_of_an_empty_store_exits_0(cli: Cli) -> None:
    assert as_json(cli("verify", "--json"))["tenants"] == 0


def test_verify_after_tampering_exits_1_and_names_the_seq(cli: Cli, home: Path) -> None:
    stored_id(cli, "untouched")
    victim = as_json(cli("store", "the payment limit is 100 EUR", "--json"))
    stored_id(cli, "untouched too")
    _tamper_content(home, victim["id"])

    result = cli("verify")
    report = json.loads(cli("verify", "--json").stdout)

    assert result.exit_code == 1
    assert "FAILED" in result.stdout
    assert [(p["seq"], p["kind"]) for p in report["problems"]] == [(1, "content_changed")]
    row = next(line for line in result.stdout.splitlines() if "content_changed" in line)
    assert row.split()[:2] == ["default", "1"]


def test_verify_checks_every_tenant_unless_one_is_named(cli: Cli, home: Path) -> None:
    stored_id(cli, "default tenant fact")
    victim = stored_id(cli, "acme fact", "--tenant", "acme")
    _tamper_content(home, victim)

    every = cli("verify", "--json")
    only_default = cli("verify", "--tenant", "default", "--json")
    unknown = cli("verify", "--tenant", "nobody")

    assert every.exit_code == 1
    assert json.loads(every.stdout)["problems"][0]["tenant"] == "acme"
    assert only_default.exit_code == 0
    assert unknown.exit_code == 3


def test_proof_by_seq_verifies_locally(cli: Cli) -> None:
    for n in range(5):
        stored_id(cli, f"fact {n}")

    result = ok(cli("proof", "3"))
    proof = as_json(cli("proof", "3", "--json"))

    assert "verified: entry 3 is in the tree of 5 entries" in result.stdout
    assert proof["verified"] is True
    assert (proof["seq"], proof["tree_size"]) == (3, 5)
    assert verify_inclusion(
        bytes.fromhex(proof["leaf_hash"]),
        proof["seq"],
        proof["tree_size"],
        [bytes.fromhex(h) for h in proof["path"]],
        bytes.fromhex(proof["root"]),
    )


def test_proof_by_fact_id_proves_its_store_entry(cli: Cli) -> None:
    stored_id(cli, "first")
    fact_id = stored_id(cli, "second")

    proof = as_json(cli("proof", fact_id, "--json"))

    assert proof["seq"] == 1
    assert proof["verified"] is True
    assert fact_id in proof["entry"]


def test_proof_that_does_not_reach_the_root_exits_1(cli: Cli, home: Path) -> None:
    for n in range(4):
        stored_id(cli, f"fact {n}")
    connection = apsw.Connection(str(home / "cortex.db"))
    try:
        connection.execute(
            "UPDATE merkle_nodes SET hash = zeroblob(32) WHERE level = 0 AND last_leaf = 1"
        )
    finally:
        connection.close()

    result = cli("proof", "1")
    proof = json.loads(cli("proof", "1", "--json").stdout)

    assert result.exit_code == 1
    assert "NOT VERIFIED" in result.stdout
    assert proof["verified"] is False


def test_proof_against_an_older_tree_size(cli: Cli) -> None:
    for n in range(6):
        stored_id(cli, f"fact {n}")

    proof = as_json(cli("proof", "1", "--tree-size", "4", "--json"))

    assert proof["tree_size"] == 4
    assert proof["verified"] is True


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["proof", "7"], 3),
        (["proof", "01JNZ3Q8V4K2M7T9X1B5C6D8EF"], 3),
        (["proof", "0", "--tree-size", "9"], 2),
        (["proof", "0", "--tree-size", "many"], 2),
    ],
)
def test_proof_of_what_is_not_there_fails_with_its_exit_code(
    cli: Cli, args: list[str], code: int
) -> None:
    stored_id(cli, "only fact")

    result = cli(*args)

    assert result.exit_code == code, result.output
    assert result.stderr


def test_consistency_proof_verifies_locally(cli: Cli) -> None:
    for n in range(7):
        stored_id(cli, f"fact {n}")

    result = ok(cli("consistency", "3"))
    proof = as_json(cli("consistency", "3", "6", "--json"))

    assert "verified: the tree of 3 entries is a prefix of the tree of 7" in result.stdout
    assert (proof["old_size"], proof["new_size"], proof["verified"]) == (3, 6, True)
    assert verify_consistency(
        3,
        6,
        bytes.fromhex(proof["old_root"]),
        bytes.fromhex(proof["new_root"]),
        [bytes.fromhex(h) for h in proof["path"]],
    )


def test_consistency_old_root_matches_an_earlier_checkpoint(cli: Cli) -> None:
    stored_id(cli, "one")
    stored_id(cli, "two")
    early = as_json(cli("checkpoint", "--json"))
    stored_id(cli, "three")

    proof = as_json(cli("consistency", str(early["tree_size"]), "--json"))

    assert proof["old_root"] == early["root"]
    assert proof["new_size"] == 3


def test_consistency_with_sizes_out_of_range_exits_2(cli: Cli) -> None:
    stored_id(cli, "only fact")

    assert cli("consistency", "2").exit_code == 2
    assert cli("consistency", "1", "5").exit_code == 2


def test_checkpoint_signs_the_current_tree(cli: Cli) -> None:
    stored_id(cli, "one")
    stored_id(cli, "two")

    signed = as_json(cli("checkpoint", "--json"))
    shown = ok(cli("checkpoint")).stdout

    assert signed["tree_size"] == 2
    assert len(bytes.fromhex(signed["signature"])) == 64
    assert signed["root"] in shown
    assert as_json(cli("stats", "--json"))["latest_checkpoint_size"] == 2


def test_checkpoint_of_a_tenant_without_a_ledger_exits_3(cli: Cli) -> None:
    assert cli("checkpoint").exit_code == 3


def test_stats_counts_facts_by_status(cli: Cli) -> None:
    kept = stored_id(cli, "kept")
    gone = stored_id(cli, "gone")
    ok(cli("deprecate", gone, "--reason", "wrong"))
    ok(cli("supersede", kept, "kept, v2"))

    stats = as_json(cli("stats", "--json"))
    table = ok(cli("stats")).stdout

    assert (stats["facts"], stats["active"], stats["deprecated"], stats["superseded"]) == (
        3,
        1,
        1,
        1,
    )
    assert stats["transactions"] == 4
    assert "transactions" in table


def _export(cli: Cli, tmp_path: Path) -> Path:
    for n in range(4):
        stored_id(cli, f"fact {n}")
    ok(cli("checkpoint"))
    path = tmp_path / "bundle.jsonl"
    # 4 facts, then the export's approval: its request, decision and token use.
    assert "exported 7 entries" in ok(cli_through_gate(cli, "export", str(path))).stdout
    return path


def test_export_then_verify_export_exits_0(cli: Cli, tmp_path: Path, home: Path) -> None:
    path = _export(cli, tmp_path)

    result = ok(cli("verify-export", str(path)))
    report = as_json(cli("verify-export", str(path), "--json"))
    pinned = ok(cli("verify-export", str(path), "--public-key", str(home / "keys" / "signing.pub")))

    assert result.stdout.startswith("ok:")
    assert (report["ok"], report["entries"], report["checkpoints"]) == (True, 7, 1)
    assert pinned.stdout.startswith("ok:")


def test_verify_export_of_a_tampered_bundle_exits_1(cli: Cli, tmp_path: Path) -> None:
    path = _export(cli, tmp_path)
    lines = path.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if json.loads(line)["type"] == "fact")
    record = json.loads(lines[index])
    record["content"] = "rewritten history"
    lines[index] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")

    result = cli("verify-export", str(path))
    report = json.loads(cli("verify-export", str(path), "--json").stdout)

    assert result.exit_code == 1
    assert "FAILED" in result.stdout
    assert {p["kind"] for p in report["problems"]} == {"content_changed"}
    assert report["problems"][0]["seq"] == record["seq"]


def test_verify_export_with_another_public_key_exits_1(
    cli: Cli, tmp_path: Path, home: Path
) -> None:
    path = _export(cli, tmp_path)
    other_home = tmp_path / "other"
    ok(cli("init", "--home", str(other_home)))

    result = cli(
        "verify-export", str(path), "--public-key", str(other_home / "keys" / "signing.pub")
    )

    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "pinned key" in result.stderr


def test_verify_export_of_a_file_that_is_no_bundle_exits_1(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some notes\n")

    result = cli("verify-export", str(path))

    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")


def test_verify_export_of_a_missing_file_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    assert cli("verify-export", str(tmp_path / "absent.jsonl")).exit_code == 2


def test_verify_export_needs_no_home(tmp_path: Path, cli: Cli) -> None:
    path = _export(cli, tmp_path)
    elsewhere = CliRunner(env={"CORTEX_HOME": str(tmp_path / "nowhere")})

    assert elsewhere.invoke(app, ["verify-export", str(path)]).exit_code == 0


def test_export_into_an_unwritable_place_exits_4(cli: Cli, tmp_path: Path) -> None:
    stored_id(cli, "a fact")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")

    result = cli_through_gate(cli, "export", str(blocker / "bundle.jsonl"))

    assert result.exit_code == 4
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output
