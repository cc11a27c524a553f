"""`cortex migrate-store`: SQLite and PostgreSQL either way, byte for byte; what it refuses."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner

import cortex
from cortex import CortexSync, Settings
from cortex.api.keys import KeyStore, parse_key_id
from cortex.cli import app
from cortex.cli.migrate import _migrate
from cortex.search.embedder import MiniLMEmbedder
from tests.postgres.server import PgServer


def _sqlite_home(tmp_path: Path, embedder: MiniLMEmbedder) -> Settings:
    settings = Settings.load(tmp_path / "home", embedder="none", checkpoint_every=10)
    cortex.init_home(settings)
    with cortex.connect(settings, embedder=embedder) as memory:
        facts = memory.store_many(
            [
                {"content": f"Service {i} is owned by team {i % 4}", "tags": ["svc"]}
                for i in range(25)
            ]
        )
        memory.deprecate(facts[3].id, "retired")
        memory.supersede(facts[4].id, "Service 4 is owned by the platform team")
        memory.store("The staging Redis cache listens on port 6380", tenant="infra")
        memory.checkpoint(tenant="infra")
    return settings


def test_migrate_store_copies_every_tenant_with_equal_roots_and_search(
    tmp_path: Path, pg_url: str, embedder: MiniLMEmbedder
) -> None:
    source = _sqlite_home(tmp_path, embedder)
    result = CliRunner().invoke(
        app, ["migrate-store", "--from", str(source.home), "--to", pg_url, "--json"]
    )
    assert result.exit_code == 0, result.output
    copied = {row["tenant"]: row for row in json.loads(result.stdout)}
    assert set(copied) == {"default", "infra"}
    assert all(row["ok"] and row["source_root"] == row["target_root"] for row in copied.values())
    assert copied["default"]["entries"] == 27
    assert copied["default"]["vectors"] == 26
    target = source.with_overrides(database_url=pg_url)
    with cortex.connect(source) as lite, cortex.connect(target, embedder=embedder) as post:
        assert post.verify().ok
        for tenant in ("default", "infra"):
            assert lite.checkpoints(tenant=tenant) == post.checkpoints(tenant=tenant)
            size = lite.stats(tenant=tenant).transactions
            for seq in range(size):
                assert lite.inclusion_proof(seq, tenant=tenant) == post.inclusion_proof(
                    seq, tenant=tenant
                )
        assert lite.list(include_inactive=True, limit=100) == post.list(
            include_inactive=True, limit=100
        )
        hit = post.search("which port does the pre-production cache use?", tenant="infra")[0]
        assert "6380" in hit.fact.content
        assert "platform" in post.search("who owns service 4?", k=1, mode="vector")[0].fact.content
        assert post.search("retired", mode="text", include_inactive=True) == []
        assert post.search("platform", mode="text")[0].fact.content.startswith("Service 4")
    again = CliRunner().invoke(app, ["migrate-store", "--from", str(source.home), "--to", pg_url])
    assert again.exit_code != 0
    assert "already has tenant" in again.output


def _populate(memory: CortexSync) -> None:
    facts = memory.store_many(
        [{"content": f"Queue {i} drains into bucket {i % 3}", "tags": ["q"]} for i in range(30)]
    )
    memory.deprecate(facts[1].id, "drained")
    memory.supersede(facts[2].id, "Queue 2 drains into the archive bucket")
    memory.store("The billing cron runs at 02:00 UTC", tenant="ops")
    memory.checkpoint(tenant="ops")


def test_migrate_store_copies_postgresql_to_another_postgresql_database(
    tmp_path: Path, pg_url: str, pg_server: PgServer
) -> None:
    source = Settings.load(
        tmp_path / "home", embedder="none", checkpoint_every=8, database_url=pg_url
    )
    cortex.init_home(source)
    with cortex.connect(source) as memory:
        _populate(memory)
    name = pg_server.create_database()
    try:
        target_url = pg_server.url(name)
        result = CliRunner().invoke(
            app,
            [
                "migrate-store",
                "--home",
                str(source.home),
                "--from",
                pg_url,
                "--to",
                target_url,
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        copied = {row["tenant"]: row for row in json.loads(result.stdout)}
        assert set(copied) == {"default", "ops"}
        assert all(row["source_root"] == row["target_root"] for row in copied.values())
        target = source.with_overrides(database_url=target_url)
        with cortex.connect(source) as old, cortex.connect(target) as new:
            assert new.verify().ok
            for tenant in ("default", "ops"):
                assert old.checkpoints(tenant=tenant) == new.checkpoints(tenant=tenant)
                size = old.stats(tenant=tenant).transactions
                assert [old.inclusion_proof(s, tenant=tenant) for s in range(size)] == [
                    new.inclusion_proof(s, tenant=tenant) for s in range(size)
                ]
            assert old.list(include_inactive=True, limit=100) == new.list(
                include_inactive=True, limit=100
            )
            assert new.search("archive bucket", mode="text")[0].fact.content.startswith("Queue 2")
            assert new.list(tags=["q"], limit=100).items == old.list(tags=["q"], limit=100).items
            appended = new.store("a fact written after the move")
            assert appended.seq == size_of(old)
            assert new.verify().ok
    finally:
        pg_server.drop_database(name)


def size_of(memory: CortexSync) -> int:
    """The number of entries in the default tenant's ledger."""
    return memory.stats().transactions


