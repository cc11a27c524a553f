"""The outermost layer of the app: request ids, request metrics, and the last-resort 500."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cortex.api.metrics import ApiMetrics
from cortex.api.problems import REQUEST_ID_KEY, internal_error_response

__all__ = ["ServiceMiddleware"]

log = logging.getLogger("cortex.api")

# A caller's own request id is kept when it is short and plain; otherwise a new one is made.
_CALLER_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")


class ServiceMiddleware:
    """Give every HTTP request an id (`X-Request-ID`), time and count it by route template, and
    answer an unexpected exception with a logged 500 problem instead of a dropped connection."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope[REQUEST_ID_KEY] = request_id
        start = time.perf_counter()
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                MutableHeaders(scope=message).append("X-Request-ID", request_id)
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # The boundary of the service: a bug must not take the connection down unanswered.
            log.exception("request %s (%s %s) failed", request_id, scope["method"], scope["path"])
            self.metrics.errors.labels("internal-error").inc()
            if started:
                raise
            await internal_error_response(request_id)(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(
                scope["method"], template, status, time.perf_counter() - start
            )


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _CALLER_ID.match(value):
            return bytes(value).decode()
    return uuid.uuid4().hex
