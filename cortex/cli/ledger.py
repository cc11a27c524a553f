"""Commands on the ledger: verify, proof, consistency, checkpoint, export, verify-export, stats."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cortex.cli.exit_codes import EXIT_INTEGRITY
from cortex.cli.gate import ApprovalToken
from cortex.cli.options import AsJson, Home, Tenant, open_memory
from cortex.cli.output import (
    checkpoint_fields,
    consistency_fields,
    inclusion_fields,
    print_fields,
    print_json,
    print_table,
    problems_table,
    stats_fields,
)
from cortex.engine import verify_export_sync
from cortex.ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
from cortex.model import ConsistencyProof, InclusionProof, VerifyReport

__all__ = ["checkpoint", "consistency", "export", "proof", "stats", "verify", "verify_export"]


def _report(report: VerifyReport, *, what: str, as_json: bool) -> None:
    """Print a verification report; exit 1 when it found problems."""
    if as_json:
        print_json(report.to_dict())
    elif report.ok:
        typer.echo(
            f"ok: {what} verified: {report.entries} entries, {report.facts} facts,"
            f" {report.checkpoints} checkpoints in {report.tenants} tenant(s)"
        )
    else:
        print_table(problems_table(report))
        more = " (stopped early: there may be more)" if report.truncated else ""
        typer.echo(f"FAILED: {what} has {len(report.problems)} integrity problem(s){more}")
    if not report.ok:
        raise typer.Exit(EXIT_INTEGRITY)


def verify(
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant", metavar="NAME", help="Verify only this tenant (default: every tenant)."
        ),
    ] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Recompute hash chains, Merkle trees, fact digests and checkpoint signatures.

    Every problem is listed by tenant and seq; the exit code is 1 when there is any.

    Example: cortex verify --tenant acme --json
    """
    with open_memory(home, None) as memory:
        report = memory.verify(tenant=tenant)
    _report(report, what="the store", as_json=as_json)


def _inclusion_verified(proof: InclusionProof) -> bool:
    return leaf_hash(proof.entry) == proof.leaf_hash and verify_inclusion(
        proof.leaf_hash, proof.seq, proof.tree_size, proof.path, proof.root
    )


def _show_proof(
    as_dict: dict[str, Any],
    fields: list[tuple[str, object]],
    verified: bool,
    *,
    as_json: bool,
    success: str,
    failure: str,
) -> None:
    """Print a proof and whether it checked out; exit 1 when it did not."""
    if as_json:
        print_json({**as_dict, "verified": verified})
    else:
        print_fields(fields)
        typer.echo(f"verified: {success}" if verified else f"NOT VERIFIED: {failure}")
    if not verified:
        raise typer.Exit(EXIT_INTEGRITY)


def proof(
    ref: Annotated[
        str,
        typer.Argument(
            metavar="SEQ_OR_FACT_ID",
            help="Ledger seq number, or a fact id (its store entry).",
            show_default=False,
        ),
    ],
    tree_size: Annotated[
        int | None,
        typer.Option("--tree-size", metavar="N", help="Prove against the tree of N entries."),
    ] = None,
    home: Home = None,
    tenant: Tenant = None,
    as_json: AsJson = False,
) -> None:
    """Print the RFC 9162 inclusion proof of a ledger entry and check it here.

    The check recomputes the leaf hash from the entry and the root from the audit path; the
    exit code is 1 if they do not match. Compare the root with a signed checkpoint of the same
    tree size to trust it.

    Examples:

        cortex proof 41
        cortex proof 01JNZ3Q8V4K2M7T9X1B5C6D8EF --tree-size 1000 --json
    """
    target: int | str = int(ref) if ref.isascii() and ref.isdigit() else ref
    with open_memory(home, tenant) as memory:
        found = memory.inclusion_proof(target, tree_size=tree_size)
    _show_proof(
        found.to_dict(),
        inclusion_fields(found),
        _inclusion_verified(found),
        as_json=as_json,
        success=f"entry {found.seq} is in the tree of {found.tree_size} entries with this root",
        failure=f"the audit path does not lead from entry {found.seq} to the root",
    )


