"""The CORTEX MCP server: six tools an agent calls to remember, recall and audit facts.

`build_mcp_server(resolve)` returns an `MCPServer` (the official `mcp` SDK) whose tools act for
the `Caller` that `resolve` returns on each call: the engine, the tenant, the project the caller
is bound to (if any) and its role. `serve_stdio(settings)` runs it over stdio for a local agent
(`cortex mcp`); `cortex.mcp.http.mcp_http_app` serves it over streamable HTTP behind bearer keys.

Tools are thin: they check the caller's scope, call the engine and return `to_dict()` JSON.
A `CortexError` comes back as an MCP tool error (`isError`) whose text names the error class and
says what was wrong; arguments that do not match a tool's schema (unknown names included) come
back the same way; anything else is logged by the SDK with its traceback and reaches the client
only as a generic "Error executing tool <name>".
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, Literal, ParamSpec, TypeVar, cast

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp_types import ToolAnnotations
from pydantic import ConfigDict, Field

from cortex.config import Settings
from cortex.engine import MAX_REASON, Cortex
from cortex.errors import CortexError, Forbidden, NotFound, Overloaded
from cortex.model import MAX_CONTENT_BYTES, MAX_TAGS, Fact, check_name

__all__ = [
    "MAX_SEARCH_K",
    "NAME_PATTERN",
    "TOOL_NAMES",
    "Caller",
    "ResolveCaller",
    "Role",
    "build_mcp_server",
    "fixed_caller",
    "serve_stdio",
]

P = ParamSpec("P")
T = TypeVar("T")

Role = Literal["reader", "writer", "admin"]
_WRITE_ROLES = frozenset({"writer", "admin"})
MAX_SEARCH_K = 100
"""Most hits `search_facts` returns per call: enough to choose from, small enough for a prompt."""

TOOL_NAMES = (
    "store_fact",
    "search_facts",
    "get_fact",
    "deprecate_fact",
    "fact_history",
    "verify_ledger",
)

# The rule `cortex.model.check_name` enforces, published in the schemas so a model gets it right
# the first time (tests check that the two agree).
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_ULID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"

_INSTRUCTIONS = (
    "CORTEX is a tamper-evident long-term memory. Before answering from memory, call search_facts;"
    " when you learn something worth keeping, call store_fact with one self-contained statement."
    " When a stored fact turns out wrong or outdated, call deprecate_fact with the reason."
    " Every change is recorded in a hash-chained ledger: fact_history shows what happened to a"
    " fact and verify_ledger proves that nothing was altered."
)


ClaimAgent = Callable[[str | None, str], Awaitable[str | None]]
"""`claim(name, what)`: the agent name a write may record as `what`, or Forbidden."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Whom a tool call acts for: the engine, the tenant, the bound project (if any), the role."""

    engine: Cortex
    tenant: str
    project: str | None = None
    role: Role = "admin"
    identity: str | None = None
    """The agent the connection acts as (its API key's identity), recorded as the actor."""
    claim: ClaimAgent | None = None
    """Checks an agent name a write records (a fact's source); None: any name (stdio)."""

    async def source(self, requested: str | None) -> str | None:
        """The source a stored fact records: `requested`, as the connection's key allows."""
        return requested if self.claim is None else await self.claim(requested, "source")

    @property
    def can_write(self) -> bool:
        """True when the role may store and deprecate facts."""
        return self.role in _WRITE_ROLES


ResolveCaller = Callable[[Context], Caller]
"""Returns the `Caller` of one tool call from its MCP request context."""
_ToolFunction = Callable[..., Awaitable[dict[str, Any]]]


# ---------------------------------------------------------------------------- tool parameters

