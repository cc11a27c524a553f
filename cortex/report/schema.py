"""The JSON Schema (draft 2020-12) of the report's JSON form, `cortex-report/1`. Pure data.

Stable: within `cortex-report/1`, fields are only ever added (as optional), never renamed,
retyped or removed; a breaking change gets a new `format`. docs/report.md explains each field.
The API publishes this schema for `GET /v1/report` in its OpenAPI document.
"""

from __future__ import annotations

from typing import Any

__all__ = ["REPORT_SCHEMA"]

_TS = {"type": "string", "description": "RFC 3339 UTC timestamp"}
_TS_OR_NULL = {"type": ["string", "null"], "description": "RFC 3339 UTC timestamp, or null"}
_TEXT_OR_NULL = {"type": ["string", "null"]}
_COUNT = {"type": "integer", "minimum": 0}
_SEQ = {"type": "integer", "minimum": 0}
_COUNTS = {"type": "object", "additionalProperties": _COUNT}
_HEX = {"type": "string", "pattern": "^[0-9a-f]*$"}


def _object(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An object with exactly these (all required) properties."""
    return {
        "type": "object",
        "properties": properties,
        "required": sorted(properties),
        "additionalProperties": False,
        **extra,
    }


def _listing(item: dict[str, Any], **counts: Any) -> dict[str, Any]:
    """A capped list: `items` (at most 100) and `more` (how many were left out)."""
    return _object(
        {**counts, "items": {"type": "array", "items": item, "maxItems": 100}, "more": _COUNT}
    )


_ENTRY_REF = {
    "oneOf": [{"type": "null"}, _object({"seq": _SEQ, "ts": _TS, "op": {"type": "string"}})]
}

_ACTIVITY = _object(
    {
        "entries": _COUNT,
        "by_op": _COUNTS,
        "first_entry": _ENTRY_REF,
        "last_entry": _ENTRY_REF,
        "facts": _object(
            {"stored": _COUNT, "superseded": _COUNT, "deprecated": _COUNT, "purged": _COUNT}
        ),
        "timeline": _object(
            {
                "unit": {"enum": ["day", "week", "month"]},
                "undated": _COUNT,
                "buckets": {
                    "type": "array",
                    "items": _object(
                        {
                            "start": {"type": "string", "format": "date"},
                            "total": _COUNT,
                            "by_op": _COUNTS,
                        }
                    ),
                },
            }
        ),
    }
)

_ACTOR = _object(
    {
        "actor": _TEXT_OR_NULL,
        "kind": {"enum": ["agent", "api_key", "none"]},
        "total": _COUNT,
        "by_op": _COUNTS,
    }
)
_ACTORS = _object(
    {
        "count": _COUNT,
        "by_kind": _COUNTS,
        "items": {"type": "array", "items": _ACTOR, "maxItems": 200},
        "more": _COUNT,
        "uncounted": _object({"entries": _COUNT, "by_op": _COUNTS}),
    }
)

_PROBLEM = _object(
    {"seq": {"type": ["integer", "null"]}, "kind": {"type": "string"}, "detail": {"type": "string"}}
)
_CHECKPOINT = _object(
    {
        "tenant": {"type": "string"},
        "tree_size": _COUNT,
        "root": _HEX,
        "ts": _TS,
        "signature": _HEX,
        "key_id": {"type": "string"},
        "signature_valid": {"type": "boolean"},
    }
)
_CHECKPOINTS = _object(
    {
        "count": _COUNT,
        "latest": {"oneOf": [{"type": "null"}, _CHECKPOINT]},
        "signatures_valid": _COUNT,
        "signatures_invalid": {"type": "array", "items": _COUNT, "maxItems": 100},
        "pairs_checked": _COUNT,
        "pairs_consistent": _COUNT,
        "current_tree": _object(
            {
                "tree_size": _COUNT,
                "root": {"oneOf": [{"type": "null"}, _HEX]},
                "checkpoints_consistent": _COUNT,
            }
        ),
        "failures": {
            "type": "array",
            "maxItems": 100,
            "items": _object(
                {
                    "old_size": _COUNT,
                    "new_size": _COUNT,
                    "against": {"enum": ["next", "current"]},
                    "detail": {"type": "string"},
                }
            ),
        },
        "failures_more": _COUNT,
    }
)
_INTEGRITY = _object(
    {
        "status": {"enum": ["ok", "failed"]},
        "verify": _object(
            {
                "ok": {"type": "boolean"},
                "entries": _COUNT,
                "facts": _COUNT,
                "checkpoints": _COUNT,
                "problems": {"type": "array", "items": _PROBLEM, "maxItems": 100},
                "problems_more": _COUNT,
                "truncated": {"type": "boolean"},
            }
        ),
        "unreadable_entries": _object(
            {"count": _COUNT, "seqs": {"type": "array", "items": _SEQ, "maxItems": 100}}
        ),
        "checkpoints": _CHECKPOINTS,
    }
)

_PURGE = _object(
    {
        "seq": _SEQ,
        "ts": _TS,
        "fact_id": _TEXT_OR_NULL,
        "actor": _TEXT_OR_NULL,
        "reason": _TEXT_OR_NULL,
        "approval": _TEXT_OR_NULL,
        "approval_decision": _TEXT_OR_NULL,
        "approved_by": _TEXT_OR_NULL,
    }
)
_GATE_STATUS = {"enum": ["pending", "approved", "used", "denied", "expired", "unknown"]}
_GATE_REQUEST = _object(
    {
        "seq": _SEQ,
        "ts": _TS,
        "approval_id": _TEXT_OR_NULL,
        "requested_by": _TEXT_OR_NULL,
        "action": {"type": "string"},
        "expires_at": _TS_OR_NULL,
        "status": _GATE_STATUS,
        "decided_by": _TEXT_OR_NULL,
        "decided_at": _TS_OR_NULL,
        "decision_reason": _TEXT_OR_NULL,
        "used_at": _TS_OR_NULL,
    }
)
_GATE = _listing(
    _GATE_REQUEST,
    requests=_COUNT,
    by_action=_COUNTS,
    by_status=_object({name: _COUNT for name in _GATE_STATUS["enum"]}),
    decisions=_COUNTS,
    used=_COUNT,
)
_ROTATION = _object(
    {
        "seq": _SEQ,
        "ts": _TS,
        "kind": {"type": "string"},
        "key_tenant": _TEXT_OR_NULL,
        "version": {"type": ["integer", "null"]},
        "actor": _TEXT_OR_NULL,
    }
)
_VOTES = _object(
    {
        "count": _COUNT,
        "up": _COUNT,
        "down": _COUNT,
        "invalid": _COUNT,
        "voters": _COUNT,
        "facts": _COUNT,
        "contested": {
            "type": "array",
            "maxItems": 100,
            "items": _object({"fact_id": _TEXT_OR_NULL, "up": _COUNT, "down": _COUNT}),
        },
        "contested_more": _COUNT,
        "contested_truncated": {"type": "boolean"},
        "disputed": _object(
            {
                "available": {"type": "boolean"},
                "count": _COUNT,
                "items": {
                    "type": "array",
                    "maxItems": 100,
                    "items": _object({"fact_id": {"type": "string"}, "score": {"type": "number"}}),
                },
                "more": _COUNT,
            }
        ),
    }
)
_SETTING = {
    "type": ["string", "number", "boolean", "null", "array"],
    "items": {"type": "string"},
}
_RETENTION = _object(
    {
        "settings": {"type": "object", "additionalProperties": _SETTING},
        "encrypted": {"type": ["boolean", "null"]},
        "ledger_append_only": {"const": True},
        "ledger_entries": _COUNT,
        "ledger_by_op": _COUNTS,
        "facts": _object(
            {"total": _COUNT, "active": _COUNT, "deprecated": _COUNT, "superseded": _COUNT}
        ),
        "purged_facts": _COUNT,
        "checkpoints": _COUNT,
        "checkpoint_every": _COUNT,
        "backend": {"enum": ["sqlite", "postgresql"]},
        "database_bytes": _COUNT,
        "max_fact_bytes": _COUNT,
    }
)

REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "CORTEX record-keeping report (cortex-report/1)",
    **_object(
        {
            "format": {"const": "cortex-report/1"},
            "header": _object(
                {
                    "title": {"type": "string"},
                    "generated_at": _TS,
                    "tenant": {"type": "string"},
                    "period": _object({"start": _TS_OR_NULL, "end": _TS_OR_NULL}),
                    "cortex_version": {"type": "string"},
                    "ledger_size": _COUNT,
                    "public_key_id": {"type": "string"},
                    "body_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                }
            ),
            "body": _object(
                {
                    "activity": _ACTIVITY,
                    "actors": _ACTORS,
                    "integrity": _INTEGRITY,
                    "purges": _listing(_PURGE, count=_COUNT, total_in_ledger=_COUNT),
                    "gate": _GATE,
                    "key_rotations": _listing(_ROTATION, count=_COUNT, by_kind=_COUNTS),
                    "votes": _VOTES,
                    "retention": _RETENTION,
                }
            ),
        }
    ),
}
