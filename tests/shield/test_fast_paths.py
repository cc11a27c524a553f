# ruff: noqa: E501  (the patterns read best on one line each)
"""The scanner's fast paths find exactly what the plain patterns they replace would find."""

from __future__ import annotations

import json
import re
from pathlib import Path

import phonenumbers
from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
from hypothesis import given, settings
from hypothesis import strategies as st

from cortex.shield import scan
from cortex.shield.detectors import (
    _PHONE_DIGITS,
    DETECTORS,
    _anchored,
    _check,
    _find_discord_tokens,
    _find_telegram_tokens,
    _nanp_possible,
    _phone_chars,
    _phone_digits,
    _regex,
)
from cortex.shield.validators import iban_valid, payment_card_valid

DATA = Path(__file__).resolve().parent.parent / "data" / "shield"
TOKEN_BEFORE = r"(?<![\w\-])"
TOKEN_AFTER = r"(?![\w\-])"


def _fixture_texts() -> list[str]:
    lines = (DATA / "cases.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines]


# (pattern, anchors, offset, ignore_case, group): the anchored detectors of detectors.py.
ANCHORED: list[tuple[str, tuple[str, ...], int, bool, int | str]] = [
    (r"(?<![\w~.\-])[A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}(?![\w~.\-])", ("Q~",), 4, False, 0),
    (r"(?<![A-Za-z0-9])[0-9a-f]{32}-us\d{1,2}(?![A-Za-z0-9])", ("-us",), 32, False, 0),
    (r"(?<![A-Za-z0-9])(?:AC|SK)[0-9a-f]{32}(?![A-Za-z0-9])", ("AC", "SK"), 0, False, 0),
    (rf"{TOKEN_BEFORE}(?:sk|rk)_(?:live|test)_[0-9a-zA-Z]{{24,247}}{TOKEN_AFTER}", ("k_live_", "k_test_"), 1, False, 0),
    (r"(?i:authorization)\s*[:=]\s*[\"']?(?i:basic|bearer|token)\s+(?P<value>[A-Za-z0-9+/_~.\-]{8,512}={0,2})", ("authorization",), 0, True, "value"),
    (r"(?i)[?&](?:password|pwd|passwd|pass)=(?P<value>[^&\s#'\"]{1,256})", ("pass", "pwd="), 1, True, "value"),
]  # fmt: skip
pieces = st.sampled_from(
    [
        "x", "-", "&", "?", " ", "\n", "Q~", "8Q~", "abc8Q~", "-us1", "-us12", "AC", "SK", "sk_",
        "rk_", "live_", "test_", "Authorization", "AUTHORIZATION: ", "Bearer ", "token ", "pass=",
        "?password=", "&PWD=", "0123456789abcdef", "0123456789abcdef0123456789abcdef", "AAbb",
        "İ", "ß", "K", ":AA", "12345678", "1234567890", ":",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(pieces, max_size=24))
def test_anchored_finders_match_a_plain_left_to_right_search(parts: list[str]) -> None:
    text = "".join(parts)
    for pattern, anchors, offset, ignore_case, group in ANCHORED:
        fast = _anchored(pattern, *anchors, offset=offset, ignore_case=ignore_case, group=group)
        assert list(fast(text)) == list(_regex(pattern, group=group)(text)), (pattern, text)


def test_anchored_finders_match_a_plain_search_on_every_fixture_case() -> None:
    for text in _fixture_texts():
        for pattern, anchors, offset, ignore_case, group in ANCHORED:
            fast = _anchored(pattern, *anchors, offset=offset, ignore_case=ignore_case, group=group)
            assert list(fast(text)) == list(_regex(pattern, group=group)(text))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["1234567890", "12345678", "123", ":", "AA", "x" * 32, "Y" * 33, "_", " "]),
        max_size=10,
    )
)
def test_telegram_finder_matches_the_detect_secrets_pattern(parts: list[str]) -> None:
    text = "".join(parts)
    reference = _regex(
        rf"(?<![\w:])(?:{TelegramBotTokenDetector.denylist[0].pattern}){TOKEN_AFTER}",
        rf"(?<![\w:])\d{{8,10}}:AA[0-9A-Za-z_\-]{{32}}{TOKEN_AFTER}",
    )

    assert sorted(_find_telegram_tokens(text)) == sorted(set(reference(text)))


