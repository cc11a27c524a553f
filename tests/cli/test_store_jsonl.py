"""`cortex store --file`: a JSONL file is validated completely, then stored in chunks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cortex.cli import facts
from cortex.cli.jsonl import read_fact_drafts
from cortex.errors import ValidationError
from tests.cli.invoke import Cli, as_json, ok

pytestmark = pytest.mark.usefixtures("initialised")


def _jsonl(*items: object) -> str:
    return "".join(json.dumps(item) + "\n" for item in items)


def test_a_jsonl_file_is_stored_and_its_ids_printed_in_order(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "facts.jsonl"
    path.write_text(
        _jsonl(
            {"content": "one", "project": "infra", "tags": ["a"]},
            {"content": "two", "fact_type": "procedure", "valid_from": "2026-01-01"},
            {"content": "three", "meta": {"n": 3}, "confidence": 0.5},
        )
    )

    ids = ok(cli("store", "--file", str(path))).stdout.split()
    items = as_json(cli("list", "--json"))["items"]

    assert [item["id"] for item in items] == ids
    assert [item["content"] for item in items] == ["one", "two", "three"]
    assert items[0]["project"] == "infra"
    assert items[1]["fact_type"] == "procedure"
    assert items[2]["meta"] == {"n": 3}


def test_jsonl_from_stdin_is_stored(cli: Cli) -> None:
    result = ok(cli("store", "--file", "-", input=_jsonl({"content": "a"}, {"content": "b"})))

    assert len(result.stdout.split()) == 2
    assert as_json(cli("stats", "--json"))["facts"] == 2


def test_project_option_is_the_default_project_of_jsonl_lines(cli: Cli) -> None:
    lines = _jsonl({"content": "mine"}, {"content": "theirs", "project": "web"})

    stored = as_json(cli("store", "--file", "-", "--project", "infra", "--json", input=lines))

    assert [fact["project"] for fact in stored] == ["infra", "web"]


def test_blank_lines_are_skipped(cli: Cli) -> None:
    ok(cli("store", "--file", "-", input='\n{"content": "a"}\n\n{"content": "b"}\n  \n'))

    assert as_json(cli("stats", "--json"))["facts"] == 2


def test_a_malformed_line_3_exits_2_naming_it_and_nothing_is_written(
    cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "facts.jsonl"
    path.write_text('{"content": "one"}\n{"content": "two"}\n{"content": "three"\n')

    result = cli("store", "--file", str(path))

    assert result.exit_code == 2
    assert "line 3" in result.stderr
    assert str(path) in result.stderr
    assert result.stdout == ""
    assert as_json(cli("stats", "--json"))["facts"] == 0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('["not", "an", "object"]', "JSON object"),
        ('{"text": "wrong field"}', "unknown field"),
        ('{"project": "infra"}', "content"),
        ('{"content": "x", "tags": "db"}', "tags"),
        ('{"content": "x", "confidence": 2}', "confidence"),
        ('{"content": "x", "valid_from": "last week"}', "timestamp"),
        ('{"content": "x", "meta": {"n": NaN}}', "canonical"),
    ],
)
def test_an_invalid_object_on_line_2_exits_2_and_nothing_is_written(
    cli: Cli, line: str, message: str
) -> None:
    result = cli("store", "--file", "-", input=f'{{"content": "fine"}}\n{line}\n')

    assert result.exit_code == 2, result.output
    assert "<stdin>: line 2" in result.stderr
    assert message in result.stderr
    assert as_json(cli("stats", "--json"))["facts"] == 0


def test_bytes_that_are_not_utf8_exit_2_naming_the_line(cli: Cli) -> None:
    result = cli("store", "--file", "-", input=b'{"content": "ok"}\n{"content": "\xff"}\n')

    assert result.exit_code == 2
    assert "line 2" in result.stderr
    assert "UTF-8" in result.stderr


def test_a_missing_file_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    result = cli("store", "--file", str(tmp_path / "absent.jsonl"))

    assert result.exit_code == 2


def test_text_and_file_together_are_a_usage_error(cli: Cli) -> None:
    result = cli("store", "text", "--file", "-", input=_jsonl({"content": "a"}))

    assert result.exit_code == 2
    assert "not both" in result.stderr


def test_per_fact_options_with_a_file_are_a_usage_error(cli: Cli) -> None:
    result = cli("store", "--file", "-", "--tag", "x", input=_jsonl({"content": "a"}))

    assert result.exit_code == 2
    assert "--tag" in result.stderr
    assert as_json(cli("stats", "--json"))["facts"] == 0


def test_an_empty_file_stores_nothing_and_says_so(cli: Cli) -> None:
    result = ok(cli("store", "--file", "-", input=""))

    assert result.stdout == ""
    assert "nothing stored" in result.stderr


def test_a_file_larger_than_one_chunk_is_stored_in_chunks(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(facts, "STORE_CHUNK", 2)
    lines = _jsonl(*({"content": f"fact {n}"} for n in range(5)))

    stored = as_json(cli("store", "--file", "-", "--json", input=lines))

    assert [fact["content"] for fact in stored] == [f"fact {n}" for n in range(5)]
    assert [fact["seq"] for fact in stored] == list(range(5))


def test_read_fact_drafts_numbers_lines_from_1_counting_blank_ones() -> None:
    lines = [b'{"content": "a"}\n', b"\n", b"{oops\n"]

    with pytest.raises(ValidationError, match=r"^in\.jsonl: line 3: not valid JSON"):
        read_fact_drafts(lines, source="in.jsonl")


def test_read_fact_drafts_accepts_a_byte_order_mark_on_line_1() -> None:
    drafts = read_fact_drafts([b'\xef\xbb\xbf{"content": "a"}\n'], source="in.jsonl").drafts

    assert [draft.content for draft in drafts] == ["a"]


SECRET = "AKIAZ3XQ5PLM2RTY7UWN"


def test_a_secret_on_a_later_chunks_line_stores_nothing_and_names_the_line(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shield screens the whole file before the first chunk is stored: a blocked fact on
    line 5 (third chunk of two) leaves nothing behind, and the error names its line."""
    monkeypatch.setattr(facts, "STORE_CHUNK", 2)
    lines = _jsonl({"content": "one"}, {"content": "two"}, {"content": "three"})
    lines += "\n" + _jsonl({"content": f"the deploy key is {SECRET}"}, {"content": "five"})

    result = cli("store", "--file", "-", input=lines)

    assert result.exit_code == 2, result.output
    assert "<stdin>: line 5: content holds a secret (aws_access_key)" in result.stderr
    assert "item" not in result.stderr
    assert SECRET not in result.output
    assert result.stdout == ""
    assert as_json(cli("stats", "--json"))["facts"] == 0


