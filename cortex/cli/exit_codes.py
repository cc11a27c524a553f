"""Exit codes of the `cortex` command, and the one place that maps errors to them.

| code | meaning |
|---|---|
| 0 | success |
| 1 | integrity failure (`verify`, `verify-export`, `proof`, `consistency`); `scan`: blocked |
| 2 | usage error: bad option or argument, refused input (`ValidationError`, `ShieldBlocked`) |
| 3 | not found: the fact, entry or tenant does not exist (`NotFound`) |
| 4 | any other CORTEX error: home not initialised, conflict, overload, storage, file I/O |
| 5 | approval required: the action waits for `cortex gate approve ID` (`ApprovalRequired`) |
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Callable
from typing import ParamSpec

import typer

from cortex.errors import (
    ApprovalReplayed,
    ApprovalRequired,
    ConfigError,
    Conflict,
    CortexError,
    GateFull,
    IntegrityError,
    NotFound,
    Overloaded,
    SearchDisabled,
    ShieldBlocked,
    StoreError,
    ValidationError,
)

__all__ = [
    "EXIT_APPROVAL",
    "EXIT_INTEGRITY",
    "EXIT_NOT_FOUND",
    "EXIT_OTHER",
    "EXIT_USAGE",
    "exit_code_for",
    "hint_for",
    "reports_errors",
]

P = ParamSpec("P")

EXIT_INTEGRITY = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_OTHER = 4
EXIT_APPROVAL = 5


def exit_code_for(error: CortexError) -> int:
    """Return the process exit code for a CORTEX error (see the module docstring)."""
    if isinstance(error, IntegrityError):
        return EXIT_INTEGRITY
    if isinstance(error, ValidationError | ShieldBlocked):
        return EXIT_USAGE
    if isinstance(error, NotFound):
        return EXIT_NOT_FOUND
    if isinstance(error, ApprovalRequired):
        return EXIT_APPROVAL
    return EXIT_OTHER


# Commands whose Conflict is about one fact's state (already deprecated, superseded, purged).
_FACT_COMMANDS = frozenset({"deprecate", "supersede", "purge", "vote"})


def hint_for(error: CortexError, command: str) -> str | None:
    """Return how to fix `error` raised by `cortex <command>`, or None if its message says it."""
    if isinstance(error, ValidationError):
        return f"see `cortex {command} --help`"
    if isinstance(error, ShieldBlocked):
        return "`cortex scan FILE` lists every finding; nothing was stored"
    if isinstance(error, NotFound):
        if command.startswith("gate"):
            return "`cortex gate list --all` shows every approval of the tenant; check --tenant too"
        return "`cortex list --all` shows every fact id; check --tenant too"
    if isinstance(error, ApprovalRequired):
        where = "" if error.tenant is None else f" --tenant {shlex.quote(error.tenant)}"
        return (
            f"an admin runs `cortex gate approve {error.approval_id}{where}`; then run this"
            " command again with --approval TOKEN (the token it prints)"
        )
    if isinstance(error, GateFull):
        return "`cortex gate list` shows them"
    if isinstance(error, ApprovalReplayed):
        return "ask again: run the command without --approval for a new approval"
    if isinstance(error, Conflict) and command.startswith("gate"):
        return "`cortex gate list --all` shows every approval and its state"
    if isinstance(error, SearchDisabled):
        return None  # the message says which setting turns search on
    if isinstance(error, Conflict) and command in _FACT_COMMANDS:
        return "`cortex history ID` shows what already happened to the fact"
    if isinstance(error, Overloaded):
        return f"the store is busy; retry in {error.retry_after:g} s"
    if isinstance(error, IntegrityError):
        return None
    if isinstance(error, ConfigError):
        # The engine's configuration messages already say what to do (e.g. run `cortex init`).
        return None
    if isinstance(error, StoreError):
        return "run `cortex verify` to check the store; check free disk space and permissions"
    return None


def _fail(code: int, message: str, hint: str | None) -> typer.Exit:
    line = f"error: {message}" if hint is None else f"error: {message}; {hint}"
    typer.echo(line, err=True)
    return typer.Exit(code)


def reports_errors(command: Callable[P, None], name: str) -> Callable[P, None]:
    """Wrap a command so a CORTEX or file error ends it with one `error:` line and its exit code.

    Anything else is a bug and keeps its traceback.
    """

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except CortexError as exc:
            raise _fail(exit_code_for(exc), str(exc), hint_for(exc, name)) from exc
        except BrokenPipeError:
            raise  # Typer exits quietly when the reader of our output went away
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise _fail(EXIT_OTHER, f"{exc.strerror or exc}{where}", None) from exc

    return run
