"""Approvals as the ledger records them: requests, decisions and spent tokens, folded (pure).

Nothing about an approval is kept anywhere but in ledger events, so pending approvals survive
restarts and every process serving a store sees the same ones:

* `gate_request` (subject: the approval id, actor: the requester), payload
  `{"action", "params", "params_digest", "expires_at"}`;
* `gate_decision` (subject: the approval id, actor: the admin), payload
  `{"decision": "approve" | "deny", "reason"}`, at most one per approval;
* `gate_used` (subject: the approval id), payload `{"action"}`, at most one per approval.

`fold_approvals` turns those events into one `Approval` per request, in request order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from cortex.canonical import parse_ts
from cortex.config import GATE_ACTIONS
from cortex.model import Transaction

__all__ = [
    "GATE_ACTIONS",
    "GATE_OPS",
    "OP_DECISION",
    "OP_REQUEST",
    "OP_USED",
    "Approval",
    "ApprovalState",
    "fold_approvals",
]


OP_REQUEST = "gate_request"
OP_DECISION = "gate_decision"
OP_USED = "gate_used"
GATE_OPS = (OP_REQUEST, OP_DECISION, OP_USED)

ApprovalState = Literal["pending", "approved", "denied", "used", "expired"]


@dataclass(frozen=True, slots=True)
class Approval:
    """One request for approval and what became of it.

    `state`: `pending` (awaiting a decision), `approved` (a token was issued, not yet used),
    `denied`, `used` (the approved action ran), or `expired` (`expires_at` passed before it was
    decided, or before its token was used).
    """

    id: str
    tenant: str
    action: str
    params: Mapping[str, Any]
    params_digest: str
    requested_by: str | None
    requested_at: str
    expires_at: str
    state: ApprovalState
    request_seq: int
    decision: str | None = None
    decided_by: str | None = None
    decided_at: str | None = None
    decision_reason: str | None = None
    used_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return {
            "id": self.id,
            "tenant": self.tenant,
            "action": self.action,
            "params": dict(self.params),
            "params_digest": self.params_digest,
            "requested_by": self.requested_by,
            "requested_at": self.requested_at,
            "expires_at": self.expires_at,
            "state": self.state,
            "request_seq": self.request_seq,
            "decision": self.decision,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at,
            "decision_reason": self.decision_reason,
            "used_at": self.used_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Approval:
        """An Approval from its `to_dict()` form (as the REST API returns it)."""
        return cls(
            id=data["id"],
            tenant=data["tenant"],
            action=data["action"],
            params=dict(data["params"]),
            params_digest=data["params_digest"],
            requested_by=data["requested_by"],
            requested_at=data["requested_at"],
            expires_at=data["expires_at"],
            state=data["state"],
            request_seq=data["request_seq"],
            decision=data["decision"],
            decided_by=data["decided_by"],
            decided_at=data["decided_at"],
            decision_reason=data["decision_reason"],
            used_at=data["used_at"],
        )


def _state(approval: Approval, now: datetime) -> ApprovalState:
    if approval.used_at is not None:
        return "used"
    if approval.decision == "deny":
        return "denied"
    if now >= parse_ts(approval.expires_at):
        return "expired"
    return "approved" if approval.decision == "approve" else "pending"


def fold_approvals(tenant: str, events: Iterable[Transaction], now: datetime) -> list[Approval]:
    """One Approval per `gate_request` among `events` (in seq order), with its state at `now`.

    A decision or use logged after the approval's expiry does not count (the approval is
    expired); events about an unknown approval id are ignored.
    """
    found: dict[str, Approval] = {}
    for tx in events:
        subject = tx.subject
        if subject is None:
            continue
        payload = tx.payload
        if tx.op == OP_REQUEST and subject not in found:
            params = payload.get("params")
            found[subject] = Approval(
                id=subject,
                tenant=tenant,
                action=str(payload.get("action")),
                params=dict(params) if isinstance(params, Mapping) else {},
                params_digest=str(payload.get("params_digest")),
                requested_by=tx.actor,
                requested_at=tx.ts,
                expires_at=str(payload.get("expires_at")),
                state="pending",
                request_seq=tx.seq,
            )
            continue
        approval = found.get(subject)
        if approval is None or parse_ts(tx.ts) >= parse_ts(approval.expires_at):
            continue
        if tx.op == OP_DECISION and approval.decision is None:
            reason = payload.get("reason")
            found[subject] = replace(
                approval,
                decision=str(payload.get("decision")),
                decided_by=tx.actor,
                decided_at=tx.ts,
                decision_reason=reason if isinstance(reason, str) else None,
            )
        elif tx.op == OP_USED and approval.decision == "approve" and approval.used_at is None:
            found[subject] = replace(approval, used_at=tx.ts)
    return [replace(a, state=_state(a, now)) for a in found.values()]
