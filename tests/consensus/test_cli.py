"""`cortex vote`, `cortex consensus`, `cortex reputation` and `cortex search --consensus`."""

from __future__ import annotations

import pytest

from tests.cli.invoke import Cli, as_json, ok, stored_id


def test_vote_prints_the_vote_and_the_consensus_after_it(cli: Cli) -> None:
    fact = stored_id(cli, "the staging database is db-2", "--source", "alice")
    first = ok(cli("vote", fact, "up", "--agent", "bob", "--reason", "checked"))
    assert first.stdout.strip() == f"bob voted up on {fact} (seq 1); consensus +0.250 (unverified)"
    ok(cli("vote", fact, "up", "--agent", "carol"))
    third = as_json(cli("vote", fact, "up", "--agent", "dave", "--json"))
    assert third["vote"] == {
        "tenant": "default",
        "fact_id": fact,
        "agent": "dave",
        "value": 1,
        "reason": None,
        "seq": 3,
        "ts": third["vote"]["ts"],
    }
    assert third["consensus"]["status"] == "verified"
    down = ok(cli("vote", fact, "down", "--agent", "erin"))
    assert "erin voted down" in down.stdout


def test_consensus_shows_a_table_of_standing_votes_and_json(cli: Cli) -> None:
    fact = stored_id(cli, "the cache listens on 6379", "--source", "alice")
    ok(cli("vote", fact, "up", "--agent", "bob", "--reason", "seen in [prod] config"))
    ok(cli("vote", fact, "down", "--agent", "carol"))
    ok(cli("vote", fact, "up", "--agent", "carol"))
    ok(cli("vote", fact, "up", "--agent", "alice"))
    table = ok(cli("consensus", fact)).stdout
    for expected in ("status", "unverified", "AGENT", "bob", "carol", "[prod]", "author (not"):
        assert expected in table
    assert "3 standing, 4 cast" in table
    data = as_json(cli("consensus", fact, "--json"))
    assert [(v["agent"], v["value"], v["counted"]) for v in data["votes"]] == [
        ("bob", 1, True),
        ("carol", 1, True),
        ("alice", 1, False),
    ]
    assert data["votes_cast"] == 4


def test_reputation_shows_the_record_and_the_formula(cli: Cli) -> None:
    fact = stored_id(cli, "the cron runs at 02:00", "--source", "alice")
    for agent in ("bob", "carol", "dave"):
        ok(cli("vote", fact, "up", "--agent", agent))
    shown = ok(cli("reputation", "alice")).stdout
    assert "1 verified, 0 refuted" in shown
    assert "formula" in shown
    data = as_json(cli("reputation", "bob", "--json"))
    assert (data["votes_agreed"], data["votes_standing"], data["established"]) == (1, 1, False)
    assert data["score"] == pytest.approx(2 / 3)
    assert as_json(cli("reputation", "stranger", "--json"))["score"] == 0.5


def test_search_filters_and_boosts_by_consensus(cli: Cli) -> None:
    good = stored_id(cli, "staging database runs on db-2")
    bad = stored_id(cli, "staging database staging database runs on db-9")
    for agent in ("bob", "carol", "dave"):
        ok(cli("vote", good, "up", "--agent", agent))
        ok(cli("vote", bad, "down", "--agent", agent))
    verified = as_json(
        cli("search", "staging database", "--mode", "text", "--consensus", "verified", "--json")
    )
    assert [hit["fact"]["id"] for hit in verified] == [good]
    boosted = as_json(
        cli("search", "staging database", "--mode", "text", "--consensus-boost", "1", "--json")
    )
    assert [hit["fact"]["id"] for hit in boosted] == [good, bad]
    bad_filter = cli("search", "staging", "--consensus", "maybe")
    assert bad_filter.exit_code == 2
    assert "consensus must be" in bad_filter.output


def test_usage_errors_exit_2_and_a_deprecated_fact_exits_4(cli: Cli) -> None:
    fact = stored_id(cli, "a fact")
    sideways = cli("vote", fact, "sideways", "--agent", "bob")
    assert sideways.exit_code == 2
    assert "'up' or 'down'" in sideways.output
    missing_agent = cli("vote", fact, "up")
    assert missing_agent.exit_code == 2
    assert cli("vote", "01ZZZZZZZZZZZZZZZZZZZZZZZZ", "up", "--agent", "bob").exit_code == 3
    ok(cli("deprecate", fact, "--reason", "wrong"))
    refused = cli("vote", fact, "down", "--agent", "bob")
    assert refused.exit_code == 4
    assert "deprecated" in refused.output
    assert cli("consensus", "01ZZZZZZZZZZZZZZZZZZZZZZZZ").exit_code == 3
    assert cli("reputation", "no spaces allowed").exit_code == 2


@pytest.mark.parametrize("command", ["vote", "consensus", "reputation"])
def test_help_shows_the_docstring_and_an_example(cli: Cli, command: str) -> None:
    shown = ok(cli(command, "--help")).stdout
    assert "Example" in shown
    assert f"cortex {command}" in shown
    assert command in ok(cli("--help")).stdout
