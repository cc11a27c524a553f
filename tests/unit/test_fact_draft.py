"""A draft's digest is the digest of the fact it becomes (what the stores log for it)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cortex.canonical import from_micros
from cortex.model import FactDraft

CREATED = 1_764_120_000_123_456  # microseconds


@pytest.mark.parametrize(
    "draft",
    [
        FactDraft("plain"),
        FactDraft(
            "with every field: café ✓",
            project="infra",
            fact_type="decision",
            tags=("db", "ops"),
            source="agent-7",
            confidence=0.75,
            valid_from=datetime(2026, 3, 3, 12, 0, tzinfo=UTC),
            valid_until=datetime(2026, 9, 1, tzinfo=UTC),
            meta={"turn": 4, "session": "s-1"},
        ),
    ],
)
@pytest.mark.parametrize("supersedes", [None, "01M8B5WT2R2TFCXYBGVTGD1DAM"])
def test_a_drafts_digest_is_its_facts_digest(draft: FactDraft, supersedes: str | None) -> None:
    fact = draft.as_fact(
        fact_id="01M8B5WT2R2TFCXYBGVTGD1DAN",
        tenant="acme",
        created=from_micros(CREATED),
        seq=7,
        supersedes=supersedes,
    )
    digest = draft.digest(fact_id=fact.id, tenant="acme", created_at=CREATED, supersedes=supersedes)
    assert digest == fact.digest()
    assert len(digest) == 32
