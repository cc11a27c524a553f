"""Clients of the CORTEX REST service with the methods of the local handle.

    from cortex.client import Client
    with Client("http://127.0.0.1:8420", api_key) as memory:      # instead of cortex.connect(...)
        fact = memory.store("The staging database moved to db-2", project="infra")
        proof = memory.inclusion_proof(fact.id)

`Client` (blocking) and `AsyncClient` have the methods of `cortex.CortexSync` / `cortex.Cortex`
(`store`, `store_many`, `get`, `list`, `deprecate`, `supersede`, `history`, `search`, `verify`,
`inclusion_proof`, `consistency_proof`, `checkpoint`, `export`, `vote`, `consensus`,
`reputation`) returning the same model classes
and raising the same `CortexError` classes, mapped back from the service's problem types. The
tenant (and project, for a project key) is the API key's: the methods take no `tenant`.
Requests refused with 429 or 503 are retried after `Retry-After` (else an exponential backoff),
`retries` times; every request has a timeout.

Both are twins over one core (`cortex._client_core`): each method is a `Requests` call, sent by
the client's own transport, sleep and lifecycle.
"""

from __future__ import annotations

import asyncio
import builtins
import inspect
import os
import time
import typing
from collections.abc import Callable, Coroutine, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

from cortex._client_core import (
    CHUNK,
    EXPORT_PATH,
    RETRY_STATUSES,
    AtomicFile,
    Call,
    Requests,
    backoff,
    error_from_problem,
    exported_entries,
    http_options,
    raise_for_problem,
    resendable,
    retry_wait,
)
from cortex.errors import StoreError
from cortex.model import Fact, FactDraft

__all__ = ["AsyncClient", "Client", "ServiceUnreachable", "error_from_problem"]

P = ParamSpec("P")
T = TypeVar("T")
M = TypeVar("M", bound=Callable[..., Any])


class ServiceUnreachable(StoreError):
    """The service could not be reached or did not answer within the timeout."""


