"""Scanning and redaction: spans, overlap resolution, and redacted text that scans clean."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cortex.config import ShieldRule
from cortex.errors import ShieldBlocked
from cortex.model import FactDraft
from cortex.shield import REDACTIONS_KEY, SYNTAXES, Shield, position, redact, scan

SECRETS = {
    "aws_access_key": "AKIAZ3XQ5PLM2RTY7UWN",
    "github_token": "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",
    "stripe_key": "sk_live_ReTllpYQYfIZu2Jnf2lAPFjD",
    "email": "jane.doe@acme-corp.io",
    "iban": "DE89 3704 0044 0532 0130 00",
    "payment_card": "4111 1111 1111 1111",
    "phone": "+44 20 7123 4567",
}
pieces = st.sampled_from(
    [*SECRETS.values(), "the deploy moved to db-2", 'password = "hunter2!"', "\n", " ", "id 42"]
)


@pytest.mark.parametrize(("kind", "value"), sorted(SECRETS.items()))
def test_each_value_is_found_with_its_kind_and_exact_span(kind: str, value: str) -> None:
    text = f"note: {value} (from the incident call)"

    (finding,) = scan(text)

    assert finding.kind == kind
    assert text[finding.start : finding.end] == value


def test_a_vendor_token_inside_a_password_assignment_is_reported_once_as_the_vendor_kind() -> None:
    text = 'password = "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"'

    assert [f.kind for f in scan(text)] == ["github_token"]


@settings(max_examples=60, deadline=None)
@given(st.lists(pieces, max_size=12))
def test_findings_never_overlap_and_redacted_text_scans_clean(parts: list[str]) -> None:
    text = " ".join(parts)

    findings = scan(text)
    cleaned = redact(text, findings)

    assert all(a.end <= b.start for a, b in itertools.pairwise(findings))
    assert scan(cleaned) == ()
    for value in SECRETS.values():
        assert value not in cleaned


def test_position_is_one_based_line_and_column() -> None:
    assert position("ab\ncd", 4) == (2, 2)
    assert position("abc", 0) == (1, 1)


def test_blocked_error_names_kind_and_position_but_never_the_value() -> None:
    shield = Shield()
    draft = FactDraft(content=f"line one\nkey {SECRETS['aws_access_key']}")

    with pytest.raises(ShieldBlocked) as caught:
        shield.screen("acme", [draft])

    error = caught.value
    assert (error.kind, error.category, error.field) == ("aws_access_key", "secret", "content")
    assert (error.line, error.column, error.item) == (2, 5, None)
    assert SECRETS["aws_access_key"] not in str(error)


def test_batch_errors_name_the_item_and_field() -> None:
    drafts = [
        FactDraft(content="fine"),
        FactDraft(content="ok", meta={"db": {"url": SECRETS["github_token"]}}),
    ]

    with pytest.raises(ShieldBlocked) as caught:
        Shield().screen("acme", drafts)

    assert (caught.value.item, caught.value.field) == (1, "meta.db.url")


def test_redact_policy_rewrites_content_tags_and_meta_and_records_kinds() -> None:
    shield = Shield((ShieldRule("pii", "redact"), ShieldRule("secret", "redact")))
    draft = FactDraft(
        content=f"Refund {SECRETS['iban']} for {SECRETS['email']}",
        tags=("vip", SECRETS["email"]),
        meta={"contact": [SECRETS["phone"]], "n": 3, REDACTIONS_KEY: ["stale"]},
    )

    (out,) = shield.screen("acme", [draft])

    assert out.content == "Refund [REDACTED:iban] for [REDACTED:email]"
    assert "[REDACTED:email]" in out.tags
    assert out.meta["contact"] == ["[REDACTED:phone]"]
    assert out.meta["n"] == 3
    assert out.meta[REDACTIONS_KEY] == ["email", "iban", "phone"]


def test_clean_drafts_pass_through_unchanged_and_stale_redaction_marks_are_dropped() -> None:
    clean = FactDraft(content="The staging database moved to db-2.")
    inherited = FactDraft(content="new text", meta={REDACTIONS_KEY: ["email"], "a": 1})

    out_clean, out_inherited = Shield().screen("acme", [clean, inherited])

    assert out_clean is clean
    assert dict(out_inherited.meta) == {"a": 1}


RANDOM_VALUE = "m{{h}o)p${e]nob(ody[finds>-_$#thisone}}"


@pytest.mark.parametrize(
    ("line", "as_text", "as_code", "as_c"),
    [
        (f"passwd = {RANDOM_VALUE};", True, False, False),  # a bare value: a name in code
        (f"api_key = '{RANDOM_VALUE}';", True, True, False),  # a character literal in C
        (f'apikey = "{RANDOM_VALUE}";', True, True, True),
        (f'password = @"{RANDOM_VALUE}";', True, True, True),  # Objective-C's NSString
        (f"api_key: `{RANDOM_VALUE}`", True, True, False),
        (f'if ("{RANDOM_VALUE}" == password) {{', True, True, True),
        (f'std::string secret("{RANDOM_VALUE}");', True, True, True),
    ],
)
def test_in_source_code_only_a_string_literal_is_an_assigned_secret(
    line: str, as_text: bool, as_code: bool, as_c: bool
) -> None:
    def found(syntax: Any) -> bool:
        return any(f.kind == "generic_secret" for f in scan(line, syntax=syntax))

    assert (found("text"), found("code"), found("c")) == (as_text, as_code, as_c)


def test_syntax_changes_only_the_assignment_detector() -> None:
    text = f"aws = {SECRETS['aws_access_key']}; mail = {SECRETS['email']}; passwd = x9Qz!rT4#kLm"
    kinds = {syntax: [f.kind for f in scan(text, syntax=syntax)] for syntax in SYNTAXES}

    assert kinds["text"] == ["aws_access_key", "email", "generic_secret"]
    assert kinds["code"] == kinds["c"] == ["aws_access_key", "email"]
