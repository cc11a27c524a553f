"""Pydantic models of the REST API: request bodies and the shapes of responses (the OpenAPI schema).

Responses are rendered by the model classes' own `to_dict()` (cortex.model); the output models
here describe those dicts exactly, and the schemathesis suite checks that they do.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cortex.model import MAX_CONTENT_BYTES, MAX_TAGS

__all__ = [
    "ApiKeyOut",
    "ApprovalListOut",
    "ApprovalOut",
    "ApprovalRequiredOut",
    "CheckpointOut",
    "ConsensusOut",
    "ConsistencyProofOut",
    "DecisionIn",
    "DecisionOut",
    "DeprecateIn",
    "FactBatchIn",
    "FactIn",
    "FactListOut",
    "FactOut",
    "FactVersionOut",
    "HistoryOut",
    "InclusionProofOut",
    "IssuedKeyOut",
    "KeyCreateIn",
    "KeyListOut",
    "PageOut",
    "PendingApprovalOut",
    "ProblemOut",
    "PurgeIn",
    "PurgedOut",
    "ReputationOut",
    "SearchHitOut",
    "SearchIn",
    "SearchOut",
    "StandingVoteOut",
    "StatusOut",
    "SupersedeIn",
    "TransactionOut",
    "VerifyProblemOut",
    "VerifyReportOut",
    "VoteIn",
    "VoteOut",
]

MAX_BATCH = 1000
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, examples=["infra"])]
Tag = Annotated[str, Field(pattern=r"^[^\s,][^,\n\r\t]{0,63}$", examples=["db"])]
Content = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_CONTENT_BYTES,
        description=f"The fact's text (at most {MAX_CONTENT_BYTES} bytes of UTF-8).",
        examples=["The staging database moved to db-2"],
    ),
]
Confidence = Annotated[float, Field(ge=0.0, le=1.0)]
Reason = Annotated[str, Field(min_length=1, max_length=2000, examples=["superseded by a decision"])]
Hex = Annotated[str, Field(pattern=r"^[0-9a-f]*$")]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FactIn(_Input):
    """A fact to store. Fields left out take the defaults of `store` (project: the key's project
    or 'default'; fact_type 'knowledge')."""

    content: Content
    project: Name | None = None
    fact_type: Name | None = None
    tags: Annotated[list[Tag], Field(max_length=MAX_TAGS)] = []
    source: Name | None = None
    confidence: Confidence | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    meta: dict[str, Any] | None = None


class FactBatchIn(_Input):
    """Facts to store in one group commit: all of them or, if any is invalid, none."""

    facts: Annotated[list[FactIn], Field(min_length=1, max_length=MAX_BATCH)]


class DeprecateIn(_Input):
    """Why a fact no longer holds; `actor` defaults to the API key's id."""

    reason: Reason
    actor: Name | None = None


class SupersedeIn(_Input):
    """The fact that replaces another; fields left out are taken from the old fact."""

    content: Content
    reason: Reason | None = None
    project: Name | None = None
    fact_type: Name | None = None
    tags: Annotated[list[Tag], Field(max_length=MAX_TAGS)] | None = None
    source: Name | None = None
    confidence: Confidence | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    meta: dict[str, Any] | None = None


class SearchIn(_Input):
    """A search: the query, how many hits, the method, and filters applied while searching."""

    query: Annotated[str, Field(max_length=100_000, examples=["where is the staging database?"])]
    k: Annotated[int, Field(ge=1, le=1000)] = 10
    mode: Literal["hybrid", "vector", "text"] = "hybrid"
    project: Name | None = None
    fact_type: Name | None = None
    tags: Annotated[list[Tag], Field(max_length=MAX_TAGS)] = []
    source: Name | None = None
    as_of: datetime | None = None
    min_confidence: Confidence | None = None
    include_inactive: bool = False
    consensus: Literal["verified", "not_disputed"] | None = Field(
        default=None, description="Only facts whose consensus has this status (docs/consensus.md)."
    )
    consensus_boost: Annotated[float, Field(ge=0.0, le=10.0)] = Field(
        default=0.0, description="Re-rank by normalised score + boost x consensus score."
    )


