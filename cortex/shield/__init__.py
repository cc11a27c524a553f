"""The privacy shield: finds secrets and personal data in what is written, blocks or redacts it.

    from cortex.shield import Shield, scan
    scan("key AKIA...")                      # findings: kind, category, start, end
    Shield(settings.shield).screen(tenant, drafts)   # ShieldBlocked, or drafts with redactions

Detectors live in `detectors`, pure checks (Luhn, IBAN mod 97, entropy) in `validators`, the
policy decision in `policy`, and `Shield` (what the engine calls) in `scanner`.
"""

from cortex.shield.detectors import (
    CATEGORIES,
    DETECTORS,
    SYNTAXES,
    Category,
    Detector,
    Finding,
    Scanner,
    Syntax,
    kinds,
    scan,
)
from cortex.shield.policy import ACTIONS, DEFAULT_ACTIONS, Action, check_rules, decide
from cortex.shield.scanner import REDACTIONS_KEY, Shield, Verdict, position, redact

__all__ = [
    "ACTIONS",
    "CATEGORIES",
    "DEFAULT_ACTIONS",
    "DETECTORS",
    "REDACTIONS_KEY",
    "SYNTAXES",
    "Action",
    "Category",
    "Detector",
    "Finding",
    "Scanner",
    "Shield",
    "Syntax",
    "Verdict",
    "check_rules",
    "decide",
    "kinds",
    "position",
    "redact",
    "scan",
]
