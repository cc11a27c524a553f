"""Approval tokens and the approval fold: pure functions, no store."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cortex.canonical import format_ts, to_micros
from cortex.errors import ApprovalInvalid
from cortex.gate import TokenClaims, fold_approvals, params_digest, read_token, sign_token
from cortex.model import Transaction

KEY = bytes(range(32))
CLAIMS = TokenClaims("acme", "01JQ3ZK4W8M2T6X9B1C5D7E0FG", "purge", "ab" * 32, "2031-01-01T00:00Z")


def test_a_token_reads_back_the_claims_it_was_signed_with() -> None:
    token = sign_token(KEY, CLAIMS)

    assert token.startswith("gate1.")
    assert read_token(KEY, token) == CLAIMS


def test_a_token_signed_with_another_key_is_refused() -> None:
    forged = sign_token(secrets.token_bytes(32), CLAIMS)

    with pytest.raises(ApprovalInvalid, match="signature"):
        read_token(KEY, forged)


def test_a_token_whose_claims_were_altered_is_refused() -> None:
    prefix, claims, mac = sign_token(KEY, CLAIMS).split(".")
    data = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    data["params_digest"] = "cd" * 32  # purge another fact with the same approval
    altered = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    with pytest.raises(ApprovalInvalid, match="signature"):
        read_token(KEY, f"{prefix}.{altered}.{mac}")


@pytest.mark.parametrize(
    "junk", ["", "gate1", "gate1..", "gate2.e30.AAAA", "gate1.e30.!!!", "x" * 5000, 17, None]
)
def test_malformed_tokens_are_refused_without_an_exception_of_another_kind(junk: object) -> None:
    with pytest.raises(ApprovalInvalid):
        read_token(KEY, junk)


@given(
    st.dictionaries(
        st.text(max_size=8), st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=8), max_size=6
    )
)
def test_the_params_digest_ignores_key_order(params: dict[str, object]) -> None:
    reordered = dict(reversed(list(params.items())))

    assert params_digest(params) == params_digest(reordered)
    assert len(params_digest(params)) == 64


def test_params_that_differ_have_different_digests() -> None:
    assert params_digest({"fact_id": "A", "reason": "r"}) != params_digest(
        {"fact_id": "B", "reason": "r"}
    )


def _tx(seq: int, op: str, subject: str, ts: datetime, payload: dict[str, object]) -> Transaction:
    return Transaction(
        "acme", seq, op, subject, "alice", format_ts(to_micros(ts)), payload, b"", b"", b""
    )


def test_the_fold_gives_each_request_its_state_now() -> None:
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    expires = format_ts(to_micros(t0 + timedelta(hours=1)))
    request = {"action": "purge", "params": {}, "params_digest": "00", "expires_at": expires}
    events = [
        _tx(0, "gate_request", "A", t0, request),
        _tx(1, "gate_request", "B", t0, request),
        _tx(2, "gate_request", "C", t0, request),
        _tx(3, "gate_request", "D", t0, request),
        _tx(4, "gate_decision", "B", t0, {"decision": "approve", "reason": None}),
        _tx(5, "gate_decision", "C", t0, {"decision": "deny", "reason": "no"}),
        _tx(6, "gate_decision", "D", t0, {"decision": "approve", "reason": None}),
        _tx(7, "gate_used", "D", t0, {"action": "purge"}),
        # a second decision (refused by the store's unique check) would not count either
        _tx(8, "gate_decision", "C", t0, {"decision": "approve", "reason": None}),
    ]

    now = {a.id: a.state for a in fold_approvals("acme", events, t0 + timedelta(minutes=5))}
    later = {a.id: a.state for a in fold_approvals("acme", events, t0 + timedelta(hours=2))}

    assert now == {"A": "pending", "B": "approved", "C": "denied", "D": "used"}
    assert later == {"A": "expired", "B": "expired", "C": "denied", "D": "used"}


def test_a_decision_logged_after_the_expiry_does_not_count() -> None:
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    expires = format_ts(to_micros(t0 + timedelta(seconds=1)))
    request = {"action": "export", "params": {}, "params_digest": "00", "expires_at": expires}
    events = [
        _tx(0, "gate_request", "A", t0, request),
        _tx(1, "gate_decision", "A", t0 + timedelta(seconds=2), {"decision": "approve"}),
    ]

    (approval,) = fold_approvals("acme", events, t0 + timedelta(seconds=1.5))

    assert (approval.state, approval.decision) == ("expired", None)