FactId = Annotated[
    str,
    Field(
        description=(
            "The fact's id: the 26-character ULID that store_fact or search_facts returned"
            " (field 'id'), e.g. 01JNZ3Q8V4K2M7T9X1B5C6D8EF."
        ),
        pattern=_ULID_PATTERN,
    ),
]
Content = Annotated[
    str,
    Field(
        description=(
            "The fact: one self-contained statement that makes sense without the conversation,"
            " e.g. 'The staging database moved to db-2 on 2026-03-01'."
        ),
        min_length=1,
        max_length=MAX_CONTENT_BYTES,
    ),
]
Project = Annotated[
    str | None,
    Field(
        description=(
            "Project the fact belongs to (1-64 letters, digits, '.', '_' or '-'). Omit to use the"
            " project this connection is bound to, else 'default'."
        ),
        pattern=NAME_PATTERN,
    ),
]
ProjectFilter = Annotated[
    str | None,
    Field(
        description="Only facts of this project. Omit for every project this connection may see.",
        pattern=NAME_PATTERN,
    ),
]
FactType = Annotated[
    str,
    Field(
        description=(
            "Kind of fact, e.g. 'knowledge', 'decision', 'preference', 'procedure' (1-64 letters,"
            " digits, '.', '_' or '-')."
        ),
        pattern=NAME_PATTERN,
    ),
]
FactTypeFilter = Annotated[
    str | None,
    Field(description="Only facts of this fact_type, e.g. 'decision'.", pattern=NAME_PATTERN),
]
Tag = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\s,][^,\n\r\t]*$")]
Tags = Annotated[
    tuple[Tag, ...],
    Field(
        description=(
            f"Labels for filtering later, e.g. ['db', 'staging']: at most {MAX_TAGS} tags of 1-64"
            " characters, no commas or line breaks."
        ),
        max_length=MAX_TAGS,
    ),
]
TagsFilter = Annotated[
    tuple[Tag, ...],
    Field(description="Only facts that carry every one of these tags.", max_length=MAX_TAGS),
]
Source = Annotated[
    str | None,
    Field(
        description="Who knows this: your agent id (1-64 letters, digits, '.', '_' or '-')."
        " Over HTTP, a key bound to an agent always records that agent; leave it out then.",
        pattern=NAME_PATTERN,
    ),
]
Confidence = Annotated[
    float | None,
    Field(description="How sure the source is, from 0 (guess) to 1 (certain).", ge=0, le=1),
]
Instant = Annotated[
    str | None,
    Field(
        description=(
            "ISO 8601 date or timestamp, e.g. '2026-03-01' or '2026-03-01T12:00:00Z' (UTC when no"
            " offset is given)."
        ),
        max_length=64,
    ),
]
Meta = Annotated[
    dict[str, Any] | None,
    Field(description='Extra JSON data to keep with the fact, e.g. {"ticket": 7}.'),
]
Query = Annotated[
    str,
    Field(
        description=(
            "What to look for, in natural language or keywords, e.g. 'which port does the"
            " staging cache use?'."
        ),
        min_length=1,
        max_length=10_000,
    ),
]
SearchK = Annotated[
    int,
    Field(
        description=f"How many facts to return, best first (1-{MAX_SEARCH_K}).",
        ge=1,
        le=MAX_SEARCH_K,
    ),
]
Mode = Annotated[
    Literal["hybrid", "vector", "text"],
    Field(
        description=(
            "'hybrid' (default) ranks by meaning and by words together; 'vector' by meaning only;"
            " 'text' by exact words only (best for ids, names and error codes)."
        )
    ),
]
Reason = Annotated[
    str,
    Field(
        description=(
            "Why the fact no longer holds, e.g. 'db-2 was decommissioned on 2026-04-02'."
            " Recorded in the ledger."
        ),
        min_length=1,
        max_length=MAX_REASON,
    ),
]


# ---------------------------------------------------------------------------- tool descriptions

_STORE_FACT = """Store one fact in long-term memory and return it as stored.

Use for something worth remembering across sessions: a decision, a preference, a finding, a
changed setting. Write one self-contained statement per fact. The result is the stored fact:
'id' (keep it to get, deprecate or audit the fact later), 'seq' (its ledger entry), 'status',
'created_at' and the fields you gave. Storing never overwrites: to correct a fact, store the new
one and deprecate the old one."""

_SEARCH_FACTS = f"""Search long-term memory and return the facts that best answer a query.

Returns {{"hits": [{{"fact": {{...}}, "score": number, "ranks": {{"vector": n, "text": n}}}}]}},
best first; a higher score is better and 'ranks' tells which method found the fact. Only active
facts are searched unless include_inactive is true. Filters combine with AND. With as_of, only
facts valid at that instant are searched, as they were recorded then. k is 1-{MAX_SEARCH_K}."""

_GET_FACT = """Return one fact by id, with its status and ledger position.

The result has 'id', 'content', 'project', 'fact_type', 'tags', 'source', 'confidence',
'valid_from', 'valid_until', 'created_at', 'meta', 'seq', 'status' ('active', 'deprecated' or
'superseded'), 'deprecation_reason' and 'superseded_by'. With as_of, returns the fact as it was
recorded at that instant (an error if it was not valid then). Unknown ids are an error."""

