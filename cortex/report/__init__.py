"""The compliance report: a tenant's record keeping over a period (EU AI Act Art. 12 in spirit).

What was logged and when, by which agents and keys, integrity (verification, signed
checkpoints and their consistency), purges, gate decisions, key rotations, votes and retention.
`build_report` makes a `ComplianceReport` from the engine's ledger reads; `render` turns it into
JSON (schema `REPORT_SCHEMA`), Markdown or a self-contained HTML file.
"""

from cortex.report.build import (
    REPORT_FORMAT,
    ComplianceReport,
    Progress,
    ReportSource,
    body_digest,
    build_report,
)
from cortex.report.render import (
    FORMATS,
    ReportFormat,
    check_format,
    media_type,
    render,
    write_report,
)
from cortex.report.schema import REPORT_SCHEMA
from cortex.report.tally import Period, parse_period

__all__ = [
    "FORMATS",
    "REPORT_FORMAT",
    "REPORT_SCHEMA",
    "ComplianceReport",
    "Period",
    "Progress",
    "ReportFormat",
    "ReportSource",
    "body_digest",
    "build_report",
    "check_format",
    "media_type",
    "parse_period",
    "render",
    "write_report",
]