class KeyCreateIn(_Input):
    """A key to issue for the caller's tenant."""

    role: Literal["reader", "writer", "admin"]
    project: Name | None = None
    expires: datetime | None = None
    agent: Name | None = Field(
        default=None,
        description="Bind the key to this agent: it votes as the agent and its facts have it"
        " as source; keys not bound to the name cannot use it.",
    )


class FactOut(BaseModel):
    """A stored fact with its ledger position and current state."""

    id: str
    tenant: str
    project: str
    content: str
    fact_type: str
    tags: list[str]
    source: str | None
    confidence: float | None
    valid_from: datetime
    valid_until: datetime | None
    supersedes: str | None
    created_at: datetime
    meta: dict[str, Any]
    seq: int
    status: Literal["active", "deprecated", "superseded", "purged"]
    deprecated_at: datetime | None
    deprecation_reason: str | None
    superseded_by: str | None
    purged_at: datetime | None
    purge_reason: str | None


class FactListOut(BaseModel):
    """Facts stored by a batch, in input order."""

    items: list[FactOut]


class PageOut(BaseModel):
    """One page of facts; pass `next_cursor` back as `cursor` for the next (null: last page)."""

    items: list[FactOut]
    next_cursor: str | None


class TransactionOut(BaseModel):
    """One ledger entry; digests as lowercase hex."""

    tenant: str
    seq: int
    op: str
    subject: str | None
    actor: str | None
    ts: str
    payload: dict[str, Any]
    payload_digest: Hex
    prev_hash: Hex
    hash: Hex


class FactVersionOut(BaseModel):
    """One version of a fact and the transactions that touched it."""

    fact: FactOut
    transactions: list[TransactionOut]


class HistoryOut(BaseModel):
    """Every version of a fact (its supersession chain), oldest first."""

    items: list[FactVersionOut]


class SearchHitOut(BaseModel):
    """One hit: the fact, its score (higher is better) and the rank each method gave it."""

    fact: FactOut
    score: float
    ranks: dict[str, int]


class SearchOut(BaseModel):
    """The hits, best first."""

    hits: list[SearchHitOut]


class VerifyProblemOut(BaseModel):
    """One integrity problem found by verify."""

    tenant: str
    seq: int | None
    kind: str
    detail: str


class VerifyReportOut(BaseModel):
    """The outcome of verifying the tenant's ledger: `ok` only when `problems` is empty."""

    ok: bool
    tenants: int
    entries: int
    facts: int
    checkpoints: int
    purged: int
    problems: list[VerifyProblemOut]
    truncated: bool


class InclusionProofOut(BaseModel):
    """RFC 9162 §2.1.3 audit path of one entry; `entry` is its canonical JSON text."""

    tenant: str
    seq: int
    tree_size: int
    entry: str
    leaf_hash: Hex
    path: list[Hex]
    root: Hex


class ConsistencyProofOut(BaseModel):
    """RFC 9162 §2.1.4 proof that the tree of `old_size` is a prefix of the tree of `new_size`."""

    tenant: str
    old_size: int
    new_size: int
    old_root: Hex
    new_root: Hex
    path: list[Hex]


class CheckpointOut(BaseModel):
    """A signed statement of the ledger's size and root (Ed25519 signature as hex)."""

    tenant: str
    tree_size: int
    root: Hex
    ts: str
    signature: Hex
    key_id: str


class ApiKeyOut(BaseModel):
    """An API key's record (never the key)."""

    key_id: str
    tenant: str
    role: Literal["reader", "writer", "admin"]
    project: str | None
    created: datetime
    expires: datetime | None
    revoked: datetime | None
    agent: str | None = None
    state: Literal["active", "expired", "revoked"]


class IssuedKeyOut(BaseModel):
    """A new key: `key` is shown this once; only its HMAC is stored."""

    key: str
    record: ApiKeyOut


class KeyListOut(BaseModel):
    """The tenant's API keys, oldest first."""

    items: list[ApiKeyOut]


