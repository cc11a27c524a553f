"""Checking a vote before it is logged: value, agent, reason (pure)."""

from __future__ import annotations

from typing import Any

from cortex.errors import ValidationError
from cortex.model import check_name

__all__ = ["MAX_VOTE_REASON", "VOTE_OP", "vote_payload"]

VOTE_OP = "vote"
MAX_VOTE_REASON = 2000


def vote_payload(value: object, agent: object, reason: object) -> tuple[str, dict[str, Any]]:
    """The agent (the entry's actor) and the canonical payload of a vote; ValidationError if bad.

    `value` must be the integer +1 or -1 (not a bool, not 1.0); `agent` a name like a source;
    `reason` None or 1-2000 characters (surrounding whitespace dropped).
    """
    if isinstance(value, bool) or not isinstance(value, int) or value not in (1, -1):
        raise ValidationError(f"a vote is +1 or -1, got {value!r}")
    name = check_name("agent", agent)
    if reason is not None:
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError("reason must be a non-empty string, or left out")
        if len(reason) > MAX_VOTE_REASON:
            raise ValidationError(
                f"reason is {len(reason)} characters; the limit is {MAX_VOTE_REASON}"
            )
        reason = reason.strip()
    return name, {"value": value, "reason": reason}
