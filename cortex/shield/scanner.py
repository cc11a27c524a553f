"""`Shield`: scans what is about to be written, applies the policy, blocks or redacts.

The engine owns one `Shield` (built from `Settings.shield` in `Cortex.open`) and passes every
draft of `store`, `store_many` and `supersede` through `Shield.screen` before it is queued.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cortex.config import ShieldRule
from cortex.errors import ShieldBlocked
from cortex.model import FactDraft
from cortex.shield.detectors import DETECTORS, Detector, Finding, Scanner, Syntax, kinds
from cortex.shield.policy import Action, check_rules, decide

__all__ = ["REDACTIONS_KEY", "Shield", "Verdict", "position", "redact"]

REDACTIONS_KEY = "_redactions"
"""Reserved meta key: the sorted kinds the shield redacted from this fact (set by the shield)."""

CLEAN_TAGS_MAX = 4096
"""Tags a `Shield` remembers as holding nothing to find (emptied when full)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """A finding and the action the policy takes on it."""

    finding: Finding
    action: Action


def position(text: str, offset: int) -> tuple[int, int]:
    """The 1-based (line, column) of character `offset` in `text`."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def redact(text: str, findings: Sequence[Finding]) -> str:
    """`text` with each finding's span replaced by `[REDACTED:<kind>]` (spans must not overlap)."""
    parts: list[str] = []
    cursor = 0
    for finding in sorted(findings, key=lambda f: f.start):
        parts.append(text[cursor : finding.start])
        parts.append(f"[REDACTED:{finding.kind}]")
        cursor = finding.end
    parts.append(text[cursor:])
    return "".join(parts)


class Shield:
    """The privacy shield of one engine: its rules and detectors.

    Its only other state is a bounded set of tags already scanned and found clean: agents reuse
    a small vocabulary of tags, and a scan costs more than a set lookup. Only clean tags are
    kept (nothing found, so no secret is held in memory); the set is emptied when it reaches
    `CLEAN_TAGS_MAX`.
    """

    def __init__(
        self, rules: Sequence[ShieldRule] = (), detectors: Sequence[Detector] = DETECTORS
    ) -> None:
        check_rules(rules, kinds(detectors))
        self.rules = tuple(rules)
        self.detectors = tuple(detectors)
        self._scanner = Scanner(self.detectors)
        self._clean_tags: set[str] = set()

    def inspect(
        self, text: str, *, tenant: str, project: str, syntax: Syntax = "text"
    ) -> tuple[Verdict, ...]:
        """Every finding in `text` (of `syntax`) with the action the policy would take on it."""
        findings = self._scanner.scan(text, syntax)
        return tuple(Verdict(f, self._decide(f, tenant, project)) for f in findings)

    def _decide(self, finding: Finding, tenant: str, project: str) -> Action:
        return decide(
            self.rules,
            tenant=tenant,
            project=project,
            kind=finding.kind,
            category=finding.category,
        )

    def screen(self, tenant: str, drafts: Sequence[FactDraft]) -> tuple[FactDraft, ...]:
        """Return `drafts` with redactions applied; raise ShieldBlocked if any must be blocked.

        Scans each draft's content, tags and string values of meta (at any depth). Either every
        draft passes or none does, so a blocked batch writes nothing. A redacted draft's meta
        gets `_redactions`, the sorted kinds removed; any `_redactions` a draft brings along is
        replaced by what this scan found (it describes this fact's content only).
        """
        batch = len(drafts) > 1
        return tuple(
            self._screen_one(tenant, draft, number if batch else None)
            for number, draft in enumerate(drafts)
        )

    def _screen_one(self, tenant: str, draft: FactDraft, item: int | None) -> FactDraft:
        scan = self._scanner.scan
        if (
            REDACTIONS_KEY not in draft.meta
            and not scan(draft.content)
            and self._tags_clean(draft.tags)
            and not any(map(scan, _strings(draft.meta)))
        ):
            return draft  # the common case: nothing to decide, nothing to rebuild
        redacted: set[str] = set()

        def clean(field: str, text: str) -> str:
            return self._clean(tenant, draft.project, field, text, item, redacted)

        content = clean("content", draft.content)
        tags = tuple(clean(f"tags[{i}]", tag) for i, tag in enumerate(draft.tags))
        meta_in = {k: v for k, v in draft.meta.items() if k != REDACTIONS_KEY}
        meta = _map_strings(meta_in, "meta", clean)
        if redacted:
            meta = {**meta, REDACTIONS_KEY: sorted(redacted)}
        elif REDACTIONS_KEY not in draft.meta:
            return draft
        return dataclasses.replace(draft, content=content, tags=tags, meta=meta)

    def _tags_clean(self, tags: tuple[str, ...]) -> bool:
        """True when no tag holds anything a detector finds (a tag is text: scanned as such)."""
        clean = self._clean_tags
        for tag in tags:
            if tag in clean:
                continue
            if self._scanner.scan(tag):
                return False
            if len(clean) >= CLEAN_TAGS_MAX:
                clean.clear()
            clean.add(tag)
        return True

    def _clean(
        self,
        tenant: str,
        project: str,
        field: str,
        text: str,
        item: int | None,
        redacted: set[str],
    ) -> str:
        to_redact: list[Finding] = []
        for finding in self._scanner.scan(text):
            action = self._decide(finding, tenant, project)
            if action == "block":
                raise _blocked(finding, field, text, item, tenant, project)
            if action == "redact":
                to_redact.append(finding)
        if not to_redact:
            return text
        redacted.update(f.kind for f in to_redact)
        return redact(text, to_redact)


def _blocked(
    finding: Finding, field: str, text: str, item: int | None, tenant: str, project: str
) -> ShieldBlocked:
    line, column = position(text, finding.start)
    where = f"item {item}: " if item is not None else ""
    return ShieldBlocked(
        f"{where}{field} holds a {finding.category} ({finding.kind}) at line {line}, column"
        f" {column}; the shield policy for tenant '{tenant}', project '{project}' blocks it:"
        " remove it, or change the [shield] policy (docs/shield.md)",
        kind=finding.kind,
        category=finding.category,
        field=field,
        start=finding.start,
        end=finding.end,
        line=line,
        column=column,
        item=item,
    )


def _strings(value: Any) -> Iterator[str]:
    """Every string in `value` (JSON-like), at any depth."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _map_strings(value: Any, path: str, clean: Callable[[str, str], str]) -> Any:
    """`value` (JSON-like) with every string passed through `clean(path, text)`."""
    if isinstance(value, str):
        return clean(path, value)
    if isinstance(value, Mapping):
        return {k: _map_strings(v, f"{path}.{k}", clean) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_map_strings(v, f"{path}[{i}]", clean) for i, v in enumerate(value)]
    return value