DISCORD = _regex(
    rf"{TOKEN_BEFORE}[MNO][a-zA-Z\d_\-]{{23,25}}\.[a-zA-Z\d_\-]{{6}}\.[a-zA-Z\d_\-]{{27,38}}{TOKEN_AFTER}"
)
# The card and IBAN patterns as plain searches (ASCII digits, as the shaped finders read them).
CARD = _regex(
    r"[0-9](?<![0-9\-.][0-9])(?=[0-9 \-]{11})(?:[ \-]?[0-9]){11,18}(?![0-9\-]|\.[0-9])",
    check=_check(payment_card_valid),
    overlapping=True,
)
IBAN = _regex(
    r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z][0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])",
    check=_check(iban_valid),
    overlapping=True,
)
SHAPED = {"payment_card": CARD, "iban": IBAN}
head = "MTAzNDU2Nzg5MDEyMzQ1Njc4"  # 24 characters (a Discord token's head has 24 to 26)
shaped_pieces = st.sampled_from(
    [
        head, "O" + head[2:], "N", "x", "_", "-", ".", ". ", " ", "\n", "é", "٣", "€", "?",
        "GhJkLm", ".GhJkLm.", "a" * 27, "b" * 38, "Zz9_-" * 7,
        *(h + ".GhJkLm." + "a" * 27 for h in (head[1:], head, head + "z", head + "-٣", head + "9_-")),
        "4111 1111 1111 1111", "4111111111111111", "5500-0000-0000-0004", "378282246310005",
        "3782 822463 10005", "4111-1111", "1111", "0", "1", "9", "12.5",
        "DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "NL91ABNA0417164300", "DE", "89",
        "AB12", "A",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(shaped_pieces, max_size=16))
def test_discord_card_and_iban_finders_match_their_plain_patterns(parts: list[str]) -> None:
    text = "".join(parts)
    assert list(_find_discord_tokens(text)) == list(DISCORD(text)), text
    for detector in DETECTORS:
        if detector.kind in SHAPED:
            assert list(detector.find(text)) == list(SHAPED[detector.kind](text)), text


def test_discord_card_and_iban_finders_match_their_plain_patterns_on_every_fixture_case() -> None:
    finders = {d.kind: d.find for d in DETECTORS if d.kind in SHAPED}
    found = 0
    for text in [*_fixture_texts(), "\n".join(_fixture_texts())]:
        assert list(_find_discord_tokens(text)) == list(DISCORD(text))
        for kind, plain in SHAPED.items():
            spans = list(finders[kind](text))
            assert spans == list(plain(text))
            found += len(spans)
    assert found > 20


phone_pieces = st.sampled_from(
    [
        "+1 ", "(206) 811-1792", "+33 1 53 77 87 69", "555-0101", "phone: ", "2026-02-05",
        "10.2.0.7", "٣", "é", "?", ":", "/", "@", "x", " ", "-", ".", "(", ")", "+", "0", "12",
        "1234", "415 555 2671", "\n", "4111 1111 1111 1111",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(phone_pieces, max_size=14))
def test_phone_digits_are_those_of_a_plain_search_from_every_start(parts: list[str]) -> None:
    text = "".join(parts)
    chars = _phone_chars(text)
    for start in range(len(text) + 1):
        plain = _PHONE_DIGITS.search(text, start)
        assert _spans(_phone_digits(text, chars, start)) == _spans(plain), start


def test_phone_digits_are_those_of_a_plain_search_on_every_fixture_case() -> None:
    found = 0
    for text in _fixture_texts():
        chars = _phone_chars(text)
        start = 0
        while (match := _phone_digits(text, chars, start)) is not None:
            assert _spans(match) == _spans(_PHONE_DIGITS.search(text, start))
            start = match.start() + 1
            found += 1
        assert _PHONE_DIGITS.search(text, start) is None
    assert found > 50


def _spans(match: re.Match[str] | None) -> tuple[int, int] | None:
    return None if match is None else match.span()


@settings(max_examples=2_000, deadline=None)
@given(st.text(alphabet="0123456789", min_size=7, max_size=15), st.integers(0, 4))
def test_nanp_precheck_never_rejects_a_number_phonenumbers_accepts(
    digits: str, leading_ones: int
) -> None:
    candidate = ("1" * leading_ones + digits)[:15]
    try:
        valid = phonenumbers.is_valid_number(phonenumbers.parse(candidate, "US"))
    except phonenumbers.NumberParseException:
        valid = False

    assert _nanp_possible(candidate) or not valid


def test_a_large_text_scans_like_its_parts_one_by_one() -> None:
    # Far enough apart that no detector's context window spans two parts; a PEM block cut off
    # before its END line runs on over the whitespace that follows, so those stay out.
    separator = "\n\n" + "|" * 400 + "\n\n"
    texts = [t for t in _fixture_texts() if "-----BEGIN" not in t or "-----END" in t] * 3
    expected: list[tuple[str, int, int]] = []
    offset = 0
    for text in texts:
        expected.extend((f.kind, f.start + offset, f.end + offset) for f in scan(text))
        offset += len(text) + len(separator)

    found = scan(separator.join(texts))

    assert [(f.kind, f.start, f.end) for f in found] == expected
    assert len(found) > 500
