"""The SDK clients: the local handle's methods, model classes and errors, over a real server."""

from __future__ import annotations

import asyncio
import json
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import cortex
from cortex.client import AsyncClient, Client, ServiceUnreachable, error_from_problem
from cortex.errors import (
    ApprovalRequired,
    Conflict,
    CortexError,
    Forbidden,
    NotFound,
    Overloaded,
    RateLimited,
    ShieldBlocked,
    Unauthorized,
    ValidationError,
)
from cortex.ledger.merkle import verify_consistency, verify_inclusion
from cortex.model import Checkpoint, Fact, FactDraft, FactVersion, Page, SearchHit, VerifyReport
from tests.api.conftest import RunningServer, make_settings, running_server


def program(memory: Any) -> dict[str, Any]:
    """An agent's program, written against `cortex.connect(...)`; returns what it saw."""
    first = memory.store(
        "The staging database moved to db-2",
        project="infra",
        tags=["db", "staging"],
        source="agent-7",
        confidence=0.9,
        valid_from="2026-01-01T00:00:00Z",
        meta={"ticket": 7},
    )
    batch = memory.store_many(
        [
            {"content": "Deploys need two approvals", "project": "infra", "tags": ["policy"]},
            FactDraft(content="Alice owns billing", project="people"),
        ]
    )
    again = memory.get(first.id)
    newer = memory.supersede(first.id, "The staging database moved to db-3", reason="typo")
    gone = memory.deprecate(batch[1].id, "Alice moved teams")
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = memory.list(include_inactive=True, limit=2, cursor=cursor)
        assert isinstance(page, Page)
        pages.append([f.content for f in page.items])
        cursor = page.next_cursor
        if cursor is None:
            break
    infra = memory.list(project="infra", tags=["policy"])
    history = memory.history(newer.id)
    hits = memory.search("staging database", k=3, mode="text")
    proof = memory.inclusion_proof(newer.id)
    by_seq = memory.inclusion_proof(0, tree_size=2)
    checkpoint = memory.checkpoint()
    consistency = memory.consistency_proof(2)
    report = memory.verify()
    errors = []
    for action in (
        lambda: memory.get("01ZZZZZZZZZZZZZZZZZZZZZZZZ"),
        lambda: memory.deprecate(batch[1].id, "twice"),
        lambda: memory.store("x", tags=["bad,tag"]),
    ):
        try:
            action()
        except CortexError as exc:
            errors.append(type(exc).__name__)
    assert isinstance(first, Fact)
    assert again == first
    assert all(isinstance(v, FactVersion) for v in history)
    assert all(isinstance(h, SearchHit) for h in hits)
    assert isinstance(checkpoint, Checkpoint)
    assert isinstance(report, VerifyReport)
    assert verify_inclusion(proof.leaf_hash, proof.seq, proof.tree_size, proof.path, proof.root)
    assert verify_consistency(
        consistency.old_size,
        consistency.new_size,
        consistency.old_root,
        consistency.new_root,
        consistency.path,
    )
    return {
        "first": (first.content, first.project, first.tags, first.source, first.confidence),
        "first_meta": dict(first.meta),
        "first_valid_from": first.valid_from,
        "batch": [(f.content, f.project, f.tags, f.seq) for f in batch],
        "newer": (newer.content, newer.supersedes == first.id, newer.tags, newer.seq),
        "gone": (gone.status, gone.deprecation_reason),
        "pages": pages,
        "infra": [f.content for f in infra.items],
        "history": [(v.fact.content, [t.op for t in v.transactions]) for v in history],
        "hits": [(h.fact.content, h.ranks) for h in hits],
        "proof": (proof.seq, proof.tree_size, len(proof.path)),
        "by_seq": (by_seq.seq, by_seq.tree_size, len(by_seq.path)),
        "checkpoint": checkpoint.tree_size,
        "consistency": (consistency.old_size, consistency.new_size, len(consistency.path)),
        "report": (report.ok, report.entries, report.facts, report.checkpoints),
        "errors": errors,
    }


def test_one_program_runs_unchanged_against_the_library_and_the_service(tmp_path: Path) -> None:
    local_settings = make_settings(tmp_path / "local")
    with cortex.connect(local_settings) as memory:
        local = program(memory)
    with running_server(make_settings(tmp_path / "served")) as server:
        key = server.issue("default", "writer").key
        with Client(server.base_url, key) as memory:
            remote = program(memory)
    assert remote == local
    assert local["errors"] == ["NotFound", "Conflict", "ValidationError"]


