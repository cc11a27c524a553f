"""Every error class maps to its HTTP status in the one table (problems.py)."""

from __future__ import annotations

import pytest

from cortex.api.problems import problem_for
from cortex.errors import (
    Conflict,
    CortexError,
    Forbidden,
    NotFound,
    Overloaded,
    RateLimited,
    StoreClosed,
    StoreUnavailable,
    Unauthorized,
    ValidationError,
    WriterCrashed,
)


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [
        (Unauthorized("x"), 401, False),
        (Forbidden("x"), 403, False),
        (NotFound("x"), 404, False),
        (Conflict("x"), 409, False),
        (ValidationError("x"), 422, False),
        (RateLimited("x", retry_after=2.5), 429, True),
        (Overloaded("x", retry_after=1.0), 503, True),
        (StoreClosed("x"), 503, True),
        (StoreUnavailable("the database connection dropped"), 503, True),
        (WriterCrashed("x"), 503, True),
        (CortexError("x"), 500, False),
    ],
)
def test_each_error_has_its_status(error: CortexError, status: int, retry_after: bool) -> None:
    kind, headers = problem_for(error)
    assert kind.status == status
    assert ("Retry-After" in headers) is retry_after
