"""Clients of the CORTEX REST service with the methods of the local handle.

    from cortex.client import Client
    with Client("http://127.0.0.1:8420", api_key) as memory:      # instead of cortex.connect(...)
        fact = memory.store("The staging database moved to db-2", project="infra")
        proof = memory.inclusion_proof(fact.id)

`Client` (blocking) and `AsyncClient` have the methods of `cortex.CortexSync` / `cortex.Cortex`
(`store`, `store_many`, `get`, `list`, `deprecate`, `supersede`, `history`, `search`, `verify`,
`inclusion_proof`, `consistency_proof`, `checkpoint`, `export`) returning the same model classes
and raising the same `CortexError` classes, mapped back from the service's problem types. The
tenant (and project, for a project key) is the API key's: the methods take no `tenant`.
Requests refused with 429 or 503 are retried after `Retry-After` (else an exponential backoff),
`retries` times; every request has a timeout.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar

import httpx

from cortex.canonical import parse_ts
from cortex.errors import (
    Conflict,
    CortexError,
    Forbidden,
    IntegrityError,
    NotFound,
    Overloaded,
    RateLimited,
    ShieldBlocked,
    StoreClosed,
    StoreError,
    Unauthorized,
    ValidationError,
    WriterCrashed,
)
from cortex.model import (
    Checkpoint,
    ConsistencyProof,
    Fact,
    FactDraft,
    FactVersion,
    InclusionProof,
    Page,
    Problem,
    SearchHit,
    Transaction,
    VerifyReport,
)

__all__ = ["AsyncClient", "Client", "ServiceUnreachable", "error_from_problem"]

T = TypeVar("T")
PROBLEM_TYPE_PREFIX = "urn:cortex:problem:"
_RETRY_STATUSES = frozenset({429, 503})
_MAX_RETRY_WAIT = 30.0
_BACKOFF_BASE = 0.1
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
_CHUNK = 1 << 16


class ServiceUnreachable(StoreError):
    """The service could not be reached or did not answer within the timeout."""


# The service's problem types (cortex/api/problems.py) and the errors they stand for.
_PROBLEM_ERRORS: dict[str, type[CortexError]] = {
    "bad-request": ValidationError,
    "unauthorized": Unauthorized,
    "forbidden": Forbidden,
    "not-found": NotFound,
    "method-not-allowed": ValidationError,
    "conflict": Conflict,
    "payload-too-large": ValidationError,
    "validation-error": ValidationError,
    "shield-blocked": ValidationError,
    "rate-limited": RateLimited,
    "internal-error": CortexError,
    "integrity-error": IntegrityError,
    "overloaded": Overloaded,
    "store-closed": StoreClosed,
    "writer-crashed": WriterCrashed,
    "unavailable": StoreError,
}


def error_from_problem(status: int, body: Any, retry_after: float | None = None) -> CortexError:
    """The CortexError that a problem+json body (or any error answer) stands for."""
    problem = body if isinstance(body, dict) else {}
    kind = str(problem.get("type", "")).removeprefix(PROBLEM_TYPE_PREFIX)
    detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
    if problem.get("request_id"):
        detail = f"{detail} (request id {problem['request_id']})" if status >= 500 else detail
    shield = problem.get("shield")
    if kind == "shield-blocked" and isinstance(shield, dict):
        try:
            return ShieldBlocked(detail, **shield)
        except TypeError:
            return ValidationError(detail)
    cls = _PROBLEM_ERRORS.get(kind)
    if cls is None:
        cls = ValidationError if 400 <= status < 500 else CortexError
    if cls in (RateLimited, Overloaded):
        return cls(detail, retry_after=retry_after if retry_after is not None else 1.0)
    return cls(detail)


# ---------------------------------------------------------------- JSON -> model values


def _when(value: str | None) -> datetime | None:
    return None if value is None else parse_ts(value)


def fact_from_dict(data: Mapping[str, Any]) -> Fact:
    """A Fact from its `to_dict()` form."""
    return Fact(
        id=data["id"],
        tenant=data["tenant"],
        project=data["project"],
        content=data["content"],
        fact_type=data["fact_type"],
        tags=tuple(data["tags"]),
        source=data["source"],
        confidence=data["confidence"],
        valid_from=parse_ts(data["valid_from"]),
        valid_until=_when(data["valid_until"]),
        supersedes=data["supersedes"],
        created_at=parse_ts(data["created_at"]),
        meta=data["meta"],
        seq=data["seq"],
        deprecated_at=_when(data["deprecated_at"]),
        deprecation_reason=data["deprecation_reason"],
        superseded_by=data["superseded_by"],
    )


def _transaction(data: Mapping[str, Any]) -> Transaction:
    return Transaction(
        tenant=data["tenant"],
        seq=data["seq"],
        op=data["op"],
        subject=data["subject"],
        actor=data["actor"],
        ts=data["ts"],
        payload=data["payload"],
        payload_digest=bytes.fromhex(data["payload_digest"]),
        prev_hash=bytes.fromhex(data["prev_hash"]),
        hash=bytes.fromhex(data["hash"]),
    )


def _versions(data: Mapping[str, Any]) -> list[FactVersion]:
    return [
        FactVersion(
            fact_from_dict(item["fact"]), tuple(_transaction(t) for t in item["transactions"])
        )
        for item in data["items"]
    ]


def _page(data: Mapping[str, Any]) -> Page:
    return Page(tuple(fact_from_dict(f) for f in data["items"]), data["next_cursor"])


def _facts(data: Mapping[str, Any]) -> list[Fact]:
    return [fact_from_dict(f) for f in data["items"]]


def _hits(data: Mapping[str, Any]) -> list[SearchHit]:
    return [
        SearchHit(fact_from_dict(h["fact"]), float(h["score"]), dict(h["ranks"]))
        for h in data["hits"]
    ]


def _report(data: Mapping[str, Any]) -> VerifyReport:
    return VerifyReport(
        problems=tuple(
            Problem(p["tenant"], p["seq"], p["kind"], p["detail"]) for p in data["problems"]
        ),
        tenants=data["tenants"],
        entries=data["entries"],
        facts=data["facts"],
        checkpoints=data["checkpoints"],
        truncated=data["truncated"],
    )


def _inclusion(data: Mapping[str, Any]) -> InclusionProof:
    return InclusionProof(
        tenant=data["tenant"],
        seq=data["seq"],
        tree_size=data["tree_size"],
        entry=data["entry"].encode(),
        leaf_hash=bytes.fromhex(data["leaf_hash"]),
        path=tuple(bytes.fromhex(h) for h in data["path"]),
        root=bytes.fromhex(data["root"]),
    )


def _consistency(data: Mapping[str, Any]) -> ConsistencyProof:
    return ConsistencyProof(
        tenant=data["tenant"],
        old_size=data["old_size"],
        new_size=data["new_size"],
        old_root=bytes.fromhex(data["old_root"]),
        new_root=bytes.fromhex(data["new_root"]),
        path=tuple(bytes.fromhex(h) for h in data["path"]),
    )


def _checkpoint(data: Mapping[str, Any]) -> Checkpoint:
    return Checkpoint(
        tenant=data["tenant"],
        tree_size=data["tree_size"],
        root=bytes.fromhex(data["root"]),
        ts=data["ts"],
        signature=bytes.fromhex(data["signature"]),
        key_id=data["key_id"],
    )


# ---------------------------------------------------------------- requests (shared by both)


@dataclass(frozen=True, slots=True)
class _Call(Generic[T]):
    """One API call: what to send and how to read the answer."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: Mapping[str, Any] | None = None
    body: Any = None


