"""`cortex search` and `cortex reindex` (text-only engine here; the model is tested elsewhere)."""

from __future__ import annotations

import pytest

from tests.cli.invoke import Cli, as_json, ok, stored_id

pytestmark = pytest.mark.usefixtures("initialised")


def test_search_finds_a_fact_by_an_identifier_part_and_shows_its_seq(cli: Cli) -> None:
    fact_id = stored_id(cli, "retry_backoff_ms defaults to 250", "--project", "web")
    stored_id(cli, "The billing run starts at 6am", "--project", "billing")
    hits = as_json(cli("search", "retry backoff", "--json"))
    assert [h["fact"]["id"] for h in hits] == [fact_id]
    assert hits[0]["ranks"] == {"text": 1}
    table = ok(cli("search", "retry backoff")).stdout
    assert fact_id in table
    assert "t1" in table


def test_search_filters_and_reports_no_match(cli: Cli) -> None:
    stored_id(cli, "retry_backoff_ms defaults to 250", "--project", "web")
    assert as_json(cli("search", "retry", "--project", "billing", "--json")) == []
    assert "no facts match" in cli("search", "retry", "--project", "billing").stderr


def test_search_bad_mode_and_vector_mode_without_embedder_are_usage_errors(cli: Cli) -> None:
    assert cli("search", "x", "--mode", "fuzzy").exit_code == 2
    result = cli("search", "x", "--mode", "vector")
    assert result.exit_code == 2
    assert "embedder" in result.stderr


def test_reindex_full_rebuilds_the_text_index(cli: Cli) -> None:
    stored_id(cli, "retry_backoff_ms defaults to 250")
    result = ok(cli("reindex", "--full"))
    assert "reindexed 1 facts" in result.stdout
    assert len(as_json(cli("search", "backoff", "--json"))) == 1


def test_reindex_without_an_embedder_needs_full(cli: Cli) -> None:
    result = cli("reindex")
    assert result.exit_code == 2
    assert "full rebuild" in result.stderr