class _ClientCore:
    """The settings of both clients and what they do after an attempt: answer, raise or wait."""

    def __init__(self, base_url: str, api_key: str, timeout: float, retries: int) -> None:
        self._http_options = http_options(base_url, api_key, timeout, retries)
        self._base_url = base_url
        self._retries = retries

    def _attempts(self) -> range:
        return range(self._retries + 1)

    def _wait_after_error(self, error: httpx.TransportError, method: str, attempt: int) -> float:
        """Seconds to wait before resending; raises ServiceUnreachable when it may not be."""
        if attempt == self._retries or not resendable(error, method):
            raise ServiceUnreachable(
                f"CORTEX service at {self._base_url} unreachable: {error!r}"
            ) from error
        return backoff(attempt)

    def _wait_after(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before resending, None for a good answer; raises the error answer."""
        if response.status_code in RETRY_STATUSES and attempt < self._retries:
            return retry_wait(response, attempt)
        raise_for_problem(response)
        return None


def _method(method: M, build: Callable[..., Any], owner: str) -> M:
    """`method`, named, documented and signed as the `build` request it sends, on `owner`."""
    signature = inspect.signature(build)
    answer = typing.get_args(typing.get_type_hints(build)["return"])[0]
    this = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    method.__name__ = build.__name__
    method.__qualname__ = f"{owner}.{build.__name__}"
    method.__doc__ = build.__doc__
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[this, *signature.parameters.values()], return_annotation=answer
    )
    return method


def _blocking(build: Callable[P, Call[T]]) -> Callable[Concatenate[Client, P], T]:
    def send(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(build(*args, **kwargs))

    return _method(send, build, "Client")


def _awaiting(
    build: Callable[P, Call[T]],
) -> Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, T]]:
    async def send(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(build(*args, **kwargs))

    return _method(send, build, "AsyncClient")


class Client(_ClientCore):
    """A blocking client of the CORTEX service: the methods of `cortex.connect(...)`'s handle.

    Use as a context manager, or call `close()`. Safe to share between threads.
    """

    def __init__(
        self, base_url: str, api_key: str, *, timeout: float = 30.0, retries: int = 3
    ) -> None:
        super().__init__(base_url, api_key, timeout, retries)
        self._http = httpx.Client(**self._http_options)

    def close(self) -> None:
        """Close the connections. Idempotent."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, call: Call[T]) -> T:
        for attempt in self._attempts():
            try:
                response = self._http.request(
                    call.method, call.path, params=call.params, json=call.body
                )
            except httpx.TransportError as exc:
                time.sleep(self._wait_after_error(exc, call.method, attempt))
                continue
            wait = self._wait_after(response, attempt)
            if wait is None:
                return call.parse(response.json())
            time.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def store_many(self, items: Iterable[FactDraft | Mapping[str, Any]]) -> builtins.list[Fact]:
        """Store up to 1000 facts in one group commit: all of them or, on any invalid, none."""
        drafts = builtins.list(items)
        return self._run(Requests.store_many(drafts)) if drafts else []

    def export(self, path: str | os.PathLike[str], *, approval: str | None = None) -> int:
        """Download the tenant's bundle to `path` (atomically); return its number of entries.

        Needs an admin key without a project. Gated: without `approval` (the token of this
        export's approval), ApprovalRequired names the approval it waits for.
        """
        params = None if approval is None else {"approval": approval}
        with self._http.stream("GET", EXPORT_PATH, params=params) as response:
            if response.status_code != 200:
                response.read()
                raise_for_problem(response)
            target = AtomicFile(Path(path))
            try:
                for chunk in response.iter_bytes(CHUNK):
                    target.write(chunk)
                target.commit()
            except BaseException:
                target.discard()
                raise
            return exported_entries(response)

    store = _blocking(Requests.store)
    get = _blocking(Requests.get)
    list = _blocking(Requests.list)
    deprecate = _blocking(Requests.deprecate)
    supersede = _blocking(Requests.supersede)
    history = _blocking(Requests.history)
    search = _blocking(Requests.search)
    verify = _blocking(Requests.verify)
    inclusion_proof = _blocking(Requests.inclusion_proof)
    consistency_proof = _blocking(Requests.consistency_proof)
    checkpoint = _blocking(Requests.checkpoint)
    latest_checkpoint = _blocking(Requests.latest_checkpoint)
    vote = _blocking(Requests.vote)
    consensus = _blocking(Requests.consensus)
    reputation = _blocking(Requests.reputation)
    report = _blocking(Requests.report)
    purge = _blocking(Requests.purge)
    approvals = _blocking(Requests.approvals)
    approve = _blocking(Requests.approve)
    deny = _blocking(Requests.deny)


class AsyncClient(_ClientCore):
    """An async client of the CORTEX service: the methods of `await cortex.open(...)`'s engine.

    Use as an async context manager, or await `aclose()`.
    """

    def __init__(
        self, base_url: str, api_key: str, *, timeout: float = 30.0, retries: int = 3
    ) -> None:
        super().__init__(base_url, api_key, timeout, retries)
        self._http = httpx.AsyncClient(**self._http_options)

    async def aclose(self) -> None:
        """Close the connections. Idempotent."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _run(self, call: Call[T]) -> T:
        for attempt in self._attempts():
            try:
                response = await self._http.request(
                    call.method, call.path, params=call.params, json=call.body
                )
            except httpx.TransportError as exc:
                await asyncio.sleep(self._wait_after_error(exc, call.method, attempt))
                continue
            wait = self._wait_after(response, attempt)
            if wait is None:
                return call.parse(response.json())
            await asyncio.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def store_many(
        self, items: Iterable[FactDraft | Mapping[str, Any]]
    ) -> builtins.list[Fact]:
        """Store up to 1000 facts in one group commit: all of them or, on any invalid, none."""
        drafts = builtins.list(items)
        return await self._run(Requests.store_many(drafts)) if drafts else []

    async def export(self, path: str | os.PathLike[str], *, approval: str | None = None) -> int:
        """Download the tenant's bundle to `path` (atomically); return its number of entries.

        Needs an admin key without a project. Gated: without `approval` (the token of this
        export's approval), ApprovalRequired names the approval it waits for.
        """
        params = None if approval is None else {"approval": approval}
        async with self._http.stream("GET", EXPORT_PATH, params=params) as response:
            if response.status_code != 200:
                await response.aread()
                raise_for_problem(response)
            target = await asyncio.to_thread(AtomicFile, Path(path))
            try:
                async for chunk in response.aiter_bytes(CHUNK):
                    await asyncio.to_thread(target.write, chunk)
                await asyncio.to_thread(target.commit)
            except BaseException:
                await asyncio.to_thread(target.discard)
                raise
            return exported_entries(response)

    store = _awaiting(Requests.store)
    get = _awaiting(Requests.get)
    list = _awaiting(Requests.list)
    deprecate = _awaiting(Requests.deprecate)
    supersede = _awaiting(Requests.supersede)
    history = _awaiting(Requests.history)
    search = _awaiting(Requests.search)
    verify = _awaiting(Requests.verify)
    inclusion_proof = _awaiting(Requests.inclusion_proof)
    consistency_proof = _awaiting(Requests.consistency_proof)
    checkpoint = _awaiting(Requests.checkpoint)
    latest_checkpoint = _awaiting(Requests.latest_checkpoint)
    vote = _awaiting(Requests.vote)
    consensus = _awaiting(Requests.consensus)
    reputation = _awaiting(Requests.reputation)
    report = _awaiting(Requests.report)
    purge = _awaiting(Requests.purge)
    approvals = _awaiting(Requests.approvals)
    approve = _awaiting(Requests.approve)
    deny = _awaiting(Requests.deny)
