"""`cortex scan FILE|-`: findings by kind and position, never values; exit 1 when blocked."""

from __future__ import annotations

import json
from pathlib import Path

from cortex.cli.scan import syntax_of
from tests.cli.invoke import Cli, ok

SECRET = "AKIAZ3XQ5PLM2RTY7UWN"
EMAIL = "jane.doe@acme-corp.io"


def test_scan_lists_findings_without_values_and_exits_1_when_something_is_blocked(
    cli: Cli, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text(f"# Runbook\n\nuse key {SECRET}\nmail {EMAIL}\n")

    result = cli("scan", str(notes))

    assert result.exit_code == 1
    assert "aws_access_key" in result.stdout
    assert "3:9" in result.stdout
    assert "block" in result.stdout
    assert SECRET not in result.output
    assert EMAIL not in result.output


def test_scan_json_from_stdin_reports_actions_and_positions(cli: Cli) -> None:
    result = cli("scan", "-", "--json", input=f"mail {EMAIL}\n")

    data = json.loads(ok(result).stdout)
    assert data["blocked"] == 0
    assert data["findings"] == [
        {"kind": "email", "category": "pii", "line": 1, "column": 6, "start": 5,
         "end": 5 + len(EMAIL), "action": "allow"}
    ]  # fmt: skip


def test_scan_uses_the_policy_of_cortex_toml_for_tenant_and_project(cli: Cli, home: Path) -> None:
    home.mkdir()
    (home / "cortex.toml").write_text(
        '[shield.tenants.acme]\nsecret = "redact"\n'
        '[shield.tenants.acme.projects.hr]\npii = "block"\n'
    )
    text = f"{SECRET} {EMAIL}"

    acme = json.loads(ok(cli("scan", "-", "--json", "--tenant", "acme", input=text)).stdout)
    hr = cli("scan", "-", "--json", "--tenant", "acme", "--project", "hr", input=text)

    assert [f["action"] for f in acme["findings"]] == ["redact", "allow"]
    assert hr.exit_code == 1
    assert [f["action"] for f in json.loads(hr.stdout)["findings"]] == ["redact", "block"]


def test_scan_of_clean_text_says_so_and_exits_0(cli: Cli) -> None:
    result = ok(cli("scan", "-", input="The staging database moved to db-2.\n"))

    assert "no secrets or personal data found" in result.stdout


def test_store_of_a_secret_exits_2_naming_kind_and_position_only(
    cli: Cli, initialised: Path
) -> None:
    result = cli("store", f"the key is {SECRET}")

    assert result.exit_code == 2
    assert "aws_access_key" in result.output
    assert "line 1, column 12" in result.output
    assert SECRET not in result.output


def test_scan_help_explains_exit_codes_with_an_example(cli: Cli) -> None:
    result = ok(cli("scan", "--help"))

    assert "Example" in result.stdout
    assert "cortex scan" in result.stdout
    assert "Exit code 1" in result.stdout


def test_scan_reads_source_files_as_code_by_their_suffix(cli: Cli, tmp_path: Path) -> None:
    """`passwd = other;` in a C file is code (a bare name), in a text file a password."""
    body = 'passwd = m{{h}o)p${e]nob(ody[finds>-_$#thisone}};\npassword = "x9Qz!rT4#kLm2";\n'
    for name in ("main.c", "app.py", "notes.txt"):
        (tmp_path / name).write_text(body)

    def lines(*args: str) -> list[int]:
        result = cli("scan", *args, "--json")
        assert result.exit_code == 1, result.output
        return [f["line"] for f in json.loads(result.stdout)["findings"]]

    assert lines(str(tmp_path / "main.c")) == [2]
    assert lines(str(tmp_path / "app.py")) == [2]
    assert lines(str(tmp_path / "notes.txt")) == [1, 2]
    assert lines(str(tmp_path / "main.c"), "--syntax", "text") == [1, 2]
    stdin = cli("scan", "-", "--json", "--syntax", "c", input=body)
    assert [f["line"] for f in json.loads(stdin.stdout)["findings"]] == [2]
    stdin_auto = cli("scan", "-", "--json", input=body)
    assert [f["line"] for f in json.loads(stdin_auto.stdout)["findings"]] == [1, 2]


def test_syntax_of_a_file_name() -> None:
    assert [syntax_of(n) for n in ("a.c", "B.CPP", "x.cs", "m.mm")] == ["c"] * 4
    assert [syntax_of(n) for n in ("a.py", "b.ts", "c.java", "d.rs")] == ["code"] * 4
    assert [syntax_of(n) for n in ("a.env", "b.yaml", "c.go", "README", "<stdin>", "")] == [
        "text"
    ] * 6