def test_migrate_store_reports_progress_up_to_every_entry(tmp_path: Path, pg_url: str) -> None:
    source = Settings.load(tmp_path / "home", embedder="none")
    cortex.init_home(source)
    with cortex.connect(source) as memory:
        _populate(memory)
    steps: list[tuple[str, int, int]] = []
    target = Settings.load(source.home, embedder="none", database_url=pg_url)
    source = source.with_overrides(database_url=None)
    copied = asyncio.run(_migrate(source, target, lambda *step: steps.append(step)))
    assert steps[0] == ("", 0, 33)  # 30 stores, a deprecation, a supersession; 1 store in ops
    assert steps[-1][1:] == (33, 33)
    assert [step[1] for step in steps] == sorted(step[1] for step in steps)
    assert sum(c.entries for c in copied) == 33


def test_an_encrypted_source_is_refused_before_a_new_directory_is_made(tmp_path: Path) -> None:
    source = Settings.load(tmp_path / "home", embedder="none")
    cortex.init_home(source, encrypt=True)
    with cortex.connect(source) as memory:
        memory.store("a sealed fact")
    result = CliRunner().invoke(
        app, ["migrate-store", "--from", str(source.home), "--to", str(tmp_path / "other")]
    )
    assert result.exit_code == 4
    assert "encrypted at rest" in result.output
    assert not (tmp_path / "other").exists()


def test_migrate_store_refuses_an_encrypted_source_and_copies_nothing(
    tmp_path: Path, pg_url: str
) -> None:
    source = Settings.load(tmp_path / "home", embedder="none")
    cortex.init_home(source, encrypt=True)
    with cortex.connect(source) as memory:
        memory.store("a sealed fact")
    result = CliRunner().invoke(app, ["migrate-store", "--from", str(source.home), "--to", pg_url])
    assert result.exit_code == 4
    assert "encrypted at rest" in result.output
    assert "nothing was copied" in result.output
    with cortex.connect(source.with_overrides(database_url=pg_url)) as target:
        assert target.tenants() == []


def test_migrate_store_refuses_an_encrypted_target(tmp_path: Path, pg_url: str) -> None:
    sealed = Settings.load(tmp_path / "sealed", embedder="none", database_url=pg_url)
    cortex.init_home(sealed, encrypt=True)  # records a master key in the target database
    source = Settings.load(tmp_path / "home", embedder="none")
    cortex.init_home(source)
    with cortex.connect(source) as memory:
        memory.store("a plain fact")
    result = CliRunner().invoke(app, ["migrate-store", "--from", str(source.home), "--to", pg_url])
    assert result.exit_code == 4
    assert "target store" in result.output
    assert "encrypted at rest" in result.output
    with cortex.connect(sealed) as target:
        assert target.tenants() == []


def _assert_same_store(old: CortexSync, new: CortexSync, tenants: tuple[str, ...]) -> None:
    assert new.verify().ok
    for tenant in tenants:
        assert old.checkpoints(tenant=tenant) == new.checkpoints(tenant=tenant)
        size = old.stats(tenant=tenant).transactions
        assert [old.inclusion_proof(s, tenant=tenant) for s in range(size)] == [
            new.inclusion_proof(s, tenant=tenant) for s in range(size)
        ]
        assert old.consistency_proof(1, tenant=tenant) == new.consistency_proof(1, tenant=tenant)
    assert old.list(include_inactive=True, limit=100) == new.list(include_inactive=True, limit=100)
    assert new.list(tags=["q"], limit=100).items == old.list(tags=["q"], limit=100).items


