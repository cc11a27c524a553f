"""The export bundle: one JSON-lines file an auditor can verify with nothing else.

Line 1 is a header (format, version, tenant, tree size, head hash, the checkpoint public key in
PEM); then one line per transaction (in `seq` order), per fact and per checkpoint, each with a
`"type"` field. The file is written atomically (temporary file, fsync, rename).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cortex.canonical import parse_ts
from cortex.errors import IntegrityError, StoreError
from cortex.model import Checkpoint, Fact, Transaction

__all__ = ["FORMAT", "VERSION", "BundleHeader", "read_bundle", "write_bundle"]

FORMAT = "cortex-export"
VERSION = 1
Record = Transaction | Fact | Checkpoint


@dataclass(frozen=True, slots=True)
class BundleHeader:
    """What the first line of a bundle says about the rest."""

    tenant: str
    tree_size: int
    head_hash: bytes
    public_key_pem: bytes


def write_bundle(
    path: Path,
    *,
    tenant: str,
    tree_size: int,
    head_hash: bytes,
    public_key_pem: bytes,
    transactions: Iterable[Transaction],
    facts: Iterable[Fact],
    checkpoints: Iterable[Checkpoint],
) -> None:
    """Write a bundle to `path` atomically; an existing file is replaced only when complete."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {
            "type": "header",
            "format": FORMAT,
            "version": VERSION,
            "tenant": tenant,
            "tree_size": tree_size,
            "head_hash": head_hash.hex(),
            "public_key": public_key_pem.decode(),
        }
        _write(path, tmp, header, transactions, facts, checkpoints)
    except OSError as exc:
        raise StoreError(f"cannot write bundle {path}: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _write(
    path: Path,
    tmp: Path,
    header: dict[str, Any],
    transactions: Iterable[Transaction],
    facts: Iterable[Fact],
    checkpoints: Iterable[Checkpoint],
) -> None:
    """Write every line to `tmp`, fsync it, then move it over `path` in one step."""
    with open(tmp, "w", encoding="utf-8") as out:
        _line(out, header)
        for tx in transactions:
            _line(out, {"type": "transaction", **tx.to_dict()})
        for fact in facts:
            _line(out, {"type": "fact", **fact.to_dict()})
        for cp in checkpoints:
            _line(out, {"type": "checkpoint", **cp.to_dict()})
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def _line(out: IO[str], record: dict[str, Any]) -> None:
    out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
    out.write("\n")


def read_bundle(path: Path) -> tuple[BundleHeader, Iterator[Record]]:
    """Open a bundle: its header and an iterator over its records (ValidationError on junk)."""
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed by the iterator
    except OSError as exc:
        raise IntegrityError(f"cannot read bundle {path}: {exc}") from exc
    first = handle.readline()
    try:
        head = json.loads(first)
        if head.get("type") != "header" or head.get("format") != FORMAT:
            raise ValueError("not a CORTEX export bundle")
        if head.get("version") != VERSION:
            raise ValueError(f"bundle version {head.get('version')} is not supported")
        header = BundleHeader(
            tenant=str(head["tenant"]),
            tree_size=int(head["tree_size"]),
            head_hash=bytes.fromhex(head["head_hash"]),
            public_key_pem=str(head["public_key"]).encode(),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        handle.close()
        raise IntegrityError(f"{path}: line 1 is not a bundle header: {_why(exc)}") from exc
    return header, _records(path, handle, header.tenant)


def _records(path: Path, handle: IO[str], tenant: str) -> Iterator[Record]:
    with handle:
        for number, line in enumerate(handle, start=2):
            if not line.strip():
                continue
            try:
                yield _record(json.loads(line), tenant)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise IntegrityError(f"{path}: line {number} is malformed: {_why(exc)}") from exc


def _why(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc)


def _hex(value: Any) -> bytes:
    return bytes.fromhex(str(value))


def _record(data: dict[str, Any], tenant: str) -> Record:
    kind = data["type"]
    if kind == "transaction":
        return Transaction(
            tenant=tenant,
            seq=int(data["seq"]),
            op=str(data["op"]),
            subject=data["subject"],
            actor=data["actor"],
            ts=str(data["ts"]),
            payload=dict(data["payload"]),
            payload_digest=_hex(data["payload_digest"]),
            prev_hash=_hex(data["prev_hash"]),
            hash=_hex(data["hash"]),
        )
    if kind == "fact":
        return Fact(
            id=str(data["id"]),
            tenant=tenant,
            project=str(data["project"]),
            content=str(data["content"]),
            fact_type=str(data["fact_type"]),
            tags=tuple(str(t) for t in data["tags"]),
            source=data["source"],
            confidence=data["confidence"],
            valid_from=parse_ts(data["valid_from"]),
            valid_until=None if data["valid_until"] is None else parse_ts(data["valid_until"]),
            supersedes=data["supersedes"],
            created_at=parse_ts(data["created_at"]),
            meta=dict(data["meta"]),
            seq=int(data["seq"]),
            deprecated_at=None
            if data["deprecated_at"] is None
            else parse_ts(data["deprecated_at"]),
            deprecation_reason=data["deprecation_reason"],
            superseded_by=data["superseded_by"],
            # Absent from bundles written before purges existed.
            purged_at=None if data.get("purged_at") is None else parse_ts(data["purged_at"]),
            purge_reason=data.get("purge_reason"),
        )
    if kind == "checkpoint":
        return Checkpoint(
            tenant=tenant,
            tree_size=int(data["tree_size"]),
            root=_hex(data["root"]),
            ts=str(data["ts"]),
            signature=_hex(data["signature"]),
            key_id=str(data["key_id"]),
        )
    raise ValueError(f"unknown record type {kind!r}")
