"""Checksums and value checks behind the detectors: Luhn, IBAN mod 97, JWT shape, placeholders."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cortex.shield.validators import (
    iban_valid,
    is_placeholder,
    jwt_valid,
    luhn_valid,
    payment_card_valid,
    shannon_entropy,
)


def _luhn_digit(partial: str) -> str:
    for digit in "0123456789":
        if luhn_valid(partial + digit):
            return digit
    raise AssertionError("no Luhn digit")


@given(st.text(alphabet="0123456789", min_size=1, max_size=18))
def test_exactly_one_luhn_check_digit_completes_any_number(partial: str) -> None:
    valid = [d for d in "0123456789" if luhn_valid(partial + d)]

    assert len(valid) == 1


@given(st.text(alphabet="0123456789", min_size=14, max_size=14), st.integers(0, 14))
def test_changing_one_digit_of_a_visa_number_breaks_its_luhn_check(body: str, at: int) -> None:
    number = "4" + body + _luhn_digit("4" + body)
    assert payment_card_valid(number)
    changed = number[:at] + str((int(number[at]) + 1) % 10) + number[at + 1 :]

    assert not luhn_valid(changed)


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("4111 1111 1111 1111", True),
        ("3714-496353-98431", True),
        ("5555555555554444", True),
        ("4111 1111 1111 1112", False),  # Luhn
        ("9111111111111111", False),  # no brand starts with 9
        ("4111 11111111 1111", False),  # implausible grouping
    ],
)
def test_payment_card_numbers_need_brand_length_luhn_and_grouping(text: str, valid: bool) -> None:
    assert payment_card_valid(text) is valid


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("DE89 3704 0044 0532 0130 00", True),
        ("GB82WEST12345698765432", True),
        ("DE88 3704 0044 0532 0130 00", False),  # check digits
        ("DE89 3704 0044 0532 0130", False),  # length for DE
        ("QQ89370400440532013000", False),  # no such country
    ],
)
def test_iban_needs_country_length_and_mod_97(text: str, valid: bool) -> None:
    assert iban_valid(text) is valid


def _b64(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_jwt_needs_json_header_with_alg_and_json_payload() -> None:
    header, payload = _b64({"alg": "HS256", "typ": "JWT"}), _b64({"sub": "1"})

    assert jwt_valid(f"{header}.{payload}.c2lnbmF0dXJl")
    assert not jwt_valid(f"{_b64({'kid': 'x'})}.{payload}.sig")
    assert not jwt_valid(f"{header}.bm90IGpzb24.sig")


def _b64_raw(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_jwt_with_a_damaged_byte_in_a_whole_header_counts_but_a_cut_off_header_does_not() -> None:
    payload = _b64({"sub": "1"})
    damaged = _b64_raw(b'{"alg":"HS256",\x12typ":"JWT"}')
    cut_off = _b64_raw(b'{"alg":"HS256","typ":"JWT"')

    assert jwt_valid(f"{damaged}.{payload}.sig")
    assert not jwt_valid(f"{cut_off}.{payload}.sig")
    assert not jwt_valid(f"{damaged}.bm90IGpzb24.sig")


@pytest.mark.parametrize(
    "value",
    ["${DB_PASSWORD}", "{{ token }}", "<your-key>", "********", "xxxxxxxx", "changeme",
     "os.environ['X']", "get_password()", "config.secret", "[REDACTED:email]", "null"],
)  # fmt: skip
def test_placeholders_are_recognised(value: str) -> None:
    assert is_placeholder(value)


@pytest.mark.parametrize("value", ["hunter2!", "Falcon42#maple", "open sesame", "9f8Jk2Lm3Qp"])
def test_real_looking_values_are_not_placeholders(value: str) -> None:
    assert not is_placeholder(value)


def test_entropy_is_zero_for_one_symbol_and_log2_n_for_n_distinct() -> None:
    assert shannon_entropy("aaaa") == 0
    assert shannon_entropy("abcd") == pytest.approx(2.0)
    assert shannon_entropy("") == 0
