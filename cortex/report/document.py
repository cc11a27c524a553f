"""The report as a document for people: sections of paragraphs, lists, tables and charts. Pure.

Markdown and HTML render this same document, so both say the same thing in the same words;
values stay raw here and each renderer escapes them for its format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cortex.report.build import ComplianceReport

__all__ = [
    "Bullets",
    "Chart",
    "Document",
    "Paragraph",
    "Section",
    "Table",
    "counts_text",
    "document",
    "period_text",
    "retention_statements",
    "summary_line",
]


@dataclass(frozen=True, slots=True)
class Paragraph:
    """A sentence or two; `strong` for the integrity verdict."""

    text: str
    strong: bool = False


@dataclass(frozen=True, slots=True)
class Bullets:
    """A list of sentences."""

    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Table:
    """Rows of cells under headers; None cells show as "-"."""

    headers: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]
    more: int = 0  # rows left out of a capped list


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart the HTML draws (Markdown has the same figures in a table beside it)."""

    kind: Literal["timeline", "by_op"]


Block = Paragraph | Bullets | Table | Chart


@dataclass(frozen=True, slots=True)
class Section:
    """A numbered part of the report."""

    title: str
    blocks: tuple[Block, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Document:
    """Title, the header's fields, the verdict, the sections and a closing note."""

    title: str
    fields: tuple[tuple[str, object], ...]
    verdict: str
    ok: bool
    sections: tuple[Section, ...]
    note: str


def period_text(period: Mapping[str, Any]) -> str:
    """The period in words: its bounds, or "the whole ledger"."""
    start, end = period.get("start"), period.get("end")
    if start is None and end is None:
        return "the whole ledger"
    return f"from {start or 'the first entry'} to {end or 'the last entry'} (end excluded)"


def _n(count: int, one: str, many: str | None = None) -> str:
    """`1 entry`, `2 entries`."""
    return f"{count} {one if count == 1 else many or one + 's'}"


def counts_text(counts: Mapping[str, int]) -> str:
    """`name: n, name: n`, or "-" when empty."""
    return ", ".join(f"{name}: {count}" for name, count in counts.items()) or "-"


def summary_line(report: ComplianceReport) -> str:
    """One sentence: the integrity status and, when it failed, what failed and where."""
    integrity = report.body["integrity"]
    if integrity["status"] == "ok":
        return "Integrity: OK. The ledger verified and every checkpoint is signed and consistent."
    reasons = []
    verify = integrity["verify"]
    if not verify["ok"]:
        count = len(verify["problems"]) + verify["problems_more"]
        seqs = sorted({p["seq"] for p in verify["problems"] if p["seq"] is not None})
        where = f" at seq {', '.join(map(str, seqs[:20]))}" if seqs else ""
        reasons.append(f"verification found {count} problem(s){where}")
    unreadable = integrity["unreadable_entries"]["count"]
    if unreadable:
        reasons.append(f"{unreadable} ledger entries could not be read")
    checkpoints = integrity["checkpoints"]
    if checkpoints["signatures_invalid"]:
        reasons.append(f"{len(checkpoints['signatures_invalid'])} checkpoint signature(s) invalid")
    failures = len(checkpoints["failures"]) + checkpoints["failures_more"]
    if failures:
        sizes = sorted({f["old_size"] for f in checkpoints["failures"]})
        reasons.append(
            f"{failures} checkpoint consistency check(s) failed (checkpoint size"
            f" {', '.join(map(str, sizes[:20]))})"
        )
    return "Integrity: FAILED: " + "; ".join(reasons) + "."


def retention_statements(report: ComplianceReport) -> tuple[str, ...]:
    """What the store keeps, in sentences made from the report's retention figures."""
    kept = report.body["retention"]
    facts = kept["facts"]
    chosen = kept["settings"]
    backend = "a SQLite database" if kept["backend"] == "sqlite" else "a PostgreSQL database"
    lines = [
        "The ledger is append-only: no CORTEX operation deletes or rewrites an entry. All"
        f" {kept['ledger_entries']} entries of this tenant are kept for as long as the store is.",
        "No setting of this store expires or deletes entries or facts after a time.",
        f"Deprecated ({facts['deprecated']}) and superseded ({facts['superseded']}) facts stay"
        f" readable with their history; {facts['active']} of {facts['total']} facts are active.",
        f"Purged facts: {kept['purged_facts']}. A purge destroys a fact's content; its ledger"
        " entry and digest stay, so verification still covers it.",
        f"Signed checkpoints: {kept['checkpoints']} stored; one is signed automatically every"
        f" {kept['checkpoint_every']} entries (setting checkpoint_every) and on demand.",
        f"Storage: {backend} of {kept['database_bytes']} bytes; a fact's content is limited to"
        f" {kept['max_fact_bytes']} bytes.",
    ]
    if kept["encrypted"] is True:
        lines.append(
            "Fact content and metadata are stored encrypted at rest (AES-256-GCM, a data key per"
            f" tenant); the search indexes keep: {chosen.get('encrypted_search', 'unknown')}"
            " (setting encrypted_search)."
        )
    elif kept["encrypted"] is False:
        lines.append("Fact content is stored unencrypted (the store was not created encrypted).")
    if "gated_actions" in chosen:
        actions = ", ".join(chosen["gated_actions"]) or "none"
        lines.append(f"Actions that wait for an admin's approval (gated_actions): {actions}.")
    if "gate_ttl" in chosen and "gate_max_pending" in chosen:
        lines.append(
            f"An approval request expires {chosen['gate_ttl']:g} s after it is made unless"
            f" decided (gate_ttl); at most {chosen['gate_max_pending']} wait per tenant"
            " (gate_max_pending)."
        )
    lines.append(
        "Search indexes are derived from the facts and rebuilt by cortex reindex; they are not"
        " part of the record."
    )
    return tuple(lines)


def document(report: ComplianceReport) -> Document:
    """The report's document: header fields, verdict, and sections 1-8."""
    head, body = report.header, report.body
    fields: tuple[tuple[str, object], ...] = (
        ("Tenant", head["tenant"]),
        ("Period", period_text(head["period"])),
        ("Generated at", head["generated_at"]),
        ("CORTEX version", head["cortex_version"]),
        ("Ledger size", f"{head['ledger_size']} entries"),
        ("Signing key id", head["public_key_id"]),
        ("Body digest (SHA-256)", head["body_sha256"]),
    )
    sections = (
        _activity(body["activity"]),
        _actors(body["actors"]),
        _integrity(body["integrity"]),
        _purges(body["purges"]),
        _gate(body["gate"]),
        _rotations(body["key_rotations"]),
        _votes(body["votes"]),
        Section("8. Retention", (Bullets(retention_statements(report)),)),
    )
    note = (
        "The body digest is the SHA-256 of the RFC 8785 canonical JSON of the body of the JSON form"
        " of this report (cortex report --format json); every format of one report shows it."
    )
    return Document(head["title"], fields, summary_line(report), report.ok, sections, note)


def _rows(items: Sequence[Mapping[str, Any]], *keys: str) -> tuple[tuple[object, ...], ...]:
    return tuple(tuple(item[key] for key in keys) for item in items)


def _activity(activity: Mapping[str, Any]) -> Section:
    title = "1. What was logged and when"
    first, last = activity["first_entry"], activity["last_entry"]
    if first is None or last is None:
        return Section(title, (Paragraph("No entries in this period."),))
    facts = activity["facts"]
    timeline = activity["timeline"]
    unit = timeline["unit"]
    return Section(
        title,
        (
            Paragraph(
                f"{_n(activity['entries'], 'entry', 'entries')}, from seq {first['seq']} at"
                f" {first['ts']} to seq {last['seq']} at {last['ts']}."
            ),
            Paragraph(
                f"Facts: {facts['stored']} stored, {facts['superseded']} superseded (each stored"
                f" a new version), {facts['deprecated']} deprecated, {facts['purged']} purged."
            ),
            Chart("by_op"),
            Table(("Op", "Entries"), tuple(activity["by_op"].items())),
            Paragraph(f"Activity by {unit}:"),
            Chart("timeline"),
            Table(
                (unit.capitalize(), "Entries", "By op"),
                tuple(
                    (b["start"], b["total"], counts_text(b["by_op"])) for b in timeline["buckets"]
                ),
            ),
        ),
    )


def _actors(actors: Mapping[str, Any]) -> Section:
    blocks: list[Block] = [
        Paragraph(
            f"{_n(actors['count'], 'actor')} ({counts_text(actors['by_kind'])}). Kind api_key is an"
            " API key (key-<id>), agent an agent id, none an entry without an actor."
        ),
        Table(
            ("Actor", "Kind", "Entries", "By op"),
            tuple(
                (a["actor"], a["kind"], a["total"], counts_text(a["by_op"]))
                for a in actors["items"]
            ),
            actors["more"],
        ),
    ]
    uncounted = actors["uncounted"]
    if uncounted["entries"]:
        blocks.append(
            Paragraph(
                f"{uncounted['entries']} further entries by actors beyond the first 10000"
                f" ({counts_text(uncounted['by_op'])})."
            )
        )
    return Section("2. Agents and keys", tuple(blocks))


def _integrity(integrity: Mapping[str, Any]) -> Section:
    verify, checkpoints = integrity["verify"], integrity["checkpoints"]
    blocks: list[Block] = [
        Paragraph(f"Status: {'OK' if integrity['status'] == 'ok' else 'FAILED'}.", strong=True),
        Paragraph(
            "Verification of the tenant's ledger (hash chain, Merkle tree, fact digests,"
            f" checkpoint roots and signatures): {'ok' if verify['ok'] else 'FAILED'}, over"
            f" {_n(verify['entries'], 'entry', 'entries')}, {_n(verify['facts'], 'fact')} and"
            f" {_n(verify['checkpoints'], 'checkpoint')}."
        ),
    ]
    if verify["problems"]:
        blocks.append(
            Table(
                ("Seq", "Problem", "Detail"),
                _rows(verify["problems"], "seq", "kind", "detail"),
                verify["problems_more"],
            )
        )
    unreadable = integrity["unreadable_entries"]
    if unreadable["count"]:
        seqs = ", ".join(map(str, unreadable["seqs"]))
        blocks.append(Paragraph(f"Entries that could not be read: {unreadable['count']} ({seqs})."))
    latest = checkpoints["latest"]
    if latest is None:
        blocks.append(Paragraph("No signed checkpoint yet."))
    else:
        blocks += [
            Paragraph("Latest signed checkpoint:"),
            Table(
                ("Field", "Value"),
                (
                    ("Tree size", latest["tree_size"]),
                    ("Root", latest["root"]),
                    ("Signed at", latest["ts"]),
                    ("Key id", latest["key_id"]),
                    (
                        "Signature (engine's public key)",
                        "valid" if latest["signature_valid"] else "INVALID",
                    ),
                ),
            ),
        ]
    current = checkpoints["current_tree"]
    blocks.append(
        Paragraph(
            f"Checkpoints: {checkpoints['count']} stored, {checkpoints['signatures_valid']} with"
            f" a valid signature; {checkpoints['pairs_consistent']} of"
            f" {checkpoints['pairs_checked']} consecutive pairs consistent (RFC 9162 consistency"
            f" proofs); {current['checkpoints_consistent']} of {checkpoints['count']} consistent"
            f" with the current tree of {current['tree_size']} entries (root"
            f" {current['root'] or '-'})."
        )
    )
    if checkpoints["signatures_invalid"]:
        sizes = ", ".join(map(str, checkpoints["signatures_invalid"]))
        blocks.append(Paragraph(f"Checkpoints with an invalid signature (tree size): {sizes}."))
    if checkpoints["failures"]:
        blocks.append(
            Table(
                ("Checkpoint size", "Against", "Size", "Detail"),
                _rows(checkpoints["failures"], "old_size", "against", "new_size", "detail"),
                checkpoints["failures_more"],
            )
        )
    return Section("3. Integrity", tuple(blocks))


def _purges(purges: Mapping[str, Any]) -> Section:
    blocks: list[Block] = [
        Paragraph(
            f"{_n(purges['count'], 'purge')} in the period ({purges['total_in_ledger']} in all)."
        )
    ]
    if purges["items"]:
        blocks.append(
            Table(
                ("Seq", "When", "Fact", "By", "Reason", "Approval", "Decision", "Approved by"),
                _rows(
                    purges["items"],
                    "seq",
                    "ts",
                    "fact_id",
                    "actor",
                    "reason",
                    "approval",
                    "approval_decision",
                    "approved_by",
                ),
                purges["more"],
            )
        )
    return Section("4. Purges (right to erasure)", tuple(blocks))


def _gate(gate: Mapping[str, Any]) -> Section:
    blocks: list[Block] = [
        Paragraph(
            f"{_n(gate['requests'], 'request')} ({counts_text(gate['by_action'])}); outcome as of"
            f" this report: {counts_text(gate['by_status'])}. Decisions in the period:"
            f" {counts_text(gate['decisions'])}; approvals used: {gate['used']}."
        )
    ]
    if gate["items"]:
        blocks.append(
            Table(
                (
                    "Requested",
                    "Approval",
                    "Action",
                    "By",
                    "Status",
                    "Decided by",
                    "Decided at",
                    "Reason",
                    "Expires",
                ),
                _rows(
                    gate["items"],
                    "ts",
                    "approval_id",
                    "action",
                    "requested_by",
                    "status",
                    "decided_by",
                    "decided_at",
                    "decision_reason",
                    "expires_at",
                ),
                gate["more"],
            )
        )
    return Section("5. Approval gate", tuple(blocks))


def _rotations(rotations: Mapping[str, Any]) -> Section:
    blocks: list[Block] = [
        Paragraph(f"{_n(rotations['count'], 'rotation')} ({counts_text(rotations['by_kind'])}).")
    ]
    if rotations["items"]:
        blocks.append(
            Table(
                ("Seq", "When", "Kind", "Key of tenant", "Version", "By"),
                _rows(rotations["items"], "seq", "ts", "kind", "key_tenant", "version", "actor"),
                rotations["more"],
            )
        )
    return Section("6. Key rotations", tuple(blocks))


def _votes(votes: Mapping[str, Any]) -> Section:
    blocks: list[Block] = [
        Paragraph(
            f"{_n(votes['count'], 'vote')} ({votes['up']} for, {votes['down']} against) by"
            f" {_n(votes['voters'], 'agent')} on {_n(votes['facts'], 'fact')}."
        )
    ]
    if votes["contested"]:
        blocks += [
            Paragraph(
                "Contested facts (standing votes both for and against at the end of the period,"
                " unweighted):"
            ),
            Table(
                ("Fact", "For", "Against"),
                _rows(votes["contested"], "fact_id", "up", "down"),
                votes["contested_more"],
            ),
        ]
    elif votes["count"]:
        blocks.append(Paragraph("No fact is contested."))
    disputed = votes["disputed"]
    if disputed["available"]:
        blocks.append(
            Paragraph(f"Disputed facts now (reputation-weighted consensus): {disputed['count']}.")
        )
        if disputed["items"]:
            blocks.append(
                Table(
                    ("Fact", "Consensus score"),
                    _rows(disputed["items"], "fact_id", "score"),
                    disputed["more"],
                )
            )
    if votes["contested_truncated"]:
        blocks.append(
            Paragraph("Too many standing votes to follow them all: the list may be incomplete.")
        )
    return Section("7. Votes", tuple(blocks))
