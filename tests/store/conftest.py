"""The store conformance suite runs on both backends: `settings` is SQLite, then PostgreSQL.

Every test here that takes `settings` (directly or through `memory`, `engine`, `searchable`)
runs once per backend. The few tests that reach into SQLite itself (tampering with the file
through apsw, SQLite processes sharing one file) run on SQLite only; tests/postgres holds their
PostgreSQL counterparts.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest

import cortex
from cortex import Settings
from tests.postgres.server import shared_server

BACKENDS = ("sqlite", "postgres")
# Tests that open the SQLite file directly (apsw) or start SQLite-only child processes.
SQLITE_ONLY = frozenset(
    {
        "test_changed_fact_content_is_named_by_its_seq",
        "test_changed_transaction_field_is_named_by_its_seq",
        "test_deleted_transaction_is_reported_missing",
        "test_swapped_transactions_are_reported_as_reordered",
        "test_replaced_checkpoint_signature_is_reported",
        "test_rewritten_history_with_recomputed_hashes_is_caught_by_the_signed_root",
        "test_tampering_with_deprecation_state_is_reported",
        "test_every_bad_entry_is_reported_not_just_the_first",
        "test_parallel_verification_finds_exactly_what_a_single_scan_finds",
        "test_tampered_subtree_hash_is_reported",
        "test_a_full_reindex_rebuilds_a_damaged_text_index",
        "test_processes_writing_one_store_at_once_lose_nothing_and_verify",
    }
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that uses `settings` on every backend (SQLite only where it must)."""
    if "settings" in metafunc.fixturenames:
        only_sqlite = metafunc.function.__name__ in SQLITE_ONLY
        metafunc.parametrize("backend", BACKENDS[:1] if only_sqlite else BACKENDS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each test its own copy of its parameters: one backend's run may not alter another's."""
    here = Path(__file__).parent
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and item.path.is_relative_to(here):
            for name, value in callspec.params.items():
                callspec.params[name] = copy.deepcopy(value)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, backend: str) -> Iterator[str | None]:
    """None for SQLite; for PostgreSQL a fresh database on the session's server, then dropped."""
    if backend == "sqlite":
        yield None
        return
    server = shared_server(request.config)
    name = server.create_database()
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    """Settings for a freshly initialised, text-only store on the test's backend."""
    result = Settings.load(tmp_path / "home", checkpoint_every=1000, embedder="none")
    result = result.with_overrides(database_url=database_url)  # not CORTEX_DATABASE_URL
    cortex.init_home(result)
    return result
