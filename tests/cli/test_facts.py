"""Facts through the CLI: store, get, list, deprecate, supersede, history; tables and JSON."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cortex.cli import app
from tests.cli.invoke import Cli, as_json, ok, stored_id

pytestmark = pytest.mark.usefixtures("initialised")


def test_store_prints_the_new_id_which_get_shows(cli: Cli) -> None:
    fact_id = stored_id(cli, "Redis runs on port 6380 in staging", "--project", "infra")

    shown = ok(cli("get", fact_id))

    assert fact_id in shown.stdout
    assert "Redis runs on port 6380 in staging" in shown.stdout
    assert "infra" in shown.stdout


def test_store_with_every_field_round_trips_through_get_json(cli: Cli) -> None:
    fact_id = stored_id(
        cli,
        "Staging deploys need the VPN",
        "--project", "infra",
        "--type", "procedure",
        "--tag", "vpn",
        "--tag", "staging",
        "--source", "agent-7",
        "--confidence", "0.8",
        "--valid-from", "2026-01-01",
        "--valid-until", "2027-01-01T00:00:00Z",
        "--meta", '{"ticket": "OPS-12"}',
    )  # fmt: skip

    fact = as_json(cli("get", fact_id, "--json"))

    assert fact["id"] == fact_id
    assert fact["project"] == "infra"
    assert fact["fact_type"] == "procedure"
    assert fact["tags"] == ["staging", "vpn"]
    assert fact["source"] == "agent-7"
    assert fact["confidence"] == 0.8
    assert fact["valid_from"] == "2026-01-01T00:00:00Z"
    assert fact["valid_until"] == "2027-01-01T00:00:00Z"
    assert fact["meta"] == {"ticket": "OPS-12"}
    assert fact["status"] == "active"


def test_store_json_prints_the_stored_fact(cli: Cli) -> None:
    fact = as_json(cli("store", "JSON please", "--json"))

    assert fact["content"] == "JSON please"
    assert fact["seq"] == 0


def test_content_with_rich_markup_is_printed_verbatim(cli: Cli) -> None:
    fact_id = stored_id(cli, "Use [bold]brackets[/bold] literally")

    assert "[bold]brackets[/bold]" in ok(cli("get", fact_id)).stdout
    assert "[bold]brackets[/bold]" in ok(cli("list")).stdout


def test_list_shows_every_active_fact_in_a_table_and_as_json(cli: Cli) -> None:
    first = stored_id(cli, "first fact")
    second = stored_id(cli, "second fact")

    table = ok(cli("list")).stdout
    page = as_json(cli("list", "--json"))

    assert first in table
    assert second in table
    assert "second fact" in table
    assert [item["id"] for item in page["items"]] == [first, second]
    assert page["next_cursor"] is None


def test_list_filters_by_project_type_source_and_every_tag(cli: Cli) -> None:
    redis = stored_id(cli, "redis", "-p", "infra", "--tag", "db", "--tag", "cache")
    pg = stored_id(cli, "postgres", "-p", "infra", "--tag", "db", "--source", "agent-1")
    docs = stored_id(cli, "docs", "-p", "web", "--type", "procedure")

    def ids(*filters: str) -> list[str]:
        return [item["id"] for item in as_json(cli("list", "--json", *filters))["items"]]

    assert ids("--project", "infra") == [redis, pg]
    assert ids("--tag", "db") == [redis, pg]
    assert ids("--tag", "db", "--tag", "cache") == [redis]
    assert ids("--project", "web") == [docs]
    assert ids("--type", "procedure") == [docs]
    assert ids("--source", "agent-1") == [pg]
    assert ids("--project", "nowhere") == []


def test_list_pages_with_a_cursor_hint(cli: Cli) -> None:
    ids = [stored_id(cli, f"fact {n}") for n in range(3)]

    first = ok(cli("list", "--limit", "2"))
    page = as_json(cli("list", "--limit", "2", "--json"))
    rest = as_json(cli("list", "--limit", "2", "--cursor", page["next_cursor"], "--json"))

    assert f"--cursor {page['next_cursor']}" in first.stderr
    assert [item["id"] for item in page["items"]] == ids[:2]
    assert [item["id"] for item in rest["items"]] == ids[2:]
    assert rest["next_cursor"] is None


def test_list_of_an_empty_store_says_so_on_stderr(cli: Cli) -> None:
    result = ok(cli("list"))

    assert result.stdout == ""
    assert "no facts" in result.stderr


def test_list_as_of_an_earlier_instant_shows_a_fact_deprecated_since(cli: Cli) -> None:
    fact = as_json(cli("store", "the office is on floor 3", "--json"))
    ok(cli("deprecate", fact["id"], "--reason", "we moved"))

    now = as_json(cli("list", "--json"))["items"]
    then = as_json(cli("list", "--as-of", fact["created_at"], "--json"))["items"]
    before = as_json(cli("list", "--as-of", "2000-01-01", "--json"))["items"]

    assert now == []
    assert [item["id"] for item in then] == [fact["id"]]
    assert then[0]["status"] == "active"
    assert before == []


def test_get_as_of_shows_the_fact_as_it_was_and_not_before_it_existed(cli: Cli) -> None:
    fact = as_json(cli("store", "the office is on floor 3", "--json"))
    ok(cli("deprecate", fact["id"], "--reason", "we moved"))

    then = as_json(cli("get", fact["id"], "--as-of", fact["created_at"], "--json"))
    before = cli("get", fact["id"], "--as-of", "2000-01-01")

    assert then["status"] == "active"
    assert before.exit_code == 3


def test_list_all_includes_deprecated_and_superseded_facts(cli: Cli) -> None:
    old = stored_id(cli, "old")
    gone = stored_id(cli, "gone")
    ok(cli("deprecate", gone, "--reason", "wrong"))
    new = ok(cli("supersede", old, "new")).stdout.strip()

    items = as_json(cli("list", "--all", "--json"))["items"]
    table = ok(cli("list", "--all")).stdout

    assert {item["id"]: item["status"] for item in items} == {
        old: "superseded",
        gone: "deprecated",
        new: "active",
    }
    assert "superseded" in table
    assert "deprecated" in table


def test_deprecate_marks_the_fact_with_its_reason(cli: Cli) -> None:
    fact_id = stored_id(cli, "temporary")

    result = ok(cli("deprecate", fact_id, "--reason", "no longer true"))
    fact = as_json(cli("get", fact_id, "--json"))

    assert result.stdout.strip() == f"deprecated {fact_id}"
    assert fact["status"] == "deprecated"
    assert fact["deprecation_reason"] == "no longer true"


def test_deprecate_an_unknown_id_exits_3(cli: Cli) -> None:
    stored_id(cli, "a fact that exists")

    result = cli("deprecate", "01JNZ3Q8V4K2M7T9X1B5C6D8EF", "--reason", "gone")

    assert result.exit_code == 3
    assert result.stderr.startswith("error: no fact '01JNZ3Q8V4K2M7T9X1B5C6D8EF'")


def test_deprecate_twice_is_a_conflict_exiting_4(cli: Cli) -> None:
    fact_id = stored_id(cli, "temporary")
    ok(cli("deprecate", fact_id, "--reason", "first"))

    result = cli("deprecate", fact_id, "--reason", "second")

    assert result.exit_code == 4
    assert "already deprecated" in result.stderr
    assert "cortex history" in result.stderr


def test_deprecate_without_a_reason_is_a_usage_error(cli: Cli) -> None:
    fact_id = stored_id(cli, "temporary")

    assert cli("deprecate", fact_id).exit_code == 2
    assert cli("deprecate", fact_id, "--reason", "  ").exit_code == 2


def test_supersede_then_history_shows_both_versions(cli: Cli) -> None:
    old = stored_id(cli, "staging db is db-1", "--project", "infra", "--tag", "db")

    new = ok(cli("supersede", old, "staging db is db-2", "--reason", "migration")).stdout.strip()
    versions = as_json(cli("history", new, "--json"))
    table = ok(cli("history", old)).stdout

    assert [v["fact"]["id"] for v in versions] == [old, new]
    assert [v["fact"]["status"] for v in versions] == ["superseded", "active"]
    assert versions[1]["fact"]["supersedes"] == old
    assert versions[1]["fact"]["project"] == "infra"
    assert versions[1]["fact"]["tags"] == ["db"]
    assert [tx["op"] for v in versions for tx in v["transactions"]] == ["store", "supersede"]
    assert old in table
    assert new in table
    assert "staging db is db-1" in table
    assert "staging db is db-2" in table


def test_supersede_replaces_only_the_fields_given(cli: Cli) -> None:
    old = stored_id(cli, "v1", "--project", "infra", "--tag", "a", "--source", "agent-1")

    fact = as_json(cli("supersede", old, "v2", "--tag", "b", "--json"))

    assert fact["tags"] == ["b"]
    assert fact["project"] == "infra"
    assert fact["source"] == "agent-1"


def test_supersede_an_unknown_id_exits_3(cli: Cli) -> None:
    assert cli("supersede", "01JNZ3Q8V4K2M7T9X1B5C6D8EF", "text").exit_code == 3


def test_history_of_an_unknown_id_exits_3(cli: Cli) -> None:
    assert cli("history", "01JNZ3Q8V4K2M7T9X1B5C6D8EF").exit_code == 3


def test_get_of_an_unknown_id_exits_3_with_a_hint(cli: Cli) -> None:
    result = cli("get", "01JNZ3Q8V4K2M7T9X1B5C6D8EF")

    assert result.exit_code == 3
    assert "cortex list --all" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["list", "--as-of", "yesterday"],
        ["get", "01JNZ3Q8V4K2M7T9X1B5C6D8EF", "--as-of", "soon"],
        ["store", "x", "--valid-from", "2026-13-45"],
        ["store", "x", "--valid-from", "2026-03-03", "--valid-until", "2026-03-01"],
    ],
)
def test_a_bad_timestamp_exits_2_naming_the_value(cli: Cli, args: list[str]) -> None:
    result = cli(*args)

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ")
    assert "--help" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["store", "   "], "content"),
        (["store", "x", "--confidence", "1.5"], "confidence"),
        (["store", "x", "--project", "has space"], "project"),
        (["store", "x", "--tag", "a,b"], "tag"),
        (["store", "x", "--meta", "{not json"], "--meta"),
        (["store", "x", "--meta", "[1, 2]"], "--meta"),
        (["store", "x", "--tenant", "../etc"], "tenant"),
        (["store"], "TEXT or a JSONL file"),
        (["list", "--limit", "0"], "limit"),
    ],
)
def test_invalid_input_exits_2_and_stores_nothing(cli: Cli, args: list[str], message: str) -> None:
    result = cli(*args)

    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert as_json(cli("stats", "--json"))["facts"] == 0


def test_typer_usage_errors_exit_2(cli: Cli) -> None:
    assert cli("store", "x", "--confidence", "high").exit_code == 2
    assert cli("list", "--no-such-option").exit_code == 2
    assert cli("no-such-command").exit_code == 2


def test_tenants_are_separate(cli: Cli) -> None:
    acme = stored_id(cli, "acme's fact", "--tenant", "acme")

    assert as_json(cli("list", "--json"))["items"] == []
    assert [i["id"] for i in as_json(cli("list", "--tenant", "acme", "--json"))["items"]] == [acme]
    assert cli("get", acme).exit_code == 3


def test_tenant_defaults_to_the_cortex_tenant_environment_variable(home: Path) -> None:
    env_runner = CliRunner(env={"CORTEX_HOME": str(home), "CORTEX_TENANT": "acme"})
    ok(env_runner.invoke(app, ["store", "from the environment"]))

    result = as_json(env_runner.invoke(app, ["stats", "--tenant", "acme", "--json"]))

    assert result["facts"] == 1


def test_a_conflict_that_is_not_about_a_fact_gets_no_fact_history_hint(cli: Cli) -> None:
    stored_id(cli, "a plaintext fact")

    result = cli("init", "--encrypt")

    assert result.exit_code == 4
    assert "already holds data in the clear" in result.stderr
    assert "cortex history" not in result.stderr
