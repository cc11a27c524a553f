"""The pure tally: periods, timeline units, gate outcomes, and bounds on what it keeps."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from cortex.model import Transaction
from cortex.report.tally import MAX_ACTORS, MAX_ITEMS, LedgerTally, Period, gate_status
from cortex.report.tally import parse_period as period

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _tx(
    seq: int, op: str, when: datetime, actor: str | None = "agent", **payload: object
) -> Transaction:
    return Transaction(
        tenant="t",
        seq=seq,
        op=op,
        subject=f"subject-{seq}",
        actor=actor,
        ts=when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        payload=payload,
        payload_digest=bytes(32),
        prev_hash=bytes(32),
        hash=bytes(32),
    )


def _fed(txs: list[Transaction], chosen: Period | None = None) -> LedgerTally:
    tally = LedgerTally(chosen or Period(), NOW)
    for tx in txs:
        tally.add(tx)
    return tally


def test_a_date_alone_includes_that_whole_day_and_an_instant_includes_itself() -> None:
    whole = period("2026-03-01", "2026-03-31")
    instant = period("2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z")

    assert whole.position("2026-02-28T23:59:59.999999Z") == -1
    assert whole.position("2026-03-01T00:00:00.000000Z") == 0
    assert whole.position("2026-03-31T23:59:59.999999Z") == 0
    assert whole.position("2026-04-01T00:00:00.000000Z") == 1
    assert instant.position("2026-03-01T11:00:00.000000Z") == 0
    assert instant.position("2026-03-01T11:00:00.000001Z") == 1
    assert period("1900-01-01", "9999-12-31") == Period()


@pytest.mark.parametrize(
    ("days", "unit", "buckets"),
    [(0, "day", 1), (30, "day", 31), (200, "week", 30), (800, "week", 115), (1500, "month", 50)],
)
def test_the_timeline_unit_follows_the_span_and_has_a_bucket_for_every_step(
    days: int, unit: str, buckets: int
) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    tally = _fed([_tx(0, "store", start), _tx(1, "vote", start + timedelta(days=days))])

    timeline = tally.activity()["timeline"]

    assert timeline["unit"] == unit
    assert len(timeline["buckets"]) == buckets
    assert sum(b["total"] for b in timeline["buckets"]) == 2
    if buckets > 1:
        assert timeline["buckets"][0]["by_op"] == {"store": 1}
        assert timeline["buckets"][-1]["by_op"] == {"vote": 1}
    if unit == "week":
        assert all(date.fromisoformat(b["start"]).weekday() == 0 for b in timeline["buckets"])


def test_more_than_4000_distinct_days_are_counted_by_month() -> None:
    start = datetime(2000, 1, 1, tzinfo=UTC)
    txs = [_tx(n, "store", start + timedelta(days=n)) for n in range(4500)]

    timeline = _fed(txs).activity()["timeline"]

    assert timeline["unit"] == "month"
    assert sum(b["total"] for b in timeline["buckets"]) == 4500
    assert timeline["buckets"][0] == {"start": "2000-01-01", "total": 31, "by_op": {"store": 31}}


def test_gate_outcomes_follow_decisions_uses_and_expiry() -> None:
    later = NOW + timedelta(days=1)
    earlier = NOW - timedelta(days=1)
    request = _tx(0, "gate_request", earlier, action="purge", expires_at="2026-06-02T00:00:00Z")
    expired = _tx(0, "gate_request", earlier, action="purge", expires_at="2026-05-31T00:00:00Z")
    approve = _tx(1, "gate_decision", earlier, decision="approve", reason=None)
    deny = _tx(1, "gate_decision", earlier, decision="deny", reason="no")
    odd = _tx(1, "gate_decision", earlier, decision="maybe")
    used = _tx(2, "gate_used", later, action="purge")

    assert gate_status(request, [], NOW) == "pending"
    assert gate_status(expired, [], NOW) == "expired"
    assert gate_status(expired, [approve], NOW) == "approved"
    assert gate_status(request, [approve, used], NOW) == "used"
    assert gate_status(request, [deny], NOW) == "denied"
    assert gate_status(request, [odd], NOW) == "unknown"


def test_lists_are_capped_with_a_count_of_the_rest() -> None:
    txs = [
        _tx(n, "key_rotate", NOW, kind="data", tenant="t", version=n) for n in range(MAX_ITEMS + 7)
    ]

    section = _fed(txs).rotation_section()

    assert section["count"] == MAX_ITEMS + 7
    assert len(section["items"]) == MAX_ITEMS
    assert section["more"] == 7


def test_actors_beyond_the_cap_are_summed_not_remembered() -> None:
    txs = [_tx(n, "store", NOW, actor=f"agent-{n}") for n in range(MAX_ACTORS + 5)]

    actors = _fed(txs).actors(listed=10)

    assert actors["count"] == MAX_ACTORS
    assert len(actors["items"]) == 10
    assert actors["more"] == MAX_ACTORS - 10
    assert actors["uncounted"] == {"entries": 5, "by_op": {"store": 5}}


def test_payloads_of_unexpected_shapes_are_counted_without_failing() -> None:
    txs = [
        _tx(0, "vote", NOW, value="up"),
        _tx(1, "vote", NOW, value=True),
        _tx(2, "purge", NOW, reason=7, approval=None),
        _tx(3, "key_rotate", NOW, kind=None, version="2"),
        _tx(4, "gate_request", NOW, action=None, expires_at="soon"),
    ]

    tally = _fed(txs)

    assert tally.vote_section()["invalid"] == 2
    assert tally.purge_section(1)["items"][0]["reason"] is None
    assert tally.rotation_section()["items"][0] == {
        "seq": 3,
        "ts": txs[3].ts,
        "kind": "unknown",
        "key_tenant": None,
        "version": None,
        "actor": "agent",
    }
    assert tally.gate()["by_status"]["pending"] == 1