def test_a_secret_in_a_file_of_one_fact_names_line_1(cli: Cli) -> None:
    result = cli("store", "--file", "-", input=_jsonl({"content": f"key {SECRET}"}))

    assert result.exit_code == 2
    assert "<stdin>: line 1: content holds a secret" in result.stderr
    assert as_json(cli("stats", "--json"))["facts"] == 0


def test_facts_the_policy_redacts_are_stored_redacted_with_their_record(
    cli: Cli, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(facts, "STORE_CHUNK", 2)
    with (home / "cortex.toml").open("a") as toml:
        toml.write('\n[shield]\nemail = "redact"\n')
    lines = _jsonl(*({"content": f"fact {n}, mail jane{n}@acme-corp.io"} for n in range(3)))

    stored = as_json(cli("store", "--file", "-", "--json", input=lines))

    assert [fact["content"] for fact in stored] == [
        f"fact {n}, mail [REDACTED:email]" for n in range(3)
    ]
    assert [fact["meta"] for fact in stored] == [{"_redactions": ["email"]}] * 3


def test_read_fact_drafts_gives_each_draft_its_line_number() -> None:
    read = read_fact_drafts([b'{"content": "a"}\n', b"\n", b'{"content": "b"}\n'], source="x")

    assert read.lines == [1, 3]
    assert [draft.content for draft in read.drafts] == ["a", "b"]