_DEPRECATE_FACT = """Mark an active fact as no longer true, with the reason, and return it.

The fact stays readable (status 'deprecated', with 'deprecated_at' and 'deprecation_reason') and
drops out of default searches; the change is recorded in the ledger. Deprecating a fact that is
already deprecated or superseded is an error (Conflict)."""

_FACT_HISTORY = """Return every version of a fact with the ledger transactions that touched it.

Returns {"versions": [{"fact": {...}, "transactions": [{"seq", "op", "ts", "actor", "hash",
...}]}]}, oldest version first: the fact's supersession chain, and for each version the ledger
entries that stored, deprecated or superseded it. Use it to explain when and why a fact
changed."""

_VERIFY_LEDGER = """Verify that this tenant's memory was not altered, and return the report.

Recomputes the hash chain, the Merkle tree roots, every fact's digest and every signed
checkpoint. Returns {"ok": bool, "entries", "facts", "checkpoints", "problems": [{"seq", "kind",
"detail"}], "truncated"}; 'ok' is true only when no problem was found. Takes longer on large
ledgers; call it when asked to audit, not on every turn."""


def _reports_errors(tool: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Turn a `CortexError` of `tool` into a tool error whose text says what was wrong."""

    @functools.wraps(tool)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await tool(*args, **kwargs)
        except CortexError as exc:
            raise ToolError(_error_text(exc)) from exc

    return call


def _error_text(error: CortexError) -> str:
    """The tool error text of `error`: its class (what kind of failure) and its message."""
    text = f"{type(error).__name__}: {error}"
    if isinstance(error, Overloaded):
        text += f" (retry in {error.retry_after:g} s)"
    return text


def _require_write(caller: Caller) -> None:
    if not caller.can_write:
        raise Forbidden(
            f"this connection's role is {caller.role!r}: it can search and read facts but not"
            " change them; storing or deprecating needs a 'writer' or 'admin' key"
        )


def _project_for(caller: Caller, project: str | None) -> str | None:
    """The project a call acts on: the bound one, or `project`; Forbidden if they differ."""
    if caller.project is None:
        return project
    if project is not None and project != caller.project:
        raise Forbidden(
            f"this connection is bound to project {caller.project!r}; it cannot use project"
            f" {project!r}"
        )
    return caller.project


def _check_visible(caller: Caller, fact: Fact, fact_id: str) -> None:
    """NotFound (exactly as for a missing id) when `fact` lies outside the caller's project."""
    if caller.project is not None and fact.project != caller.project:
        raise NotFound(f"no fact {fact_id!r} in tenant {caller.tenant!r}")


def build_mcp_server(resolve: ResolveCaller, *, name: str = "cortex") -> MCPServer:
    """Return an MCP server with the six CORTEX tools, each acting for `resolve(context)`."""

    async def store_fact(
        ctx: Context,
        content: Content,
        project: Project = None,
        fact_type: FactType = "knowledge",
        tags: Tags = (),
        source: Source = None,
        confidence: Confidence = None,
        valid_from: Instant = None,
        valid_until: Instant = None,
        meta: Meta = None,
    ) -> dict[str, Any]:
        caller = resolve(ctx)
        _require_write(caller)
        fact = await caller.engine.store(
            content,
            project=_project_for(caller, project),
            fact_type=fact_type,
            tags=tags,
            source=await caller.source(source),
            confidence=confidence,
            valid_from=valid_from,
            valid_until=valid_until,
            meta=meta,
            tenant=caller.tenant,
        )
        return fact.to_dict()

    async def search_facts(
        ctx: Context,
        query: Query,
        k: SearchK = 10,
        mode: Mode = "hybrid",
        project: ProjectFilter = None,
        fact_type: FactTypeFilter = None,
        tags: TagsFilter = (),
        include_inactive: Annotated[
            bool, Field(description="Also search deprecated and superseded facts.")
        ] = False,
        as_of: Instant = None,
    ) -> dict[str, Any]:
        caller = resolve(ctx)
        hits = await caller.engine.search(
            query,
            k=k,
            mode=mode,
            project=_project_for(caller, project),
            fact_type=fact_type,
            tags=tags,
            include_inactive=include_inactive,
            as_of=as_of,
            tenant=caller.tenant,
        )
        return {"hits": [hit.to_dict() for hit in hits]}

    async def get_fact(ctx: Context, fact_id: FactId, as_of: Instant = None) -> dict[str, Any]:
        caller = resolve(ctx)
        fact = await caller.engine.get(fact_id, as_of=as_of, tenant=caller.tenant)
        _check_visible(caller, fact, fact_id)
        return fact.to_dict()

    async def deprecate_fact(ctx: Context, fact_id: FactId, reason: Reason) -> dict[str, Any]:
        caller = resolve(ctx)
        _require_write(caller)
        if caller.project is not None:
            # A fact's project never changes, so checking before the write is enough.
            _check_visible(caller, await caller.engine.get(fact_id, tenant=caller.tenant), fact_id)
        fact = await caller.engine.deprecate(
            fact_id, reason, actor=caller.identity, tenant=caller.tenant
        )
        return fact.to_dict()

    async def fact_history(ctx: Context, fact_id: FactId) -> dict[str, Any]:
        caller = resolve(ctx)
        versions = await caller.engine.history(fact_id, tenant=caller.tenant)
        if caller.project is not None:
            asked = [v for v in versions if v.fact.id == fact_id]
            if asked:
                _check_visible(caller, asked[0].fact, fact_id)
            versions = [v for v in versions if v.fact.project == caller.project]
        return {"versions": [version.to_dict() for version in versions]}

    async def verify_ledger(ctx: Context) -> dict[str, Any]:
        caller = resolve(ctx)
        report = await caller.engine.verify(tenant=caller.tenant)
        return report.to_dict()

    writes = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
    reads = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    tools: tuple[tuple[_ToolFunction, str, str, ToolAnnotations], ...] = (
        (store_fact, "Store a fact", _STORE_FACT, writes),
        (search_facts, "Search facts", _SEARCH_FACTS, reads),
        (get_fact, "Get a fact", _GET_FACT, reads),
        (deprecate_fact, "Deprecate a fact", _DEPRECATE_FACT, writes),
        (fact_history, "Fact history", _FACT_HISTORY, reads),
        (verify_ledger, "Verify the ledger", _VERIFY_LEDGER, reads),
    )
    return MCPServer(
        name,
        title="CORTEX memory",
        version=_package_version(),
        instructions=_INSTRUCTIONS,
        log_level="WARNING",
        subscriptions=False,
        tools=[
            _strict_tool(_reports_errors(tool), tool.__name__, title, description, annotations)
            for tool, title, description, annotations in tools
        ],
    )


def _package_version() -> str:
    """The installed version of CORTEX, for the server's `serverInfo`."""
    try:
        return version("cortex-memory")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def _strict_tool(
    fn: _ToolFunction,
    name: str,
    title: str,
    description: str,
    annotations: ToolAnnotations,
) -> Tool:
    """A tool whose arguments model, and so its input schema, refuses unknown argument names.

    The SDK's default ignores them: a model that writes `tag` for `tags` would lose the tags
    without a word. Here it gets "Extra inputs are not permitted" and the schema says
    `additionalProperties: false`.
    """
    tool = Tool.from_function(
        fn,
        name=name,
        title=title,
        description=description,
        annotations=annotations,
        structured_output=True,
    )
    loose = tool.fn_metadata.arg_model
    strict = cast(
        type[ArgModelBase],
        type(loose.__name__, (loose,), {"model_config": ConfigDict(extra="forbid")}),
    )
    metadata = tool.fn_metadata.model_copy(update={"arg_model": strict})
    return tool.model_copy(
        update={"fn_metadata": metadata, "parameters": strict.model_json_schema(by_alias=True)}
    )


def fixed_caller(caller: Caller) -> ResolveCaller:
    """A resolver that acts for the same `caller` on every call (stdio: one local agent)."""

    def resolve(ctx: Context) -> Caller:
        return caller

    return resolve


async def serve_stdio(settings: Settings, *, project: str | None = None) -> None:
    """Open the engine, serve the MCP tools over stdin/stdout until EOF, then close the engine.

    The server acts for `settings.tenant`, bound to `project` when given, with the admin role:
    whoever can start it can read the data directory anyway.
    """
    if project is not None:
        check_name("project", project)
    engine = await Cortex.open(settings)
    try:
        caller = Caller(engine, settings.tenant, project, "admin")
        await build_mcp_server(fixed_caller(caller)).run_stdio_async()
    finally:
        await engine.aclose()