def _iso(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


def _tags(tags: Iterable[str] | None) -> builtins.list[str] | None:
    if tags is None:
        return None
    return [tags] if isinstance(tags, str) else builtins.list(tags)


def _clean(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _fact_body(
    content: str,
    *,
    project: str | None,
    fact_type: str | None,
    tags: Iterable[str] | None,
    source: str | None,
    confidence: float | None,
    valid_from: datetime | str | None,
    valid_until: datetime | str | None,
    meta: Mapping[str, Any] | None,
) -> dict[str, Any]:
    return _clean(
        {
            "content": content,
            "project": project,
            "fact_type": fact_type,
            "tags": _tags(tags),
            "source": source,
            "confidence": confidence,
            "valid_from": _iso(valid_from),
            "valid_until": _iso(valid_until),
            "meta": None if meta is None else dict(meta),
        }
    )


def _draft_body(item: FactDraft | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(item, FactDraft):
        values = {f.name: getattr(item, f.name) for f in fields(item) if f.init}
        return _fact_body(**values)
    body = dict(item)
    for name in ("valid_from", "valid_until"):
        if isinstance(body.get(name), datetime):
            body[name] = _iso(body[name])
    if isinstance(body.get("tags"), tuple):
        body["tags"] = builtins.list(body["tags"])
    return body


def _list_params(
    project: str | None,
    fact_type: str | None,
    tags: Iterable[str],
    source: str | None,
    include_inactive: bool,
    as_of: datetime | str | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    return _clean(
        {
            "project": project,
            "fact_type": fact_type,
            "tag": _tags(tags) or None,
            "source": source,
            "include_inactive": "true" if include_inactive else None,
            "as_of": _iso(as_of),
            "limit": limit,
            "cursor": cursor,
        }
    )


def _inclusion_params(ref: int | str, tree_size: int | None) -> dict[str, Any]:
    if isinstance(ref, bool) or not isinstance(ref, int | str):
        raise ValidationError("ref must be a seq number or a fact id")
    key = "fact_id" if isinstance(ref, str) else "seq"
    return _clean({key: ref, "tree_size": tree_size})


def _retry_wait(response: httpx.Response, attempt: int) -> float:
    header = response.headers.get("retry-after")
    if header is not None and header.strip().isdigit():
        return min(float(header), _MAX_RETRY_WAIT)
    return _backoff(attempt)


def _backoff(attempt: int) -> float:
    return float(min(_MAX_RETRY_WAIT, _BACKOFF_BASE * 2**attempt) * (0.5 + random.random() / 2))


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = {"detail": f"HTTP {response.status_code}: {response.text[:200]}"}
    header = response.headers.get("retry-after")
    retry_after = float(header) if header is not None and header.strip().isdigit() else None
    raise error_from_problem(response.status_code, body, retry_after)


def _retryable(error: httpx.TransportError, method: str) -> bool:
    # Nothing reached the server: safe to resend anything. Otherwise only reads are resent.
    return isinstance(error, httpx.ConnectError | httpx.ConnectTimeout) or method in _SAFE_METHODS


def _unreachable(base_url: str, error: httpx.TransportError) -> ServiceUnreachable:
    return ServiceUnreachable(f"CORTEX service at {base_url} unreachable: {error!r}")


def _settings(timeout: float, retries: int) -> httpx.Timeout:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValidationError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValidationError(f"retries must be an integer >= 0, got {retries!r}")
    return httpx.Timeout(timeout, connect=min(5.0, timeout))


def _headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}


def _write_atomically(path: Path, chunks: Iterable[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- the call table


class _Calls:
    """The request of every method, shared by Client and AsyncClient."""

    @staticmethod
    def store(body: dict[str, Any]) -> _Call[Fact]:
        return _Call("POST", "/v1/facts", fact_from_dict, body=body)

    @staticmethod
    def store_many(items: Iterable[FactDraft | Mapping[str, Any]]) -> _Call[builtins.list[Fact]]:
        return _Call(
            "POST", "/v1/facts/batch", _facts, body={"facts": [_draft_body(i) for i in items]}
        )

    @staticmethod
    def get(fact_id: str, as_of: datetime | str | None) -> _Call[Fact]:
        return _Call(
            "GET", f"/v1/facts/{fact_id}", fact_from_dict, params=_clean({"as_of": _iso(as_of)})
        )

    @staticmethod
    def list(params: dict[str, Any]) -> _Call[Page]:
        return _Call("GET", "/v1/facts", _page, params=params)

    @staticmethod
    def deprecate(fact_id: str, reason: str, actor: str | None) -> _Call[Fact]:
        body = _clean({"reason": reason, "actor": actor})
        return _Call("POST", f"/v1/facts/{fact_id}/deprecate", fact_from_dict, body=body)

    @staticmethod
    def supersede(fact_id: str, body: dict[str, Any]) -> _Call[Fact]:
        return _Call("POST", f"/v1/facts/{fact_id}/supersede", fact_from_dict, body=body)

    @staticmethod
    def history(fact_id: str) -> _Call[builtins.list[FactVersion]]:
        return _Call("GET", f"/v1/facts/{fact_id}/history", _versions)

    @staticmethod
    def search(body: dict[str, Any]) -> _Call[builtins.list[SearchHit]]:
        return _Call("POST", "/v1/search", _hits, body=body)

    @staticmethod
    def verify() -> _Call[VerifyReport]:
        return _Call("GET", "/v1/ledger/verify", _report)

    @staticmethod
    def inclusion_proof(ref: int | str, tree_size: int | None) -> _Call[InclusionProof]:
        params = _inclusion_params(ref, tree_size)
        return _Call("GET", "/v1/ledger/proofs/inclusion", _inclusion, params=params)

    @staticmethod
    def consistency_proof(old_size: int, new_size: int | None) -> _Call[ConsistencyProof]:
        params = _clean({"old_size": old_size, "new_size": new_size})
        return _Call("GET", "/v1/ledger/proofs/consistency", _consistency, params=params)

    @staticmethod
    def checkpoint() -> _Call[Checkpoint]:
        return _Call("POST", "/v1/ledger/checkpoint", _checkpoint)

    @staticmethod
    def latest_checkpoint() -> _Call[Checkpoint]:
        return _Call("GET", "/v1/ledger/checkpoint", _checkpoint)


def _search_body(
    query: str,
    k: int,
    mode: str,
    project: str | None,
    fact_type: str | None,
    tags: Iterable[str],
    source: str | None,
    as_of: datetime | str | None,
    min_confidence: float | None,
    include_inactive: bool,
) -> dict[str, Any]:
    return _clean(
        {
            "query": query,
            "k": k,
            "mode": mode,
            "project": project,
            "fact_type": fact_type,
            "tags": _tags(tags),
            "source": source,
            "as_of": _iso(as_of),
            "min_confidence": min_confidence,
            "include_inactive": include_inactive,
        }
    )


class Client:
    """A blocking client of the CORTEX service: the methods of `cortex.connect(...)`'s handle.

    Use as a context manager, or call `close()`. Safe to share between threads.
    """

    def __init__(
        self, base_url: str, api_key: str, *, timeout: float = 30.0, retries: int = 3
    ) -> None:
        self._retries = retries
        self._base_url = base_url
        self._http = httpx.Client(
            base_url=base_url, headers=_headers(api_key), timeout=_settings(timeout, retries)
        )

    def close(self) -> None:
        """Close the connections. Idempotent."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, method: str, path: str, **options: Any) -> httpx.Response:
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                response = self._http.request(method, path, **options)
            except httpx.TransportError as exc:
                if last or not _retryable(exc, method):
                    raise _unreachable(self._base_url, exc) from exc
                time.sleep(_backoff(attempt))
                continue
            if response.status_code in _RETRY_STATUSES and not last:
                time.sleep(_retry_wait(response, attempt))
                continue
            _raise_for(response)
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _run(self, call: _Call[T]) -> T:
        response = self._send(call.method, call.path, params=call.params, json=call.body)
        return call.parse(response.json())

    def store(
        self,
        content: str,
        *,
        project: str | None = None,
        fact_type: str | None = None,
        tags: Iterable[str] = (),
        source: str | None = None,
        confidence: float | None = None,
        valid_from: datetime | str | None = None,
        valid_until: datetime | str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Fact:
        """Store one fact; return it once its ledger entry is durably committed."""
        body = _fact_body(
            content,
            project=project,
            fact_type=fact_type,
            tags=tags,
            source=source,
            confidence=confidence,
            valid_from=valid_from,
            valid_until=valid_until,
            meta=meta,
        )
        return self._run(_Calls.store(body))

    def store_many(self, items: Iterable[FactDraft | Mapping[str, Any]]) -> builtins.list[Fact]:
        """Store up to 1000 facts in one group commit: all of them or, on any invalid, none."""
        drafts = builtins.list(items)
        return self._run(_Calls.store_many(drafts)) if drafts else []

    def get(self, fact_id: str, *, as_of: datetime | str | None = None) -> Fact:
        """Return a fact; with `as_of`, as it was recorded then."""
        return self._run(_Calls.get(fact_id, as_of))

    def list(
        self,
        *,
        project: str | None = None,
        fact_type: str | None = None,
        tags: Iterable[str] = (),
        source: str | None = None,
        include_inactive: bool = False,
        as_of: datetime | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Return one page of facts in creation order; pass `next_cursor` back for the next."""
        params = _list_params(
            project, fact_type, tags, source, include_inactive, as_of, limit, cursor
        )
        return self._run(_Calls.list(params))

    def deprecate(self, fact_id: str, reason: str, *, actor: str | None = None) -> Fact:
        """Mark an active fact deprecated with a reason (actor: default the key's id)."""
        return self._run(_Calls.deprecate(fact_id, reason, actor))

    def supersede(
        self,
        fact_id: str,
        content: str,
        *,
        reason: str | None = None,
        project: str | None = None,
        fact_type: str | None = None,
        tags: Iterable[str] | None = None,
        source: str | None = None,
        confidence: float | None = None,
        valid_from: datetime | str | None = None,
        valid_until: datetime | str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Fact:
        """Store a new fact that replaces `fact_id`; fields not given are taken from the old one."""
        body = _fact_body(
            content,
            project=project,
            fact_type=fact_type,
            tags=tags,
            source=source,
            confidence=confidence,
            valid_from=valid_from,
            valid_until=valid_until,
            meta=meta,
        )
        if reason is not None:
            body["reason"] = reason
        return self._run(_Calls.supersede(fact_id, body))

    def history(self, fact_id: str) -> builtins.list[FactVersion]:
        """Every version of a fact (its supersession chain), with the transactions of each."""
        return self._run(_Calls.history(fact_id))

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        project: str | None = None,
        fact_type: str | None = None,
        tags: Iterable[str] = (),
        source: str | None = None,
        as_of: datetime | str | None = None,
        min_confidence: float | None = None,
        include_inactive: bool = False,
    ) -> builtins.list[SearchHit]:
        """The `k` facts that best answer `query`, best first."""
        body = _search_body(
            query,
            k,
            mode,
            project,
            fact_type,
            tags,
            source,
            as_of,
            min_confidence,
            include_inactive,
        )
        return self._run(_Calls.search(body))

    def verify(self) -> VerifyReport:
        """Verify the key's tenant's ledger: chain, tree, fact digests, checkpoints."""
        return self._run(_Calls.verify())

    def inclusion_proof(self, ref: int | str, *, tree_size: int | None = None) -> InclusionProof:
        """Inclusion proof of a ledger entry, by `seq` or by fact id (its store entry)."""
        return self._run(_Calls.inclusion_proof(ref, tree_size))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """Proof that the tree of `old_size` entries is a prefix of the tree of `new_size`."""
        return self._run(_Calls.consistency_proof(old_size, new_size))

    def checkpoint(self) -> Checkpoint:
        """Sign and store a checkpoint of the tenant's ledger at its current size."""
        return self._run(_Calls.checkpoint())

    def latest_checkpoint(self) -> Checkpoint:
        """The tenant's latest signed checkpoint (NotFound when there is none)."""
        return self._run(_Calls.latest_checkpoint())

    def export(self, path: str | os.PathLike[str]) -> int:
        """Download the tenant's bundle to `path` (atomically); return its number of entries.

        Needs an admin key without a project.
        """
        with self._http.stream("GET", "/v1/export") as response:
            if response.status_code >= 400:
                response.read()
                _raise_for(response)
            _write_atomically(Path(path), response.iter_bytes(_CHUNK))
            return int(response.headers["x-cortex-entries"])


class AsyncClient:
    """An async client of the CORTEX service: the methods of `await cortex.open(...)`'s engine.

    Use as an async context manager, or await `aclose()`.
    """

    def __init__(
        self, base_url: str, api_key: str, *, timeout: float = 30.0, retries: int = 3
    ) -> None:
        self._retries = retries
        self._base_url = base_url
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=_headers(api_key), timeout=_settings(timeout, retries)
        )

    async def aclose(self) -> None:
        """Close the connections. Idempotent."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _send(self, method: str, path: str, **options: Any) -> httpx.Response:
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                response = await self._http.request(method, path, **options)
            except httpx.TransportError as exc:
                if last or not _retryable(exc, method):
                    raise _unreachable(self._base_url, exc) from exc
                await asyncio.sleep(_backoff(attempt))
                continue
            if response.status_code in _RETRY_STATUSES and not last:
                await asyncio.sleep(_retry_wait(response, attempt))
                continue
            _raise_for(response)
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _run(self, call: _Call[T]) -> T:
        response = await self._send(call.method, call.path, params=call.params, json=call.body)
        return call.parse(response.json())

    async def store(
        self,
        content: str,
        *,
        project: str | None = None,
        fact_type: str | None = None,
        tags: Iterable[str] = (),
        source: str | None = None,
        confidence: float | None = None,
        valid_from: datetime | str | None = None,
        valid_until: datetime | str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Fact:
        """Store one fact; return it once its ledger entry is durably committed."""
        body = _fact_body(
            content,
            project=project,
            fact_type=fact_type,
            tags=tags,
            source=source,
            confidence=confidence,
            valid_from=valid_from,
            valid_until=valid_until,
            meta=meta,
        )
        return await self._run(_Calls.store(body))

    async def store_many(
        self, items: Iterable[FactDraft | Mapping[str, Any]]
    ) -> builtins.list[Fact]:
        """Store up to 1000 facts in one group commit: all of them or, on any invalid, none."""
        drafts = builtins.list(items)
        return await self._run(_Calls.store_many(drafts)) if drafts else []

    async def get(self, fact_id: str, *, as_of: datetime | str | None = None) -> Fact:
        """Return a fact; with `as_of`, as it was recorded then."""
        return await self._run(_Calls.get(fact_id, as_of))

    async def list(
        self,
        *,
        project: str | None = None,
        fact_type: str | None = None,
        tags: Iterable[str] = (),
        source: str | None = None,
        include_inactive: bool = False,
        as_of: datetime | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Return one page of facts in creation order; pass `next_cursor` back for the next."""
        params = _list_params(
            project, fact_type, tags, source, include_inactive, as_of, limit, cursor
        )
        return await self._run(_Calls.list(params))

    async def deprecate(self, fact_id: str, reason: str, *, actor: str | None = None) -> Fact:
        """Mark an active fact deprecated with a reason (actor: default the key's id)."""
        return await self._run(_Calls.deprecate(fact_id, reason, actor))

    async def supersede(
        self,
        fact_id: str,
        content: str,
        *,
        reason: str | None = None,
        project: str | None = None,
        fact_type: str | None = None,
        tags: Iterable[str] | None = None,
        source: str | None = None,
        confidence: float | None = None,
        valid_from: datetime | str | None = None,
        valid_until: datetime | str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Fact:
        """Store a new fact that replaces `fact_id`; fields not given are taken from the old one."""
        body = _fact_body(
            content,
            project=project,
            fact_type=fact_type,
            tags=tags,
            source=source,
            confidence=confidence,
            valid_from=valid_from,
            valid_until=valid_until,
            meta=meta,
        )
        if reason is not None:
            body["reason"] = reason
        return await self._run(_Calls.supersede(fact_id, body))

    async def history(self, fact_id: str) -> builtins.list[FactVersion]:
        """Every version of a fact (its supersession chain), with the transactions of each."""
        return await self._run(_Calls.history(fact_id))

    async def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        project: str | None = None,
        fact_type: str | None = None,
        tags: Iterable[str] = (),
        source: str | None = None,
        as_of: datetime | str | None = None,
        min_confidence: float | None = None,
        include_inactive: bool = False,
    ) -> builtins.list[SearchHit]:
        """The `k` facts that best answer `query`, best first."""
        body = _search_body(
            query,
            k,
            mode,
            project,
            fact_type,
            tags,
            source,
            as_of,
            min_confidence,
            include_inactive,
        )
        return await self._run(_Calls.search(body))

    async def verify(self) -> VerifyReport:
        """Verify the key's tenant's ledger: chain, tree, fact digests, checkpoints."""
        return await self._run(_Calls.verify())

    async def inclusion_proof(
        self, ref: int | str, *, tree_size: int | None = None
    ) -> InclusionProof:
        """Inclusion proof of a ledger entry, by `seq` or by fact id (its store entry)."""
        return await self._run(_Calls.inclusion_proof(ref, tree_size))

    async def consistency_proof(
        self, old_size: int, new_size: int | None = None
    ) -> ConsistencyProof:
        """Proof that the tree of `old_size` entries is a prefix of the tree of `new_size`."""
        return await self._run(_Calls.consistency_proof(old_size, new_size))

    async def checkpoint(self) -> Checkpoint:
        """Sign and store a checkpoint of the tenant's ledger at its current size."""
        return await self._run(_Calls.checkpoint())

    async def latest_checkpoint(self) -> Checkpoint:
        """The tenant's latest signed checkpoint (NotFound when there is none)."""
        return await self._run(_Calls.latest_checkpoint())

    async def export(self, path: str | os.PathLike[str]) -> int:
        """Download the tenant's bundle to `path` (atomically); return its number of entries.

        Needs an admin key without a project.
        """
        target = Path(path)
        async with self._http.stream("GET", "/v1/export") as response:
            if response.status_code >= 400:
                await response.aread()
                _raise_for(response)
            fd, tmp = await asyncio.to_thread(
                tempfile.mkstemp, f".{target.name}.", None, target.parent
            )
            try:
                with os.fdopen(fd, "wb") as handle:
                    async for chunk in response.aiter_bytes(_CHUNK):
                        await asyncio.to_thread(handle.write, chunk)
                    await asyncio.to_thread(handle.flush)
                    await asyncio.to_thread(os.fsync, handle.fileno())
                await asyncio.to_thread(os.replace, tmp, target)
            except BaseException:
                await asyncio.to_thread(Path(tmp).unlink, True)
                raise
            return int(response.headers["x-cortex-entries"])
