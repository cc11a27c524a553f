"""The gate and purge through the `cortex` command line."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from tests.cli.invoke import Cli, as_json, ok, stored_id


def _approval_id(stderr: str) -> str:
    found = re.search(r"cortex gate approve (\w+)", stderr)
    assert found is not None, stderr
    return found.group(1)


def test_purge_waits_for_approval_then_runs_with_the_token(cli: Cli, initialised: Path) -> None:
    fact_id = stored_id(cli, "Jane Doe, 12 Elm Street", "--meta", '{"phone": "555-0101"}')

    asked = cli("purge", fact_id, "--reason", "GDPR request 42")
    approval_id = _approval_id(asked.stderr)
    listed = ok(cli("gate", "list")).stdout
    pending = as_json(cli("gate", "list", "--json"))
    approved = ok(cli("gate", "approve", approval_id, "--reason", "checked", "--actor", "dpo"))
    token = approved.stdout.strip()
    purged = ok(cli("purge", fact_id, "--reason", "GDPR request 42", "--approval", token))
    fact = as_json(cli("get", fact_id, "--json"))
    report = as_json(cli("verify", "--json"))
    replay = cli("purge", fact_id, "--reason", "GDPR request 42", "--approval", token)

    assert asked.exit_code == 5
    assert asked.stdout == ""
    assert "needs an admin's approval" in asked.stderr
    assert "--approval TOKEN" in asked.stderr
    assert approval_id in listed
    assert "purge" in listed
    assert [(a["id"], a["state"], a["params"]["fact_id"]) for a in pending] == [
        (approval_id, "pending", fact_id)
    ]
    assert token.startswith("gate1.")
    assert "\n" not in token  # stdout holds the token only: TOKEN=$(cortex gate approve ID)
    assert f"cortex purge {fact_id} --reason 'GDPR request 42' --approval" in approved.stderr
    assert purged.stdout.strip() == f"purged {fact_id}"
    assert (fact["status"], fact["content"], fact["meta"]) == ("purged", "", {})
    assert (report["ok"], report["purged"]) == (True, 1)
    assert replay.exit_code == 4  # already purged: a conflict
    assert as_json(cli("gate", "list", "--json")) == []
    assert [a["state"] for a in as_json(cli("gate", "list", "--all", "--json"))] == ["used"]


def test_the_hints_name_the_tenant_of_the_approval(cli: Cli, initialised: Path) -> None:
    fact_id = stored_id(cli, "kept by acme", "--tenant", "acme")

    asked = cli("purge", fact_id, "--reason", "r", "--tenant", "acme")
    approval_id = _approval_id(asked.stderr)
    elsewhere = cli("gate", "approve", approval_id)  # the default tenant has no such approval
    none_here = ok(cli("gate", "list"))
    approved = ok(cli("gate", "approve", approval_id, "--tenant", "acme"))

    assert asked.exit_code == 5
    assert f"`cortex gate approve {approval_id} --tenant acme`" in asked.stderr
    assert elsewhere.exit_code == 3
    assert "in tenant 'default'" in elsewhere.stderr
    assert "`cortex gate list --all` shows every approval" in elsewhere.stderr
    assert none_here.stderr.strip() == "no approvals pending in tenant 'default'"
    assert approved.stdout.startswith("gate1.")


def test_a_denied_purge_does_not_run(cli: Cli, initialised: Path) -> None:
    fact_id = stored_id(cli, "keep this")
    approval_id = _approval_id(cli("purge", fact_id, "--reason", "r").stderr)

    denied = ok(cli("gate", "deny", approval_id, "--reason", "no legal basis"))
    again = cli("gate", "approve", approval_id)
    decision = json.loads(ok(cli("gate", "list", "--all", "--json")).stdout)[0]

    assert denied.stdout.strip() == f"denied {approval_id} (purge)"
    assert again.exit_code == 4
    assert "already decided" in again.stderr
    assert (decision["state"], decision["decision_reason"]) == ("denied", "no legal basis")
    assert as_json(cli("get", fact_id, "--json"))["content"] == "keep this"


def test_a_forged_token_exits_4_and_changes_nothing(cli: Cli, initialised: Path) -> None:
    fact_id = stored_id(cli, "guarded")
    cli("purge", fact_id, "--reason", "r")

    result = cli("purge", fact_id, "--reason", "r", "--approval", "gate1.e30.AAAA")

    assert result.exit_code == 4
    assert "signature does not verify" in result.stderr
    assert as_json(cli("get", fact_id, "--json"))["status"] == "active"


def test_purge_all_versions_erases_the_whole_chain(cli: Cli, initialised: Path) -> None:
    old = stored_id(cli, "address: 1 Old Road")
    new = ok(cli("supersede", old, "address: 2 New Road")).stdout.strip()
    args = ("purge", new, "--reason", "erasure", "--all-versions")
    approval_id = _approval_id(cli(*args).stderr)
    token = ok(cli("gate", "approve", approval_id)).stdout.strip()

    purged = as_json(cli(*args, "--approval", token, "--json"))

    assert [f["id"] for f in purged] == [old, new]
    assert {f["status"] for f in purged} == {"purged"}


def test_export_waits_for_approval(cli: Cli, initialised: Path, tmp_path: Path) -> None:
    stored_id(cli, "a fact")
    path = tmp_path / "bundle.jsonl"

    asked = cli("export", str(path))
    token = ok(cli("gate", "approve", _approval_id(asked.stderr))).stdout.strip()
    done = ok(cli("export", str(path), "--approval", token))

    assert asked.exit_code == 5
    assert "exported 4 entries" in done.stdout
    assert ok(cli("verify-export", str(path))).stdout.startswith("ok:")


def test_gate_commands_on_an_unknown_approval_exit_3(cli: Cli, initialised: Path) -> None:
    for command in ("approve", "deny"):
        result = cli("gate", command, "01JQ3ZK4W8M2T6X9B1C5D7E0FG")
        assert result.exit_code == 3, result.output
        assert "no approval" in result.stderr


def test_init_on_an_existing_home_creates_a_missing_gate_key(cli: Cli, initialised: Path) -> None:
    key = initialised / "keys" / "gate.key"
    key.unlink()
    fact_id = stored_id(cli, "a fact")
    without = cli("purge", fact_id, "--reason", "r")

    ok(cli("init"))

    assert without.exit_code == 4
    assert "cortex init" in without.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert cli("purge", fact_id, "--reason", "r").exit_code == 5
