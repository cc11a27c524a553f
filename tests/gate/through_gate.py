"""How tests run a gated action the way an operator does: ask, approve, run with the token."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import Result

from cortex import CortexSync
from cortex.errors import ApprovalRequired
from tests.cli.invoke import Cli, ok


def export_through_gate(
    memory: CortexSync, path: str | os.PathLike[str], *, tenant: str | None = None
) -> int:
    """Export the tenant's bundle: ApprovalRequired first, then approve, then export once.

    The bundle then also holds the three gate entries (request, decision, token used).
    """
    with pytest.raises(ApprovalRequired) as asked:
        memory.export(Path(path), tenant=tenant)
    token = memory.approve(asked.value.approval_id, tenant=tenant).token
    assert token is not None
    return memory.export(Path(path), approval=token, tenant=tenant)


def cli_through_gate(cli: Cli, *args: str) -> Result:
    """Run a gated `cortex` command as an operator does: it exits 5 naming the approval, the
    `cortex gate approve ID --tenant T` it names prints the token, the command runs again with
    --approval."""
    asked = cli(*args)
    assert asked.exit_code == 5, asked.output
    found = re.search(r"`cortex (gate approve [^`]+)`", asked.stderr)
    assert found is not None, asked.stderr
    token = ok(cli(*shlex.split(found.group(1)))).stdout.strip()
    return cli(*args, "--approval", token)
