"""Search by meaning through the API with the real embedding model, and the metrics it leaves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cortex.client import Client
from cortex.search.embedder import MiniLMEmbedder
from tests.api.conftest import RunningServer, make_settings, running_server


@pytest.fixture(scope="module")
def semantic(
    tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbedder
) -> Iterator[RunningServer]:
    settings = make_settings(tmp_path_factory.mktemp("semantic") / "home", embedder="minilm")
    with running_server(settings, embedder=embedder) as server:
        server.keys["admin"] = server.issue("acme", "admin").key
        yield server


def test_vector_and_hybrid_search_find_a_fact_by_meaning(semantic: RunningServer) -> None:
    with Client(semantic.base_url, semantic.keys["admin"]) as memory:
        memory.store_many(
            [
                {"content": "The staging database moved to the host db-2."},
                {"content": "Alice likes green tea in the afternoon."},
                {"content": "Deploys to production need two approvals."},
            ]
        )
        for mode in ("vector", "hybrid"):
            hits = memory.search("where is the pre-production DB server?", k=1, mode=mode)
            assert hits[0].fact.content.startswith("The staging database"), mode
            assert "vector" in hits[0].ranks


def test_metrics_report_requests_search_embedding_writes_and_the_queue(
    semantic: RunningServer,
) -> None:
    with semantic.http(semantic.keys["admin"]) as http:
        http.post("/v1/facts", json={"content": "metrics fact"})
        http.post("/v1/search", json={"query": "metrics", "mode": "hybrid"})
        text = http.get("/metrics").text
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples['cortex_search_duration_seconds_count{mode="hybrid"}'] >= 1
    assert samples["cortex_embedding_batch_duration_seconds_count"] >= 2
    assert samples['cortex_writes_total{op="store"}'] >= 1
    assert samples["cortex_write_queue_depth"] == 0
    assert samples["cortex_writer_running"] == 1
    assert samples["cortex_http_requests_in_flight"] == 1  # this scrape itself
    assert samples["cortex_http_open_connections"] >= 1
    route = 'cortex_http_request_duration_seconds_count{method="POST",route="/v1/facts"}'
    assert samples[route] >= 1


def test_a_text_only_server_refuses_vector_search_with_422(tmp_path: Path) -> None:
    with running_server(make_settings(tmp_path / "home")) as server:
        reader = server.http(server.issue("acme", "reader").key)
        response = reader.post("/v1/search", json={"query": "x", "mode": "vector"})
        assert response.status_code == 422
        assert "embedder" in response.json()["detail"]
