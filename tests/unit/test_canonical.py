"""The fast canonical encoders produce exactly the bytes of RFC 8785 (checked against rfc8785)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from cortex.canonical import (
    StampText,
    canonical_json,
    canonical_record,
    canonical_text,
    entry_bytes,
    fact_record_bytes,
    format_ts,
    from_micros,
    parse_ts,
    to_micros,
)
from cortex.errors import ValidationError

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
hexes = st.binary(min_size=32, max_size=32).map(bytes.hex)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)


@given(
    tenant=text,
    seq=st.integers(min_value=0, max_value=2**53 - 1),
    op=text,
    subject=st.none() | text,
    actor=st.none() | text,
    micros=st.integers(min_value=0, max_value=2**50),
    payload_digest=hexes,
    prev_hash=hexes,
)
def test_entry_bytes_equal_rfc8785(
    tenant: str,
    seq: int,
    op: str,
    subject: str | None,
    actor: str | None,
    micros: int,
    payload_digest: str,
    prev_hash: str,
) -> None:
    fields = {
        "tenant": tenant,
        "seq": seq,
        "op": op,
        "subject": subject,
        "actor": actor,
        "ts": format_ts(micros),
        "payload_digest": payload_digest,
        "prev_hash": prev_hash,
    }
    assert entry_bytes(**fields) == rfc8785.dumps(fields)  # type: ignore[arg-type]


@given(st.dictionaries(text, json_values, max_size=8))
def test_canonical_record_equals_rfc8785_for_any_json_object(record: dict[str, object]) -> None:
    assert canonical_record(record) == rfc8785.dumps(record)


@given(st.floats(min_value=0.0, max_value=1.0))
def test_canonical_record_formats_confidences_like_ecmascript(value: float) -> None:
    assert canonical_record({"confidence": value}) == rfc8785.dumps({"confidence": value})


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), {1: "x"}, object()])
def test_values_without_canonical_form_are_validation_errors(bad: object) -> None:
    with pytest.raises(ValidationError):
        canonical_json({"x": bad})


@given(st.integers(min_value=0, max_value=253402300799999999))
def test_micros_round_trip_through_datetime_and_text(micros: int) -> None:
    assert to_micros(from_micros(micros)) == micros
    assert to_micros(parse_ts(format_ts(micros))) == micros


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-03", datetime(2026, 3, 3, tzinfo=UTC)),
        ("2026-03-03T12:00:00Z", datetime(2026, 3, 3, 12, tzinfo=UTC)),
        ("2026-03-03T14:00:00+02:00", datetime(2026, 3, 3, 12, tzinfo=UTC)),
    ],
)
def test_parse_ts_accepts_dates_and_offsets(text: str, expected: datetime) -> None:
    assert parse_ts(text) == expected


def test_parse_ts_rejects_prose_with_a_hint() -> None:
    with pytest.raises(ValidationError, match="ISO 8601"):
        parse_ts("last tuesday")


ids = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=30)


@given(
    content=text,
    tags=st.lists(text, max_size=4),
    source=st.none() | text,
    confidence=st.none() | st.floats(min_value=0.0, max_value=1.0),
    valid_until=st.none() | st.integers(min_value=0, max_value=2**53 - 1),
    supersedes=st.none() | ids,
    meta=st.dictionaries(text, json_values, max_size=4),
)
def test_fact_record_bytes_equal_rfc8785_of_the_fact_record(
    content: str,
    tags: list[str],
    source: str | None,
    confidence: float | None,
    valid_until: int | None,
    supersedes: str | None,
    meta: dict[str, object],
) -> None:
    record = {
        "id": "01K000",
        "tenant": "acme",
        "project": "p",
        "content": content,
        "fact_type": "knowledge",
        "tags": tags,
        "source": source,
        "confidence": confidence,
        "valid_from": 1,
        "valid_until": valid_until,
        "supersedes": supersedes,
        "created_at": 2,
        "meta": meta,
    }
    fast = fact_record_bytes(
        **{k: v for k, v in record.items() if k not in ("tags", "meta")},  # type: ignore[arg-type]
        tags_json=canonical_json(tags).decode(),
        meta_json=canonical_json(meta).decode(),
    )
    assert fast == rfc8785.dumps(record)


@pytest.mark.parametrize(
    "bad",
    [
        {"n": 2**53},
        {"deep": {"x": [1.0, float("nan")]}},
        {"s": "lone \ud800 surrogate"},
        ["tag", "\udfff"],
        {"when": datetime(2026, 1, 1)},
    ],
)
def test_fast_paths_reject_what_rfc8785_rejects(bad: object) -> None:
    with pytest.raises(ValidationError):
        canonical_json(bad)
    with pytest.raises(ValidationError):
        canonical_text(bad)


@given(json_values | st.lists(text, max_size=5).map(tuple))
def test_canonical_text_is_the_canonical_bytes_as_text(value: object) -> None:
    assert canonical_text(value) == rfc8785.dumps(value).decode()


@given(st.dictionaries(text, json_values, max_size=6))
def test_canonical_json_equals_rfc8785_for_any_json_object(value: dict[str, object]) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def _ulid_by_base64(micros: int, random_bits: int) -> str:
    """The id as first written: RFC 4648 base32 of the 128 bits, mapped to Crockford's."""
    import base64

    millis, rest = divmod(micros, 1000)
    value = (millis << 80) | (rest << 70) | random_bits
    to_crockford = bytes.maketrans(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    )
    return base64.b32encode((value << 6).to_bytes(17, "big"))[:26].translate(to_crockford).decode()


def test_new_fact_id_writes_ids_as_before_and_they_sort_by_time() -> None:
    import random

    from cortex.canonical import new_fact_id

    rng = random.Random(7)
    cases = [(0, 0), (1, 1), (2**57 - 1, 2**70 - 1), (1_764_140_000_000_000, 0)]
    cases += [(rng.getrandbits(57), rng.getrandbits(70)) for _ in range(5000)]
    for micros, bits in cases:
        fid = new_fact_id(micros, bits)
        assert len(fid) == 26
        assert fid == _ulid_by_base64(micros, bits), (micros, bits)
    stamps = sorted(rng.getrandbits(52) for _ in range(500))
    ids = [new_fact_id(t, rng.getrandbits(70)) for t in stamps]
    assert ids == sorted(ids)


@given(st.lists(st.integers(min_value=0, max_value=253402300799999999), max_size=30))
def test_stamp_text_equals_format_ts_in_any_order(stamps: list[int]) -> None:
    stamp_text = StampText()
    near = [s + d for s in stamps[:3] for d in (0, 1, 999_999, 1_000_000)]  # same, next second

    assert [stamp_text(s) for s in [*stamps, *near]] == [format_ts(s) for s in [*stamps, *near]]
