"""The core that `Client` and `AsyncClient` share: requests to send, answers to read.

Pure (no I/O but the atomic file writer): each request method builds a `Call` (method, path,
query, JSON body and the parser of its answer); `raise_for_problem` maps an error answer back
to its `CortexError` class through the problem+json `type`; `retry_wait` decides the pause
before the next attempt. The clients add only their transport, their sleep and their lifecycle.
"""

from __future__ import annotations

import builtins
import os
import random
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx

from cortex.canonical import parse_ts
from cortex.consensus import Consensus, Reputation, Vote
from cortex.errors import (
    ApprovalDenied,
    ApprovalExpired,
    ApprovalForeignTenant,
    ApprovalInvalid,
    ApprovalMismatch,
    ApprovalReplayed,
    ApprovalRequired,
    Conflict,
    CortexError,
    Forbidden,
    GateFull,
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
from cortex.gate import Approval, Decision
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
from cortex.report import ComplianceReport

T = TypeVar("T")
PROBLEM_TYPE_PREFIX = "urn:cortex:problem:"
RETRY_STATUSES = frozenset({429, 503})
EXPORT_PATH = "/v1/export"
CHUNK = 1 << 16
_MAX_RETRY_WAIT = 30.0
_BACKOFF_BASE = 0.1
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})

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
    "approval-foreign-tenant": ApprovalForeignTenant,
    "approval-mismatch": ApprovalMismatch,
    "approval-invalid": ApprovalInvalid,
    "approval-expired": ApprovalExpired,
    "approval-denied": ApprovalDenied,
    "approval-replayed": ApprovalReplayed,
    "gate-full": GateFull,
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
        purged_at=_when(data.get("purged_at")),
        purge_reason=data.get("purge_reason"),
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


def _approvals(data: Mapping[str, Any]) -> builtins.list[Approval]:
    return [Approval.from_dict(item) for item in data["items"]]


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
        purged=data.get("purged", 0),
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


# ---------------------------------------------------------------- requests


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


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One API call: what to send and how to read the answer."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: Mapping[str, Any] | None = None
    body: Any = None


