"""The approval gate: risky actions wait for an admin's yes, given as a single-use signed token.

`ApprovalGate.check(action, params, token)` is called by the engine before a declared risky
action runs. Without a token it records a pending approval (`gate_request`) and raises
`ApprovalRequired` naming it; an admin then `decide`s (`gate_decision`) and, on approval,
receives a token bound to the tenant, approval, action, parameters and expiry. Re-running the
action with that token checks all of it, spends the token (`gate_used`, unique in the ledger, so
a replay is refused even across processes) and lets the action run.

All state lives in ledger events (see `cortex.gate.approvals`): the gate object holds only its
settings and a lock, and reads the gate key file when it needs it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from ulid import ULID

from cortex.canonical import format_ts, parse_ts, to_micros
from cortex.errors import (
    ApprovalDenied,
    ApprovalExpired,
    ApprovalForeignTenant,
    ApprovalInvalid,
    ApprovalMismatch,
    ApprovalReplayed,
    ApprovalRequired,
    Conflict,
    Forbidden,
    GateFull,
    NotFound,
    ValidationError,
)
from cortex.gate.approvals import (
    GATE_ACTIONS,
    GATE_OPS,
    OP_DECISION,
    OP_REQUEST,
    OP_USED,
    Approval,
    fold_approvals,
)
from cortex.gate.tokens import TokenClaims, load_gate_key, params_digest, read_token, sign_token
from cortex.model import Transaction

__all__ = ["ApprovalGate", "Decision", "EventReader", "EventWriter"]

_APPROVAL_ID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
_READ_PAGE = 10_000
MAX_DECISION_REASON = 2000


class EventWriter(Protocol):
    """Appends one ledger event (the engine's `_append_event`)."""

    def __call__(
        self,
        op: str,
        subject: str | None,
        payload: Mapping[str, Any],
        *,
        tenant: str,
        actor: str | None = None,
        require_fact: bool = False,
        unique: bool = False,
    ) -> Awaitable[Transaction]: ...


class EventReader(Protocol):
    """Reads ledger events by op (the engine's `events`)."""

    def __call__(
        self,
        ops: Sequence[str],
        *,
        subject: str | None = None,
        after_seq: int = -1,
        limit: int = 1000,
        tenant: str | None = None,
    ) -> Awaitable[list[Transaction]]: ...


@dataclass(frozen=True, slots=True)
class Decision:
    """An admin's decision on an approval; `token` (shown once) when it was approved."""

    approval: Approval
    token: str | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the approval and the token (null after a denial)."""
        return {"approval": self.approval.to_dict(), "token": self.token}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        """A Decision from its `to_dict()` form (as the REST API returns it)."""
        return cls(Approval.from_dict(data["approval"]), data["token"])


def _now() -> datetime:
    return datetime.now(UTC)


class ApprovalGate:
    """Decides whether a risky action may run, and records requests and decisions."""

    def __init__(
        self,
        *,
        gated_actions: Sequence[str],
        ttl: float,
        max_pending: int,
        key_path: Path,
        append: EventWriter,
        read: EventReader,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._gated = frozenset(gated_actions)
        self._ttl = timedelta(seconds=ttl)
        self._max_pending = max_pending
        self._key_path = key_path
        self._append = append
        self._read = read
        self._clock = clock
        # Serialises this engine's requests, so that concurrent callers cannot all pass the
        # pending bound at once (other processes can still overshoot it by their own requests).
        self._request_lock = asyncio.Lock()

    def gates(self, action: str) -> bool:
        """True when `action` needs approval under these settings."""
        return action in self._gated

    async def _key(self) -> bytes:
        return await asyncio.to_thread(load_gate_key, self._key_path)

    async def check(
        self,
        action: str,
        params: Mapping[str, Any],
        token: str | None,
        *,
        tenant: str,
        actor: str | None,
    ) -> str | None:
        """Let `action` run: None when it is not gated, else the approval id its token spent.

        Without a token: ApprovalRequired (a pending approval is recorded, or the identical
        pending one reused). With one: the token's typed error if it does not allow exactly this
        action now (ApprovalInvalid, ApprovalForeignTenant, ApprovalMismatch, ApprovalExpired,
        ApprovalDenied, ApprovalReplayed).
        """
        if action not in GATE_ACTIONS:
            raise ValidationError(f"unknown gated action {action!r}")
        if action not in self._gated:
            return None
        key = await self._key()  # ConfigError (run `cortex init`) before anything is recorded
        digest = params_digest(params)
        if token is None:
            approval = await self._request(action, params, digest, tenant=tenant, actor=actor)
            raise ApprovalRequired(
                f"{action} needs an admin's approval: approval {approval.id} is pending until"
                f" {approval.expires_at}",
                approval_id=approval.id,
                action=action,
                expires_at=approval.expires_at,
                tenant=approval.tenant,
            )
        return await self._redeem(key, token, action, digest, tenant=tenant)

    async def _request(
        self,
        action: str,
        params: Mapping[str, Any],
        digest: str,
        *,
        tenant: str,
        actor: str | None,
    ) -> Approval:
        async with self._request_lock:
            pending = [a for a in await self.approvals(tenant) if a.state == "pending"]
            for approval in pending:
                if approval.action == action and approval.params_digest == digest:
                    return approval  # asked again before anyone decided: the same approval
            if len(pending) >= self._max_pending:
                raise GateFull(
                    f"tenant {tenant!r} already has {len(pending)} pending approvals (the limit,"
                    " gate_max_pending); approve or deny some (`cortex gate list`), or wait for"
                    " them to expire"
                )
            approval_id = str(ULID())
            expires_at = format_ts(to_micros(self._clock() + self._ttl))
            tx = await self._append(
                OP_REQUEST,
                approval_id,
                {
                    "action": action,
                    "params": dict(params),
                    "params_digest": digest,
                    "expires_at": expires_at,
                },
                tenant=tenant,
                actor=actor,
                unique=True,
            )
            (approval,) = fold_approvals(tenant, [tx], self._clock())
            return approval

    async def _redeem(
        self, key: bytes, token: str, action: str, digest: str, *, tenant: str
    ) -> str:
        claims = read_token(key, token)
        if claims.tenant != tenant:
            raise ApprovalForeignTenant(
                f"the approval token was issued for another tenant, not {tenant!r}"
            )
        if claims.action != action:
            raise ApprovalMismatch(f"the approval token allows {claims.action!r}, not {action!r}")
        if claims.params_digest != digest:
            raise ApprovalMismatch(
                f"the approval token allows {action} with other parameters than these"
                f" (approval {claims.approval} names what was approved)"
            )
        if self._clock() >= parse_ts(claims.expires_at):
            raise ApprovalExpired(
                f"approval {claims.approval} expired at {claims.expires_at}; request it again"
            )
        approval = await self._approval(claims.approval, tenant)
        if (approval.action, approval.params_digest, approval.expires_at) != (
            claims.action,
            claims.params_digest,
            claims.expires_at,
        ):
            raise ApprovalInvalid(
                f"the approval token does not match approval {approval.id} in the ledger"
            )
        if approval.state == "used":
            raise ApprovalReplayed(
                f"the token of approval {approval.id} was already used at {approval.used_at};"
                " a token runs its action once"
            )
        if approval.state == "denied":
            raise ApprovalDenied(f"approval {approval.id} was denied by {approval.decided_by}")
        if approval.state == "expired":
            raise ApprovalExpired(f"approval {approval.id} expired at {approval.expires_at}")
        if approval.state != "approved":
            raise ApprovalInvalid(f"approval {approval.id} has not been approved")
        try:
            await self._append(
                OP_USED, approval.id, {"action": action}, tenant=tenant, actor=None, unique=True
            )
        except Conflict:
            raise ApprovalReplayed(
                f"the token of approval {approval.id} was already used; a token runs its action"
                " once"
            ) from None
        return approval.id

    async def decide(
        self,
        approval_id: str,
        decision: str,
        reason: str | None,
        *,
        tenant: str,
        actor: str | None,
        forbid_self: bool = False,
    ) -> Decision:
        """Approve or deny a pending approval; on approval, the token that lets the action run.

        NotFound for an unknown id, ApprovalExpired when it expired, Conflict when it was already
        decided (also when another admin decided it at the same moment). With `forbid_self`,
        Forbidden when `actor` approves a request it made itself (denying stays allowed).
        """
        if decision not in ("approve", "deny"):
            raise ValidationError("decision must be 'approve' or 'deny'")
        if reason is not None and (
            not isinstance(reason, str) or len(reason) > MAX_DECISION_REASON
        ):
            raise ValidationError(
                f"reason must be text of at most {MAX_DECISION_REASON} characters"
            )
        key = await self._key() if decision == "approve" else None
        approval = await self._approval(approval_id, tenant)
        if approval.state == "expired":
            raise ApprovalExpired(
                f"approval {approval.id} expired at {approval.expires_at}; it can no longer be"
                " decided (run the action again to request a new one)"
            )
        if approval.state != "pending":
            raise Conflict(
                f"approval {approval.id} was already decided ({approval.state}"
                f" by {approval.decided_by})"
            )
        if (
            forbid_self
            and decision == "approve"
            and actor is not None
            and approval.requested_by == actor
        ):
            raise Forbidden(
                f"approval {approval.id} was requested by {actor}; another admin must approve"
                " it (four eyes; setting gate_self_approval allows it)"
            )
        try:
            tx = await self._append(
                OP_DECISION,
                approval.id,
                {"decision": decision, "reason": reason or None},
                tenant=tenant,
                actor=actor,
                unique=True,
            )
        except Conflict:
            raise Conflict(f"approval {approval.id} was already decided") from None
        if parse_ts(tx.ts) >= parse_ts(approval.expires_at):
            raise ApprovalExpired(f"approval {approval.id} expired at {approval.expires_at}")
        decided = await self._approval(approval.id, tenant)
        if key is None:
            return Decision(decided, None)
        claims = TokenClaims(
            tenant, approval.id, approval.action, approval.params_digest, approval.expires_at
        )
        return Decision(decided, sign_token(key, claims))

    async def _approval(self, approval_id: str, tenant: str) -> Approval:
        if not isinstance(approval_id, str) or not _APPROVAL_ID.fullmatch(approval_id):
            raise NotFound(f"no approval {approval_id!r} in tenant {tenant!r}")
        events = await self._read(GATE_OPS, subject=approval_id, tenant=tenant)
        folded = fold_approvals(tenant, events, self._clock())
        if not folded:
            raise NotFound(f"no approval {approval_id!r} in tenant {tenant!r}")
        return folded[0]

    async def approvals(self, tenant: str) -> list[Approval]:
        """Every approval of `tenant`, oldest first, with its state now."""
        events: list[Transaction] = []
        after = -1
        while True:
            page = await self._read(GATE_OPS, after_seq=after, limit=_READ_PAGE, tenant=tenant)
            events += page
            if len(page) < _READ_PAGE:
                break
            after = page[-1].seq
        return fold_approvals(tenant, events, self._clock())
