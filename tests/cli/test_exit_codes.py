"""Each CORTEX error maps to one exit code, and every command reports errors the same way."""

from __future__ import annotations

import pytest
import typer

from cortex.cli.exit_codes import exit_code_for, hint_for, reports_errors
from cortex.errors import (
    ConfigError,
    Conflict,
    CortexError,
    IntegrityError,
    NotFound,
    Overloaded,
    StoreClosed,
    StoreError,
    ValidationError,
    WriterCrashed,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (IntegrityError("bad hash"), 1),
        (ValidationError("bad field"), 2),
        (NotFound("no fact"), 3),
        (ConfigError("no home"), 4),
        (Conflict("already deprecated"), 4),
        (Overloaded("busy"), 4),
        (StoreError("disk"), 4),
        (StoreClosed("closed"), 4),
        (WriterCrashed("died"), 4),
        (CortexError("anything else"), 4),
    ],
)
def test_exit_code_for_each_error_class(error: CortexError, code: int) -> None:
    assert exit_code_for(error) == code


def test_hint_for_a_validation_error_points_at_the_commands_help() -> None:
    assert hint_for(ValidationError("bad"), "store") == "see `cortex store --help`"


def test_hint_for_overloaded_says_when_to_retry() -> None:
    assert "2.5 s" in (hint_for(Overloaded("busy", retry_after=2.5), "store") or "")


def test_reports_errors_prints_one_error_line_and_exits_with_the_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def command() -> None:
        raise NotFound("no fact 'x' in tenant 'default'")

    with pytest.raises(typer.Exit) as exited:
        reports_errors(command, "get")()

    assert exited.value.exit_code == 3
    assert capsys.readouterr().err.startswith("error: no fact 'x' in tenant 'default'; ")


def test_reports_errors_lets_a_bug_keep_its_traceback() -> None:
    def command() -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        reports_errors(command, "get")()


def test_reports_errors_keeps_the_signature_typer_reads() -> None:
    def command(text: str, *, count: int = 1) -> None:
        """Docstring."""

    wrapped = reports_errors(command, "command")

    assert wrapped.__doc__ == "Docstring."
    assert wrapped.__wrapped__ is command  # type: ignore[attr-defined]