def _consistency_verified(found: ConsistencyProof) -> bool:
    return verify_consistency(
        found.old_size, found.new_size, found.old_root, found.new_root, found.path
    )


def consistency(
    old: Annotated[int, typer.Argument(metavar="OLD", help="Size of the older tree.")],
    new: Annotated[
        int | None,
        typer.Argument(metavar="NEW", help="Size of the newer tree (default: the current size)."),
    ] = None,
    home: Home = None,
    tenant: Tenant = None,
    as_json: AsJson = False,
) -> None:
    """Print the RFC 9162 proof that the ledger of OLD entries is a prefix of the one of NEW.

    The proof is checked here (exit code 1 if it fails). Use it with an old checkpoint to show
    that history was only appended to, never rewritten.

    Examples:

        cortex consistency 1000
        cortex consistency 1000 5000 --json
    """
    with open_memory(home, tenant) as memory:
        found = memory.consistency_proof(old, new)
    _show_proof(
        found.to_dict(),
        consistency_fields(found),
        _consistency_verified(found),
        as_json=as_json,
        success=f"the tree of {found.old_size} entries is a prefix of the tree of {found.new_size}",
        failure=f"the proof does not link the tree of {found.old_size} to that of {found.new_size}",
    )


def checkpoint(home: Home = None, tenant: Tenant = None, as_json: AsJson = False) -> None:
    """Sign a checkpoint of the tenant's ledger at its current size, now.

    Example: cortex checkpoint --tenant acme
    """
    with open_memory(home, tenant) as memory:
        signed = memory.checkpoint()
    if as_json:
        print_json(signed.to_dict())
    else:
        print_fields(checkpoint_fields(signed))


def export(
    path: Annotated[
        Path,
        typer.Argument(
            metavar="PATH", help="Bundle file to write (replaced if it exists).", dir_okay=False
        ),
    ],
    approval: ApprovalToken = None,
    home: Home = None,
    tenant: Tenant = None,
) -> None:
    """Write the tenant's self-contained, verifiable bundle (JSON lines) to PATH.

    The bundle holds every ledger entry, fact and signed checkpoint, and the public key: an
    auditor checks it with `cortex verify-export` and nothing else. Exporting a tenant waits
    for an admin's approval (unless `export` is not among gated_actions): the first run prints
    the approval id and exits with code 5; run it again with the token of
    `cortex gate approve ID` as --approval.

    Example: cortex export audit-2026-03.jsonl --tenant acme --approval gate1.eyJ...
    """
    with open_memory(home, tenant) as memory:
        entries = memory.export(path, approval=approval, actor="cli")
        name = memory.settings.tenant
    typer.echo(f"exported {entries} entries of tenant {name!r} to {path}")


def verify_export(
    path: Annotated[
        Path,
        typer.Argument(
            metavar="PATH",
            help="Bundle written by `cortex export`.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            metavar="PEMFILE",
            help="Require the bundle to be signed by this key (e.g. <home>/keys/signing.pub).",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Verify an export bundle with nothing but the bundle (and optionally a pinned public key).

    Checks the hash chain, every signed checkpoint's root and signature, and every fact's digest;
    exit code 1 on any problem, including a bundle that cannot be read as one.

    Example: cortex verify-export audit-2026-03.jsonl --public-key signing.pub
    """
    pinned = None if public_key is None else public_key.read_bytes()
    report = verify_export_sync(path, public_key_pem=pinned)
    _report(report, what=f"bundle {path}", as_json=as_json)


def stats(home: Home = None, tenant: Tenant = None, as_json: AsJson = False) -> None:
    """Show counts for the tenant: facts by status, ledger entries, checkpoints, database size.

    Example: cortex stats --json
    """
    with open_memory(home, tenant) as memory:
        counts = memory.stats()
    if as_json:
        print_json(counts.to_dict())
    else:
        print_fields(stats_fields(counts))