def test_the_async_client_mirrors_the_async_engine(tmp_path: Path) -> None:
    async def run(memory: Any) -> list[Any]:
        fact = await memory.store("Alpha runs on port 8080", tags=["alpha"])
        batch = await memory.store_many([{"content": "Beta runs on port 9090"}])
        hits = await memory.search("port 9090", mode="text")
        page = await memory.list()
        newer = await memory.supersede(fact.id, "Alpha runs on port 8081")
        history = await memory.history(newer.id)
        checkpoint = await memory.checkpoint()
        report = await memory.verify()
        proof = await memory.inclusion_proof(batch[0].id)
        consistency = await memory.consistency_proof(1)
        with pytest.raises(NotFound):
            await memory.get("01ZZZZZZZZZZZZZZZZZZZZZZZZ")
        return [
            (await memory.get(fact.id)).status,
            [h.fact.content for h in hits],
            [f.content for f in page.items],
            len(history),
            checkpoint.tree_size,
            report.ok,
            proof.seq,
            consistency.new_size,
        ]

    async def local(settings: cortex.Settings) -> list[Any]:
        async with await cortex.open(settings) as engine:
            return await run(engine)

    async def remote(url: str, key: str) -> list[Any]:
        async with AsyncClient(url, key) as client:
            return await run(client)

    expected = asyncio.run(local(make_settings(tmp_path / "local")))
    with running_server(make_settings(tmp_path / "served")) as server:
        key = server.issue("default", "admin").key
        assert asyncio.run(remote(server.base_url, key)) == expected


def test_errors_come_back_as_the_same_classes(service: RunningServer) -> None:
    with Client(service.base_url, service.keys["acme-reader"]) as reader:
        with pytest.raises(Forbidden, match="writer"):
            reader.store("readers cannot write")
        with pytest.raises(NotFound):
            reader.history("01ZZZZZZZZZZZZZZZZZZZZZZZZ")
        with pytest.raises(ValidationError):
            reader.search("x", k=0)
    stranger = Client(service.base_url, "ctx_0123456789abcdef_" + "D" * 43)
    with stranger, pytest.raises(Unauthorized):
        stranger.list()
    with Client(service.base_url, service.keys["acme-writer"]) as writer:
        fact = writer.store("once")
        writer.deprecate(fact.id, "done")
        with pytest.raises(Conflict):
            writer.deprecate(fact.id, "done again")


def test_a_write_the_shield_blocks_is_422_and_raises_shield_blocked(
    service: RunningServer,
) -> None:
    secret = "aws key AKIAIOSFODNN7EXAMPLF for the backup job"
    with service.http(service.keys["acme-writer"]) as http:
        response = http.post("/v1/facts", json={"content": secret})
    assert response.status_code == 422
    body = response.json()
    assert body["type"] == "urn:cortex:problem:shield-blocked"
    assert body["shield"]["field"] == "content"
    assert "AKIAIOSFODNN7EXAMPLF" not in response.text
    writer = Client(service.base_url, service.keys["acme-writer"])
    with writer, pytest.raises(ShieldBlocked) as caught:
        writer.store(secret)
    assert caught.value.category == "secret"


def test_problem_types_map_to_their_classes_with_retry_after() -> None:
    limited = error_from_problem(429, {"type": "urn:cortex:problem:rate-limited"}, 3.0)
    assert isinstance(limited, RateLimited)
    assert limited.retry_after == 3.0
    full = error_from_problem(503, {"type": "urn:cortex:problem:overloaded", "detail": "full"})
    assert isinstance(full, Overloaded)
    assert str(full) == "full"
    assert type(error_from_problem(418, "teapot")) is ValidationError
    assert type(error_from_problem(502, None)) is CortexError


def test_the_client_retries_503_after_retry_after_and_every_write_lands(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "home", write_queue_size=1, write_batch_max=1, write_timeout=0.01
    )
    with running_server(settings) as server:
        key = server.issue("acme", "writer").key
        items = [[{"content": f"retry {n} item {i}"} for i in range(50)] for n in range(48)]

        def store_all(retries: int) -> list[Any]:
            def store(batch: list[dict[str, Any]]) -> Any:
                with Client(server.base_url, key, retries=retries, timeout=30) as client:
                    try:
                        return client.store_many(batch)
                    except Overloaded as exc:
                        return exc

            with ThreadPoolExecutor(24) as pool:
                return list(pool.map(store, items))

        without = store_all(0)
        assert any(isinstance(r, Overloaded) for r in without)
        with_retries = store_all(30)
        assert all(isinstance(r, list) for r in with_retries)
        admin = server.issue("acme", "admin").key
        with Client(server.base_url, admin) as client:
            metrics = server.http(admin).get("/metrics").text
            assert 'cortex_errors_total{type="overloaded"}' in metrics
            stored = sum(len(r) for r in without if isinstance(r, list)) + 48 * 50
            assert client.verify().facts == stored