def test_migrate_store_restores_postgresql_into_a_new_data_directory(
    tmp_path: Path, pg_url: str, pg_server: PgServer, embedder: MiniLMEmbedder
) -> None:
    """PostgreSQL -> SQLite: a working home of its own (proofs, search, appends, API keys)."""
    name = pg_server.create_database()
    try:
        url = pg_server.url(name)
        source = Settings.load(tmp_path / "home", embedder="none", checkpoint_every=8)
        source = source.with_overrides(database_url=url)
        cortex.init_home(source)
        with cortex.connect(source, embedder=embedder) as memory:
            _populate(memory)
        with KeyStore.open(source) as keys:
            api_key = keys.create("default", "writer").key
        target_dir = tmp_path / "restored"
        result = CliRunner().invoke(
            app,
            [
                "migrate-store", "--home", str(source.home), "--from", url,
                "--to", str(target_dir), "--json",
            ],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        copied = {row["tenant"]: row for row in json.loads(result.stdout)}
        assert set(copied) == {"default", "ops"}
        assert all(row["ok"] for row in copied.values())
        assert copied["default"]["vectors"] == 31  # 30 stores and the supersession's new fact
        target = Settings.load(target_dir, embedder="none")
        assert target.database_url is None
        assert (target.signing_key_path.stat().st_mode & 0o777) == 0o600
        assert target.public_key_path.read_bytes() == source.public_key_path.read_bytes()
        with cortex.connect(source) as old, cortex.connect(target, embedder=embedder) as new:
            _assert_same_store(old, new, ("default", "ops"))
            assert new.search("archive bucket", mode="text")[0].fact.content.startswith("Queue 2")
            hit = new.search("where does the second queue empty into?", k=1, mode="vector")[0]
            assert hit.fact.content == "Queue 2 drains into the archive bucket"
            size = old.stats().transactions
            appended = new.store("a fact written after the move", tags=["q"])
            assert appended.seq == size
            assert new.checkpoint().tree_size == size + 1
            assert new.verify().ok
        with KeyStore.open(target) as keys:
            # The copied API key store under the copied server secret: the key still checks.
            found = keys.lookup(parse_key_id(api_key) or "")
            assert found is not None
            assert found[0].tenant == "default"
            assert found[1] == keys.digest(api_key)
    finally:
        pg_server.drop_database(name)


def test_migrate_store_copies_a_data_directory_into_a_new_one(tmp_path: Path) -> None:
    source = Settings.load(tmp_path / "home", embedder="none", checkpoint_every=8)
    cortex.init_home(source)
    with cortex.connect(source) as memory:
        _populate(memory)
    target_dir = tmp_path / "copy"
    result = CliRunner().invoke(
        app, ["migrate-store", "--from", str(source.home), "--to", str(target_dir)]
    )
    assert result.exit_code == 0, result.output
    target = Settings.load(target_dir, embedder="none")
    with cortex.connect(source) as old, cortex.connect(target) as new:
        _assert_same_store(old, new, ("default", "ops"))
        assert new.store("after the copy").seq == old.stats().transactions
        assert new.verify().ok


def test_migrate_store_refuses_a_directory_that_holds_a_database(tmp_path: Path) -> None:
    source = Settings.load(tmp_path / "home", embedder="none")
    cortex.init_home(source)
    with cortex.connect(source) as memory:
        memory.store("only in the source")
    taken = Settings.load(tmp_path / "taken", embedder="none")
    cortex.init_home(taken)
    before = taken.database_path.read_bytes()
    for target in (taken.home, source.home):
        result = CliRunner().invoke(
            app, ["migrate-store", "--from", str(source.home), "--to", str(target)]
        )
        assert result.exit_code == 2, result.output
    assert (
        "already holds a database"
        in CliRunner()
        .invoke(app, ["migrate-store", "--from", str(source.home), "--to", str(taken.home)])
        .output
    )
    assert taken.database_path.read_bytes() == before
