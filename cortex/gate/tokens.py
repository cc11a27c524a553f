"""Approval tokens: HMAC-SHA256 signed, base64url text binding one approved action (pure).

A token is `gate1.<claims>.<mac>`: `claims` is the base64url (unpadded) canonical JSON of
`{"v", "tenant", "approval", "action", "params_digest", "expires_at"}` and `mac` the base64url
HMAC-SHA256, under the gate key, of `gate1.<claims>`. `read_token` checks the MAC in constant
time (`hmac.compare_digest`) before it reads a single claim, so an altered or forged token never
gets as far as being parsed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cortex.canonical import canonical_json
from cortex.crypto.keys import read_private_file
from cortex.errors import ApprovalInvalid, ConfigError

__all__ = [
    "GATE_KEY_BYTES",
    "TOKEN_PREFIX",
    "TokenClaims",
    "load_gate_key",
    "params_digest",
    "read_token",
    "sign_token",
]

GATE_KEY_BYTES = 32
TOKEN_PREFIX = "gate1"
_VERSION = 1
_MAX_TOKEN_CHARS = 4096


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What an approval token binds: who may run what, with which parameters, until when."""

    tenant: str
    approval: str
    action: str
    params_digest: str
    expires_at: str

    def to_dict(self) -> dict[str, Any]:
        """The claims as signed (with the format version)."""
        return {
            "v": _VERSION,
            "tenant": self.tenant,
            "approval": self.approval,
            "action": self.action,
            "params_digest": self.params_digest,
            "expires_at": self.expires_at,
        }


def params_digest(params: Mapping[str, Any]) -> str:
    """SHA-256 (lowercase hex) of the canonical JSON (RFC 8785) of an action's parameters."""
    return hashlib.sha256(canonical_json(dict(params))).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, signed: str) -> bytes:
    return hmac.new(key, signed.encode(), hashlib.sha256).digest()


def sign_token(key: bytes, claims: TokenClaims) -> str:
    """The token for `claims`, signed with the gate key."""
    signed = f"{TOKEN_PREFIX}.{_b64(canonical_json(claims.to_dict()))}"
    return f"{signed}.{_b64(_mac(key, signed))}"


def read_token(key: bytes, token: object) -> TokenClaims:
    """The claims of a token whose MAC verifies under `key`; ApprovalInvalid otherwise.

    Checks only the token itself (format and signature); the caller checks the claims against
    the action being run and the ledger.
    """
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_CHARS:
        raise ApprovalInvalid("the approval token is malformed")
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise ApprovalInvalid("the approval token is malformed (expected gate1.<claims>.<mac>)")
    try:
        mac = _unb64(parts[2])
    except (binascii.Error, ValueError):
        raise ApprovalInvalid("the approval token is malformed") from None
    if not hmac.compare_digest(mac, _mac(key, f"{parts[0]}.{parts[1]}")):
        raise ApprovalInvalid(
            "the approval token's signature does not verify: it was altered, or not issued by"
            " this CORTEX's gate key"
        )
    try:
        data = json.loads(_unb64(parts[1]))
        if data.get("v") != _VERSION:
            raise ValueError(f"unknown token version {data.get('v')!r}")
        return TokenClaims(
            tenant=str(data["tenant"]),
            approval=str(data["approval"]),
            action=str(data["action"]),
            params_digest=str(data["params_digest"]),
            expires_at=str(data["expires_at"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        # Signed by our key yet unreadable: only a bug (or a stolen key) produces this.
        raise ApprovalInvalid(f"the approval token's claims are unreadable: {exc}") from exc


def load_gate_key(path: Path) -> bytes:
    """The gate key file's 32 bytes; ConfigError (run `cortex init`) when missing or unfit."""
    data = read_private_file(
        path,
        "the approval gate key",
        f"the approval gate key {path} is missing: run `cortex init` on this data directory"
        f" ({path.parent.parent}) to create it; gated actions cannot run without it",
    )
    if len(data) != GATE_KEY_BYTES:
        raise ConfigError(
            f"the approval gate key {path} holds {len(data)} bytes, not {GATE_KEY_BYTES};"
            " restore it from backup"
        )
    return data
