"""Limits of the service: token buckets by key or client address, and the request body limit."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cortex.api.problems import problem_for, problem_response, request_id_of
from cortex.errors import Overloaded

__all__ = ["BodyLimitMiddleware", "TokenBuckets", "WriteShedMiddleware"]


class TokenBuckets:
    """One token bucket per name (`rate` tokens/s, at most `burst`), for at most `max_names`.

    Beyond `max_names` the least recently used bucket is dropped (its name starts afresh with a
    full bucket), so memory stays bounded whatever the number of keys or client addresses.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        max_names: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = float(rate)
        self._burst = float(burst)
        self._max_names = max_names
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _level(self, name: str, now: float) -> float:
        tokens, then = self._buckets.get(name, (self._burst, now))
        return min(self._burst, tokens + (now - then) * self._rate)

    def _store(self, name: str, tokens: float, now: float) -> None:
        self._buckets[name] = (tokens, now)
        self._buckets.move_to_end(name)
        while len(self._buckets) > self._max_names:
            self._buckets.popitem(last=False)

    def wait(self, name: str) -> float:
        """Seconds until `name` has a token (0.0 when it has one now); takes nothing."""
        tokens = self._level(name, self._clock())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self._rate

    def take(self, name: str) -> float:
        """Take a token for `name`: 0.0 if there was one, else the seconds until there is."""
        now = self._clock()
        tokens = self._level(name, now)
        if tokens < 1.0:
            self._store(name, tokens, now)
            return (1.0 - tokens) / self._rate
        self._store(name, tokens - 1.0, now)
        return 0.0


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` with a 413 problem, by header or while streaming."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = int(value) if value.isdigit() else -1
                if declared > self.max_bytes:
                    response = problem_response(
                        413, self._detail(), request_id_of(scope), headers={"Connection": "close"}
                    )
                    await response(scope, receive, send)
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI re-raises an HTTPException met while reading the body; the
                    # problem handler turns it into the 413 problem.
                    raise HTTPException(413, self._detail())
            return message

        await self.app(scope, limited_receive, send)

    def _detail(self) -> str:
        return f"the request body exceeds {self.max_bytes} bytes (max_body_bytes)"


class WriteShedMiddleware:
    """Answer a write with 503 (and Retry-After) before reading its body when the engine's write
    queue is full, or when as many writes as it holds are already being handled (read,
    validated, screened or waiting for the queue): under overload a refused write then costs
    the event loop microseconds instead of a parsed, validated and screened body, and the work
    the loop holds at once stays bounded, so reads and /health stay responsive."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        queue_depth: Callable[[], int | None],
        capacity: int,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self._depth = queue_depth
        self._capacity = capacity
        self._on_refused = on_refused
        self._handling = 0

    @property
    def handling(self) -> int:
        """Writes admitted and not yet answered."""
        return self._handling

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and _is_queued_write(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        if self._handling >= self._capacity or (self._depth() or 0) >= self._capacity:
            refused = Overloaded("the write queue is full; retry after the Retry-After delay")
            kind, headers = problem_for(refused)
            if self._on_refused is not None:
                self._on_refused(kind.slug)  # counted like every other error answered
            response = problem_response(
                kind.status, str(refused), request_id_of(scope), kind=kind, headers=headers
            )
            await response(scope, receive, send)
            return
        self._handling += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self._handling -= 1


def _is_queued_write(path: str) -> bool:
    """True for the routes whose work goes through the engine's write queue."""
    return path.startswith("/v1/facts") or path == "/v1/ledger/checkpoint"