class Requests:
    """The call behind each method of the clients; each docstring is that method's."""

    @staticmethod
    def store(
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
    ) -> Call[Fact]:
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
        return Call("POST", "/v1/facts", fact_from_dict, body=body)

    @staticmethod
    def store_many(
        drafts: builtins.list[FactDraft | Mapping[str, Any]],
    ) -> Call[builtins.list[Fact]]:
        """Store up to 1000 facts in one group commit: all of them or, on any invalid, none."""
        body = {"facts": [_draft_body(d) for d in drafts]}
        return Call("POST", "/v1/facts/batch", _facts, body=body)

    @staticmethod
    def get(fact_id: str, *, as_of: datetime | str | None = None) -> Call[Fact]:
        """Return a fact; with `as_of`, as it was recorded then."""
        params = _clean({"as_of": _iso(as_of)})
        return Call("GET", f"/v1/facts/{fact_id}", fact_from_dict, params=params)

    @staticmethod
    def list(
        *,
        project: str | None = None,
        fact_type: str | None = None,
        tags: Iterable[str] = (),
        source: str | None = None,
        include_inactive: bool = False,
        as_of: datetime | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Call[Page]:
        """Return one page of facts in creation order; pass `next_cursor` back for the next."""
        params = _clean(
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
        return Call("GET", "/v1/facts", _page, params=params)

    @staticmethod
    def deprecate(fact_id: str, reason: str, *, actor: str | None = None) -> Call[Fact]:
        """Mark an active fact deprecated with a reason (actor: default the key's id)."""
        body = _clean({"reason": reason, "actor": actor})
        return Call("POST", f"/v1/facts/{fact_id}/deprecate", fact_from_dict, body=body)

    @staticmethod
    def supersede(
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
    ) -> Call[Fact]:
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
        return Call("POST", f"/v1/facts/{fact_id}/supersede", fact_from_dict, body=body)

    @staticmethod
    def history(fact_id: str) -> Call[builtins.list[FactVersion]]:
        """Every version of a fact (its supersession chain), with the transactions of each."""
        return Call("GET", f"/v1/facts/{fact_id}/history", _versions)

    @staticmethod
    def search(
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
        consensus: str | None = None,
        consensus_boost: float = 0.0,
    ) -> Call[builtins.list[SearchHit]]:
        """The `k` facts that best answer `query`, best first (consensus: filter and boost)."""
        body = _clean(
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
                "consensus": consensus,
                "consensus_boost": consensus_boost or None,
            }
        )
        return Call("POST", "/v1/search", _hits, body=body)

    @staticmethod
    def verify() -> Call[VerifyReport]:
        """Verify the key's tenant's ledger: chain, tree, fact digests, checkpoints."""
        return Call("GET", "/v1/ledger/verify", _report)

    @staticmethod
    def inclusion_proof(ref: int | str, *, tree_size: int | None = None) -> Call[InclusionProof]:
        """Inclusion proof of a ledger entry, by `seq` or by fact id (its store entry)."""
        if isinstance(ref, bool) or not isinstance(ref, int | str):
            raise ValidationError("ref must be a seq number or a fact id")
        key = "fact_id" if isinstance(ref, str) else "seq"
        params = _clean({key: ref, "tree_size": tree_size})
        return Call("GET", "/v1/ledger/proofs/inclusion", _inclusion, params=params)

    @staticmethod
    def consistency_proof(old_size: int, new_size: int | None = None) -> Call[ConsistencyProof]:
        """Proof that the tree of `old_size` entries is a prefix of the tree of `new_size`."""
        params = _clean({"old_size": old_size, "new_size": new_size})
        return Call("GET", "/v1/ledger/proofs/consistency", _consistency, params=params)

    @staticmethod
    def checkpoint() -> Call[Checkpoint]:
        """Sign and store a checkpoint of the tenant's ledger at its current size."""
        return Call("POST", "/v1/ledger/checkpoint", _checkpoint)

    @staticmethod
    def latest_checkpoint() -> Call[Checkpoint]:
        """The tenant's latest signed checkpoint (NotFound when there is none)."""
        return Call("GET", "/v1/ledger/checkpoint", _checkpoint)

    @staticmethod
    def purge(
        fact_id: str, reason: str, *, approval: str | None = None, all_versions: bool = False
    ) -> Call[builtins.list[Fact]]:
        """Erase a fact's content for good (admin; gated: ApprovalRequired without `approval`)."""
        body = _clean({"reason": reason, "approval": approval, "all_versions": all_versions})
        return Call("POST", f"/v1/facts/{fact_id}/purge", _facts, body=body)

    @staticmethod
    def approvals(*, include_all: bool = False) -> Call[builtins.list[Approval]]:
        """The tenant's approvals awaiting a decision or use (`include_all`: every one)."""
        params = {"include_all": "true"} if include_all else None
        return Call("GET", "/v1/gate", _approvals, params=params)

    @staticmethod
    def approve(approval_id: str, *, reason: str | None = None) -> Call[Decision]:
        """Approve a pending approval; the Decision's `token` (shown once) lets the action run."""
        body = _clean({"reason": reason})
        return Call("POST", f"/v1/gate/{approval_id}/approve", Decision.from_dict, body=body)

    @staticmethod
    def deny(approval_id: str, *, reason: str | None = None) -> Call[Decision]:
        """Deny a pending approval: its action may not run."""
        body = _clean({"reason": reason})
        return Call("POST", f"/v1/gate/{approval_id}/deny", Decision.from_dict, body=body)

    @staticmethod
    def vote(
        fact_id: str, value: int, *, agent: str | None = None, reason: str | None = None
    ) -> Call[Vote]:
        """Log a vote (+1 or -1) on an active fact (agent: default `key-<the key's id>`)."""
        body = _clean({"value": value, "agent": agent, "reason": reason})
        return Call("POST", f"/v1/facts/{fact_id}/votes", Vote.from_dict, body=body)

    @staticmethod
    def consensus(fact_id: str) -> Call[Consensus]:
        """A fact's consensus: score in (-1, 1), status, and the standing votes with weights."""
        return Call("GET", f"/v1/facts/{fact_id}/consensus", Consensus.from_dict)

    @staticmethod
    def reputation(agent: str) -> Call[Reputation]:
        """An agent's reputation in (0, 1), its vote weight and the record they come from."""
        return Call("GET", f"/v1/agents/{agent}/reputation", Reputation.from_dict)

    @staticmethod
    def report(
        *, start: datetime | str | None = None, end: datetime | str | None = None
    ) -> Call[ComplianceReport]:
        """The tenant's compliance report from `start` to `end` (inclusive; a date alone means
        that whole day); admin key without a project. Render it with `cortex.report.render`."""
        params = {"format": "json"}
        for name, value in (("from", start), ("to", end)):
            if value is not None:
                params[name] = value.isoformat() if isinstance(value, datetime) else str(value)
        return Call("GET", "/v1/report", ComplianceReport.from_dict, params=params)


# ---------------------------------------------------------------- answers and retries


def approval_required(body: Any) -> ApprovalRequired:
    """The ApprovalRequired a 202 answer (the action waits for an approval) stands for."""
    problem = body if isinstance(body, dict) else {}
    found = problem.get("approval")
    pending: dict[str, Any] = found if isinstance(found, dict) else {}
    return ApprovalRequired(
        str(problem.get("detail") or "the action waits for an approval"),
        approval_id=str(pending.get("id")),
        action=str(pending.get("action")),
        expires_at=str(pending.get("expires_at")),
        tenant=tenant if isinstance(tenant := pending.get("tenant"), str) else None,
    )


def raise_for_problem(response: httpx.Response) -> None:
    """Raise the CortexError an error answer (status >= 400) stands for, or ApprovalRequired
    for a 202 (a gated action that did not run); return otherwise."""
    if response.status_code == 202:
        raise approval_required(response.json())
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = {"detail": f"HTTP {response.status_code}: {response.text[:200]}"}
    raise error_from_problem(response.status_code, body, _retry_after(response))


def exported_entries(response: httpx.Response) -> int:
    """The number of ledger entries in an export answer."""
    return int(response.headers["x-cortex-entries"])


def _retry_after(response: httpx.Response) -> float | None:
    header = response.headers.get("retry-after")
    return float(header) if header is not None and header.strip().isdigit() else None


def retry_wait(response: httpx.Response, attempt: int) -> float:
    """Seconds to wait before resending a refused request: its Retry-After, else a backoff."""
    seconds = _retry_after(response)
    return backoff(attempt) if seconds is None else min(seconds, _MAX_RETRY_WAIT)


def backoff(attempt: int) -> float:
    """Seconds to wait before attempt `attempt + 1`: exponential, jittered, capped."""
    return float(min(_MAX_RETRY_WAIT, _BACKOFF_BASE * 2**attempt) * (0.5 + random.random() / 2))


def resendable(error: httpx.TransportError, method: str) -> bool:
    """Whether a request that failed in transport may be sent again."""
    # Nothing reached the server: safe to resend anything. Otherwise only reads are resent.
    return isinstance(error, httpx.ConnectError | httpx.ConnectTimeout) or method in _SAFE_METHODS


def http_options(base_url: str, api_key: str, timeout: float, retries: int) -> dict[str, Any]:
    """The httpx client options of a CORTEX client (a timeout always set), once checked."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValidationError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValidationError(f"retries must be an integer >= 0, got {retries!r}")
    options: dict[str, Any] = {
        "base_url": base_url,
        "headers": {"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
        "timeout": httpx.Timeout(timeout, connect=min(5.0, timeout)),
    }
    if not uses_tls(base_url, os.environ):
        # httpx otherwise builds a TLS context for every client (the CA bundle read and parsed:
        # ~20 ms of CPU, on the event loop for an AsyncClient) that this client cannot use.
        options["verify"] = False
    return options


_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


def uses_tls(base_url: str, environ: Mapping[str, str]) -> bool:
    """Whether a client of `base_url` may open a TLS connection (and so verifies certificates).

    Only a plain `http://` service reached without a proxy from the environment may not: the
    client sends every request to its base URL and follows no redirect. With any proxy variable
    set, the proxy itself may be reached over TLS, so certificates are verified as usual.
    """
    if httpx.URL(base_url).scheme != "http":
        return True
    return any(environ.get(name) or environ.get(name.upper()) for name in _PROXY_VARIABLES)


class AtomicFile:
    """A file written under a temporary name and moved over `path` once complete and fsynced."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        self._path = path
        self._tmp = Path(tmp)
        self._handle = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        """Append `chunk` to the temporary file."""
        self._handle.write(chunk)

    def commit(self) -> None:
        """Flush, fsync and close the temporary file, then move it over `path`."""
        with self._handle:
            self._handle.flush()
            os.fsync(self._handle.fileno())
        os.replace(self._tmp, self._path)

    def discard(self) -> None:
        """Close and delete the temporary file; `path` is left as it was."""
        self._handle.close()
        self._tmp.unlink(missing_ok=True)
