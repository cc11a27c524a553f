"""The approval gate: declared risky actions wait for an admin's yes (see docs/gate.md)."""

from cortex.gate.approvals import GATE_ACTIONS, Approval, ApprovalState, fold_approvals
from cortex.gate.gate import ApprovalGate, Decision
from cortex.gate.tokens import TokenClaims, load_gate_key, params_digest, read_token, sign_token

__all__ = [
    "GATE_ACTIONS",
    "Approval",
    "ApprovalGate",
    "ApprovalState",
    "Decision",
    "TokenClaims",
    "fold_approvals",
    "load_gate_key",
    "params_digest",
    "read_token",
    "sign_token",
]
