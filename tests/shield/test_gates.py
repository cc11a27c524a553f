"""The scanner's cheap gates skip work only: with or without them, every text scans the same."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cortex.errors import ShieldBlocked
from cortex.model import FactDraft
from cortex.shield import DETECTORS, Scanner, Shield, scan
from cortex.shield.detectors import Detector, _covering_keywords
from cortex.shield.scanner import CLEAN_TAGS_MAX

DATA = Path(__file__).resolve().parent.parent / "data" / "shield"
UNGATED = Scanner(
    tuple(dataclasses.replace(d, min_run=0, min_digits=0, shape="") for d in DETECTORS)
)
pieces = st.sampled_from(
    [
        "AKIAZ3XQ5PLM2RTY7UWN", "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", "jane.doe@acme.io",
        "DE89 3704 0044 0532 0130 00", "4111 1111 1111 1111", "+44 20 7123 4567",
        "(415) 555-0132", "2026-03-02", "p95 12 ms", 'password = "hunter2!"', "db_pass: x9$",
        "postgres://app:s3cret@db:5432/x", "Authorization: Bearer abcDEF123456789", "\n", " ",
        "résumé ٣٤٥٦٧٨٩", "\u00a0", "token", "=", ":", "eu-west-1",
    ]
)  # fmt: skip


def _fixture_texts() -> list[str]:
    lines = (DATA / "cases.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines]


def test_gated_and_ungated_scans_agree_on_every_fixture_case() -> None:
    for text in _fixture_texts():
        assert scan(text) == UNGATED.scan(text), text


@settings(max_examples=200, deadline=None)
@given(st.lists(pieces, max_size=10), st.sampled_from(["", " ", "\t", ";", "\u2003"]))
def test_gated_and_ungated_scans_agree_on_mixed_texts(parts: list[str], joiner: str) -> None:
    text = joiner.join(parts)

    assert scan(text) == UNGATED.scan(text)


def test_every_gate_is_met_by_the_shortest_value_its_detector_finds() -> None:
    # min_run must not exceed the length of any token a detector can find: check on the
    # fixture positives, where each detector's findings are known.
    for text in _fixture_texts():
        for finding in UNGATED.scan(text):
            detector = next(d for d in DETECTORS if d.kind == finding.kind)
            value = text[finding.start : finding.end]
            if detector.min_run and not any(c.isspace() for c in value):
                assert len(value) >= min(d.min_run for d in DETECTORS if d.kind == finding.kind), (
                    finding.kind,
                    value,
                )


def test_a_custom_detector_without_gates_runs_on_every_text() -> None:
    seen: list[str] = []

    def find(text: str):  # type: ignore[no-untyped-def]
        seen.append(text)
        return iter(())

    shield = Shield(detectors=(Detector("custom", "secret", find),))
    shield.inspect("plain words", tenant="t", project="p")

    assert seen == ["plain words"]


def _scan_detector_by_detector(text: str) -> tuple[object, ...]:
    """`scan` as it is defined: each detector whose keyword occurs in the text (lowered for
    `ignore_case` detectors) runs, with no shared pre-test and no other gate."""
    from cortex.shield.detectors import _low_diversity, _resolve

    candidates: list[tuple[int, int, int, Detector]] = []
    for priority, detector in enumerate(DETECTORS):
        haystack = text.lower() if detector.ignore_case else text
        if detector.keywords and not any(k in haystack for k in detector.keywords):
            continue
        for start, end in detector.find(text):
            if detector.category == "secret" and _low_diversity(text, start, end):
                continue
            candidates.append((priority, start, -end, detector))
    return _resolve(candidates) if candidates else ()


cased = st.sampled_from(
    [
        "PASSWORD = 'x9$Tq!zR2'", "Pwd=Qz8!x", "AUTHORIZATION: Basic dXNlcjpwYXNz",
        "SECRET_TOKEN: 7fG9!kLq2#", "ApI_KeY = 'aZ9$kq!2Lm'", "İ", "\u212a", "ß", "pass",
        "Private Key", "PRIVATE KEY", "MONGODB://u:Pa55w0rd!@h/db", "user@EXAMPLE.org",
        "a@b.io", "://", "@",
    ]
)  # fmt: skip


def test_the_shared_keyword_pretest_finds_what_each_detectors_own_test_finds() -> None:
    for text in _fixture_texts():
        assert scan(text) == _scan_detector_by_detector(text), text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(pieces, cased), max_size=8), st.sampled_from(["", " ", "\n", "="]))
def test_the_shared_keyword_pretest_agrees_on_mixed_case_texts(
    parts: list[str], joiner: str
) -> None:
    text = joiner.join(parts)

    assert scan(text) == _scan_detector_by_detector(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="apswdkeyoPRIVATE KY@:/", max_size=24))
def test_covering_keywords_are_held_by_every_text_holding_any_keyword(text: str) -> None:
    keywords = {k for d in DETECTORS for k in d.keywords}
    for folded in (False, True):
        own = {k for d in DETECTORS if d.ignore_case == folded for k in d.keywords}
        covering = _covering_keywords(d for d in DETECTORS if d.ignore_case == folded)
        assert set(covering) <= own <= keywords
        assert any(k in text for k in own) == any(k in text for k in covering), text


def test_a_shield_remembers_clean_tags_only_and_never_more_than_its_bound() -> None:
    shield = Shield()
    secret_tag = "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"
    many = [FactDraft(content="note", tags=(f"tag-{i}", "shared")) for i in range(5000)]

    shield.screen("acme", many)
    with pytest.raises(ShieldBlocked) as caught:
        shield.screen("acme", [FactDraft(content="note", tags=("shared", secret_tag))])

    assert caught.value.kind == "github_token"
    remembered = shield._clean_tags
    assert 0 < len(remembered) <= CLEAN_TAGS_MAX
    assert secret_tag not in remembered
    with pytest.raises(ShieldBlocked):  # the same tag again: still scanned, still blocked
        shield.screen("acme", [FactDraft(content="note", tags=(secret_tag,))])
