"""Reading facts from JSON lines: every line is parsed and validated before any is stored."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import NamedTuple

from cortex.engine import draft_from_mapping
from cortex.errors import ValidationError
from cortex.model import FactDraft

__all__ = ["NumberedDrafts", "read_fact_drafts"]


class NumberedDrafts(NamedTuple):
    """The drafts of a JSONL stream and the line number (from 1) each was read from."""

    lines: list[int]
    drafts: list[FactDraft]


def read_fact_drafts(
    lines: Iterable[bytes], *, source: str, default_project: str = "default"
) -> NumberedDrafts:
    """Return a validated draft for every non-blank line of a JSONL stream, with its line number.

    Each line is a JSON object with the fields of `draft_from_mapping`. The first bad line raises
    a ValidationError that names `source` and the line number (counting from 1).
    """
    numbers: list[int] = []
    drafts: list[FactDraft] = []
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError(
                f"{source}: line {number}: not UTF-8 text ({exc.reason})"
            ) from exc
        if not text.strip():
            continue
        try:
            item = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"{source}: line {number}: not valid JSON ({exc.msg} at column {exc.colno})"
            ) from exc
        except RecursionError as exc:
            raise ValidationError(f"{source}: line {number}: JSON nested too deeply") from exc
        try:
            drafts.append(draft_from_mapping(item, default_project=default_project))
        except ValidationError as exc:
            raise ValidationError(f"{source}: line {number}: {exc}") from exc
        numbers.append(number)
    return NumberedDrafts(numbers, drafts)
