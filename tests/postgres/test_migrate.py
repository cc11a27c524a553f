"""`cortex migrate-store`: SQLite to PostgreSQL, byte for byte, with the same roots and search."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import cortex
from cortex import Settings
from cortex.cli import app
from cortex.search.embedder import MiniLMEmbedder


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