class StatusOut(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok", "ready"]


class VoteIn(_Input):
    """A vote on a fact: +1 (it holds) or -1, cast as the API key's identity (its bound agent,
    else `key-<key id>`); `agent`, if given, must be that identity."""

    value: Literal[1, -1]
    agent: Name | None = None
    reason: Reason | None = None


class VoteOut(BaseModel):
    """A vote as logged: its ledger entry `seq` and time."""

    tenant: str
    fact_id: str
    agent: str
    value: Literal[1, -1]
    reason: str | None
    seq: int
    ts: str


class StandingVoteOut(BaseModel):
    """An agent's current vote on a fact and the weight it counted for (0: the fact's author)."""

    agent: str
    value: Literal[1, -1]
    weight: float
    reputation: float
    established: bool
    counted: bool
    seq: int
    ts: str
    reason: str | None


class ConsensusOut(BaseModel):
    """A fact's consensus: score in (-1, 1), status, standing votes (docs/consensus.md)."""

    tenant: str
    fact_id: str
    score: float
    status: Literal["verified", "disputed", "unverified"]
    outcome: Literal["confirmed", "refuted"] | None
    support: float
    opposition: float
    fresh_scale: float
    verified_at: float
    disputed_at: float
    votes: list[StandingVoteOut]
    votes_cast: int
    tree_size: int
    converged: bool


class ReputationOut(BaseModel):
    """An agent's reputation in (0, 1), vote weight and record; `formula` shows the computation."""

    tenant: str
    agent: str
    score: float
    weight: float
    established: bool
    good: int
    bad: int
    facts_verified: int
    facts_refuted: int
    votes_agreed: int
    votes_disagreed: int
    votes_standing: int
    formula: str
    tree_size: int
    converged: bool


class ProblemOut(BaseModel):
    """An RFC 9457 problem: every error of the API has this shape."""

    type: str
    title: str
    status: int
    detail: str
    request_id: str


# ---- approval gate and purge (docs/gate.md)

ApprovalToken = Annotated[
    str,
    Field(
        min_length=1,
        max_length=4096,
        description="The token an approval returned (`POST /v1/gate/{id}/approve`); works once.",
    ),
]


class PurgeIn(_Input):
    """Why the fact must be erased; `approval` is the token of the approval this purge asked
    for (the first request answers 202 naming it)."""

    reason: Reason
    approval: ApprovalToken | None = None
    all_versions: bool = False


class PurgedOut(BaseModel):
    """The purged versions, as they read now (status "purged", content destroyed)."""

    items: list[FactOut]


class DecisionIn(_Input):
    """Why the approval is approved or denied (kept in the ledger)."""

    reason: Reason | None = None


class ApprovalOut(BaseModel):
    """An approval: the action and parameters it allows, who asked, its state and decision."""

    id: str
    tenant: str
    action: Literal["purge", "bulk_deprecate", "export", "rotate_master", "rotate_data", "policy"]
    params: dict[str, Any]
    params_digest: Hex
    requested_by: str | None
    requested_at: str
    expires_at: str
    state: Literal["pending", "approved", "denied", "used", "expired"]
    request_seq: int
    decision: Literal["approve", "deny"] | None
    decided_by: str | None
    decided_at: str | None
    decision_reason: str | None
    used_at: str | None


class ApprovalListOut(BaseModel):
    """The tenant's approvals, oldest first."""

    items: list[ApprovalOut]


class DecisionOut(BaseModel):
    """The decided approval and, after an approval, its token: shown once, works once."""

    approval: ApprovalOut
    token: str | None


class PendingApprovalOut(BaseModel):
    """The approval an action waits for, and where an admin approves it."""

    id: str
    action: str
    tenant: str | None
    expires_at: str
    approve: str


class ApprovalRequiredOut(BaseModel):
    """202: the action did not run; it waits for the approval named here (then repeat the
    request with the approval's token)."""

    type: str
    title: str
    status: Literal[202]
    detail: str
    request_id: str
    approval: PendingApprovalOut