def test_export_downloads_a_bundle_that_verifies_offline(
    service: RunningServer, tmp_path: Path
) -> None:
    approver_key = service.issue("globex", "admin").key  # four eyes: another admin approves
    with (
        Client(service.base_url, service.keys["globex-admin"]) as admin,
        Client(service.base_url, approver_key) as approver,
    ):
        admin.store("globex exports this")
        with pytest.raises(ApprovalRequired) as asked:  # exports are gated: docs/gate.md
            admin.export(tmp_path / "globex.jsonl")
        assert not (tmp_path / "globex.jsonl").exists()
        token = approver.approve(asked.value.approval_id).token
        entries = admin.export(tmp_path / "globex.jsonl", approval=token)
    assert entries >= 1
    header = json.loads((tmp_path / "globex.jsonl").read_text().splitlines()[0])
    assert header["tenant"] == "globex"
    assert cortex.engine.verify_export_sync(tmp_path / "globex.jsonl").ok

    async def export_async() -> int:
        async with (
            AsyncClient(service.base_url, service.keys["globex-admin"]) as client,
            AsyncClient(service.base_url, approver_key) as approver,
        ):
            with pytest.raises(ApprovalRequired) as asked:
                await client.export(tmp_path / "async.jsonl")
            token = (await approver.approve(asked.value.approval_id)).token
            return await client.export(tmp_path / "async.jsonl", approval=token)

    assert asyncio.run(export_async()) == entries + 3  # the first export's gate entries
    writer = Client(service.base_url, service.keys["globex-writer"])
    with writer, pytest.raises(Forbidden):
        writer.export(tmp_path / "no.jsonl")
    assert not (tmp_path / "no.jsonl").exists()


def test_timeouts_are_required_and_an_unreachable_service_is_a_typed_error() -> None:
    with pytest.raises(ValidationError, match="timeout"):
        Client("http://127.0.0.1:1", "k", timeout=0)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = Client(f"http://127.0.0.1:{port}", "k", retries=1, timeout=2)
    with client, pytest.raises(ServiceUnreachable):
        client.list()


def test_only_a_plain_http_service_without_proxy_skips_the_tls_context() -> None:
    from cortex._client_core import http_options, uses_tls

    assert not uses_tls("http://127.0.0.1:8420", {})
    assert uses_tls("https://cortex.internal:8420", {})
    assert uses_tls("http://127.0.0.1:8420", {"HTTPS_PROXY": "https://proxy:3128"})
    assert uses_tls("http://127.0.0.1:8420", {"all_proxy": "socks5://proxy:1080"})
    assert not uses_tls("http://127.0.0.1:8420", {"NO_PROXY": "*"})
    # A client of an https service verifies certificates (httpx's default is kept).
    assert "verify" not in http_options("https://cortex.internal", "k", 5, 0)


def _self_signed_tls_server() -> tuple[socket.socket, Any]:
    """A loopback TLS listener whose certificate no CA signed; returns it and its SSL context."""
    import datetime as dt
    import ssl
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:
        certfile, keyfile = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        keyfile.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context.load_cert_chain(certfile, keyfile)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    return listener, context


def test_a_client_of_an_https_service_refuses_a_certificate_it_cannot_verify() -> None:
    listener, context = _self_signed_tls_server()
    port = listener.getsockname()[1]

    def serve_handshakes() -> None:
        listener.settimeout(10)
        for _ in range(2):  # one connection per attempt (retries=1)
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                return  # fewer attempts than expected: the assertions below tell
            with conn:
                try:
                    with context.wrap_socket(conn, server_side=True):
                        pass
                except OSError:
                    pass  # the client hung up on the certificate: what the test expects

    with listener, ThreadPoolExecutor(1) as pool:
        served = pool.submit(serve_handshakes)
        client = Client(f"https://127.0.0.1:{port}", "k", retries=1, timeout=5)
        with client, pytest.raises(ServiceUnreachable, match="CERTIFICATE_VERIFY_FAILED"):
            client.list()
        served.result(timeout=10)
