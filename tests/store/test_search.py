"""Search: by meaning, by words and fused; filters inside candidate generation; time travel."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

import cortex
from cortex import CortexSync, Settings
from cortex.ledger.merkle import verify_inclusion
from cortex.search.embedder import MiniLMEmbedder

FACTS = [
    ("The staging Redis cache listens on port 6380 with maxmemory 2gb.", "infra", ["redis"]),
    ("Production Postgres runs version 16 on db-prod-2.", "infra", ["postgres"]),
    ("Priya owns the payments gateway; escalate chargeback bugs to her.", "billing", ["people"]),
    ("retry_backoff_ms defaults to 250 in the HTTP client.", "web", ["config"]),
    ("We chose Kafka over RabbitMQ for the event bus because of replay.", "infra", ["decision"]),
    ("The mobile app crashes on Android 12 when the camera permission is denied.", "mobile", []),
    ("Die Rechnungen werden jeden Monatsersten um 6 Uhr verschickt.", "billing", ["de"]),
]


@pytest.fixture
def stocked(searchable: CortexSync) -> CortexSync:
    for content, project, tags in FACTS:
        searchable.store(content, project=project, tags=tags, source="agent-1", confidence=0.8)
    return searchable


def _top(memory: CortexSync, query: str, **kw: object) -> str:
    hits = memory.search(query, **kw)  # type: ignore[arg-type]
    assert hits, f"no hits for {query!r}"
    return hits[0].fact.content


def test_a_paraphrase_finds_the_fact_by_meaning(stocked: CortexSync) -> None:
    query = "which port does the pre-production cache listen on?"
    assert "6380" in _top(stocked, query, mode="vector")
    assert "6380" in _top(stocked, query)


def test_identifier_parts_are_found_by_words(stocked: CortexSync) -> None:
    assert "retry_backoff_ms" in _top(stocked, "retry backoff", mode="text")
    assert "retry_backoff_ms" in _top(stocked, "retry_backoff_ms", mode="text")


def test_each_hit_carries_score_ranks_and_a_provable_seq(stocked: CortexSync) -> None:
    hits = stocked.search("who handles chargebacks?", k=3)
    assert len(hits) == 3
    assert hits[0].score >= hits[1].score >= hits[2].score
    assert set(hits[0].ranks) <= {"vector", "text"}
    assert hits[0].ranks
    proof = stocked.inclusion_proof(hits[0].seq)
    assert verify_inclusion(proof.leaf_hash, proof.seq, proof.tree_size, proof.path, proof.root)
    assert proof.seq == hits[0].fact.seq


def test_filters_return_k_hits_whenever_they_exist(searchable: CortexSync) -> None:
    searchable.store_many(
        [{"content": f"Redis cache port note number {i}", "project": "noise"} for i in range(300)]
    )
    searchable.store_many(
        [
            {"content": f"Deploy checklist item {i}", "project": "target", "tags": ["ops"]}
            for i in range(5)
        ]
    )
    for mode in ("hybrid", "vector", "text"):
        query = "redis cache port" if mode != "text" else "item"
        hits = searchable.search(query, k=5, project="target", mode=mode)  # type: ignore[arg-type]
        assert len(hits) == 5, mode
        assert all(h.fact.project == "target" for h in hits)
    assert len(searchable.search("redis", k=5, tags=["ops"])) == 5


def test_text_search_finds_a_few_matches_behind_many_of_another_project_or_tenant(
    memory: CortexSync,
) -> None:
    # The full-text index ranks its best 400 matches first: all of them are noise here.
    memory.store_many(
        [{"content": f"redis cache warmed up, run {i}", "project": "noise"} for i in range(900)]
    )
    target = memory.store_many(
        [{"content": f"redis failover drill {i} took long", "project": "t"} for i in range(3)]
    )
    other = memory.store_many([{"content": f"redis upgrade {i}"} for i in range(2)], tenant="small")
    hits = memory.search("redis", k=10, mode="text", project="t")
    assert {h.fact.id for h in hits} == {f.id for f in target}
    hits = memory.search("redis", k=10, mode="text", tenant="small")
    assert {h.fact.id for h in hits} == {f.id for f in other}
    assert len(memory.search("redis", k=10, mode="text")) == 10


def test_min_confidence_source_and_type_filter(stocked: CortexSync) -> None:
    stocked.store("Redis in staging was upgraded to 7.2", fact_type="event", confidence=0.3)
    assert all(h.fact.confidence >= 0.5 for h in stocked.search("redis", min_confidence=0.5))
    assert [h.fact.fact_type for h in stocked.search("redis", fact_type="event")] == ["event"]
    assert stocked.search("redis", source="nobody") == []


def test_deprecated_facts_are_hidden_unless_asked_and_visible_as_of_before(
    stocked: CortexSync,
) -> None:
    old = stocked.search("staging redis port", k=1)[0].fact
    time.sleep(0.01)
    before = datetime.now(UTC)
    time.sleep(0.01)
    new = stocked.supersede(old.id, "The staging Redis cache moved to port 6390.")
    ids_now = [h.fact.id for h in stocked.search("staging redis port")]
    assert new.id in ids_now
    assert old.id not in ids_now
    then = stocked.search("staging redis port", as_of=before)
    assert old.id in [h.fact.id for h in then]
    assert new.id not in [h.fact.id for h in then]
    assert next(h.fact for h in then if h.fact.id == old.id).status == "active"
    everything = stocked.search("staging redis port", include_inactive=True)
    assert {old.id, new.id} <= {h.fact.id for h in everything}


def test_an_empty_store_returns_no_hits(searchable: CortexSync) -> None:
    assert searchable.search("anything at all") == []


def test_a_query_of_only_stop_words_has_no_text_hits_but_still_vector_hits(
    stocked: CortexSync,
) -> None:
    assert stocked.search("the of and to", mode="text") == []
    assert len(stocked.search("the of and to", k=3)) == 3
    assert stocked.search("   ") == []


def test_very_long_and_odd_queries_do_not_fail(stocked: CortexSync) -> None:
    long_query = "redis port " * 5000
    assert stocked.search(long_query, k=2)
    for odd in ['"unbalanced', "NEAR(a b)", "a AND OR NOT", "col:value", "*", "(((", "'; DROP"]:
        stocked.search(odd, mode="text")
    with pytest.raises(cortex.ValidationError):
        stocked.search("x" * 100_001)


def test_non_english_text_is_found(stocked: CortexSync) -> None:
    assert "Rechnungen" in _top(stocked, "Wann werden die Rechnungen verschickt?")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"k": 0}, "k must"), ({"mode": "fuzzy"}, "mode"), ({"min_confidence": 2}, "min_confidence")],
)
def test_bad_search_arguments_are_validation_errors(
    stocked: CortexSync, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(cortex.ValidationError, match=message):
        stocked.search("redis", **kwargs)  # type: ignore[arg-type]


def test_a_text_only_engine_searches_words_and_refuses_vector_mode(memory: CortexSync) -> None:
    memory.store("retry_backoff_ms defaults to 250")
    assert [h.ranks for h in memory.search("retry backoff")] == [{"text": 1}]
    with pytest.raises(cortex.ValidationError, match="embedder"):
        memory.search("retry", mode="vector")


def test_facts_written_by_another_process_are_found(
    settings: Settings, embedder: MiniLMEmbedder
) -> None:
    with cortex.connect(settings, embedder=embedder) as first:
        first.store("The office plants are watered on Fridays.")
        assert len(first.search("plants")) == 1
        with cortex.connect(settings, embedder=embedder) as second:
            second.store("The office coffee machine is descaled on Mondays.")
        assert {h.fact.content for h in first.search("office", k=5)} == {
            "The office plants are watered on Fridays.",
            "The office coffee machine is descaled on Mondays.",
        }


async def test_search_during_ingest_sees_every_acknowledged_fact(
    settings: Settings, embedder: MiniLMEmbedder
) -> None:
    async with await cortex.open(settings, embedder=embedder) as engine:
        stored: list[str] = []

        async def ingest() -> None:
            for batch in range(6):
                facts = await engine.store_many(
                    [{"content": f"ingest batch {batch} fact {i} about llamas"} for i in range(20)]
                )
                stored.extend(f.id for f in facts)

        async def query() -> int:
            rounds = 0
            while len(stored) < 120:
                seen = len(stored)
                hits = await engine.search("llamas", k=1000, mode="text")
                assert len(hits) >= seen
                rounds += 1
                await asyncio.sleep(0)
            return rounds

        _, rounds = await asyncio.gather(ingest(), query())
        assert rounds >= 1
        assert len(await engine.search("llamas", k=1000)) == 120


_NO_NETWORK = """
import socket
def refuse(*a, **k):
    raise SystemExit('network call attempted: %r' % (a,))
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
"""


@pytest.mark.parametrize("name", ["minilm", "minilm-torch"])
def test_the_embedder_never_touches_the_network(tmp_path: Path, name: str) -> None:
    """Every process (the ONNX export runs in a child) starts with its sockets disabled, through
    a sitecustomize module; HOME is empty, so the ONNX graph is exported anew."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(_NO_NETWORK)
    code = (
        "from cortex.search.embedder import make_embedder\n"
        f"v = make_embedder({name!r}).embed(['offline please'])\n"
        "assert v.shape == (1, 384)\n"
        "print('ok')\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(tmp_path / "site")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
    exported = list((tmp_path / ".cache" / "cortex" / "models").glob("*.onnx"))
    assert len(exported) == (1 if name == "minilm" else 0)
