# ruff: noqa: E501  (the patterns read best on one line each)
"""The scanner's fast paths find exactly what the plain patterns they replace would find."""

from __future__ import annotations

import json
from pathlib import Path

import phonenumbers
from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
from hypothesis import given, settings
from hypothesis import strategies as st

from cortex.shield import scan
from cortex.shield.detectors import (
    _anchored,
    _find_telegram_tokens,
    _nanp_possible,
    _regex,
)

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
