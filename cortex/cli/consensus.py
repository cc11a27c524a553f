"""Commands of the consensus feature: vote on a fact, show its consensus, an agent's reputation."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from cortex.cli.options import AsJson, Home, Tenant, open_memory
from cortex.cli.output import print_fields, print_json, print_table
from cortex.consensus import Consensus
from cortex.errors import ValidationError

__all__ = ["consensus", "reputation", "vote"]

_VALUES = {"up": 1, "down": -1, "+1": 1, "-1": -1}

FactId = Annotated[str, typer.Argument(metavar="ID", help="Fact id.", show_default=False)]


def vote(
    fact_id: FactId,
    direction: Annotated[
        str,
        typer.Argument(
            metavar="up|down", help="up (+1: the fact holds) or down (-1).", show_default=False
        ),
    ],
    agent: Annotated[
        str,
        typer.Option("--agent", "-a", metavar="NAME", help="The agent that votes (required)."),
    ],
    reason: Annotated[
        str | None,
        typer.Option("--reason", "-r", metavar="TEXT", help="Why (logged in the ledger)."),
    ] = None,
    home: Home = None,
    tenant: Tenant = None,
    as_json: AsJson = False,
) -> None:
    """Vote on an active fact as an agent; the agent's latest vote on a fact is the one counted.

    Each vote is a ledger entry; a new vote by the same agent replaces its earlier one for
    scoring (both stay in the ledger). Prints the vote and the fact's consensus after it.
    Deprecated and superseded facts take no votes (exit 4).

    Examples:

        cortex vote 01JNZ3Q8V4K2M7T9X1B5C6D8EF up --agent reviewer-1 --reason "checked in prod"
        cortex vote 01JNZ3Q8V4K2M7T9X1B5C6D8EF down --agent reviewer-2 --json
    """
    value = _VALUES.get(direction.lower())
    if value is None:
        raise ValidationError(f"the vote is 'up' or 'down', got {direction!r}")
    with open_memory(home, tenant) as memory:
        cast = memory.vote(fact_id, value, agent=agent, reason=reason)
        after = memory.consensus(fact_id)
    if as_json:
        print_json({"vote": cast.to_dict(), "consensus": after.to_dict()})
        return
    word = "up" if value > 0 else "down"
    typer.echo(
        f"{cast.agent} voted {word} on {cast.fact_id} (seq {cast.seq});"
        f" consensus {after.score:+.3f} ({after.status})"
    )


def consensus(
    fact_id: FactId,
    home: Home = None,
    tenant: Tenant = None,
    as_json: AsJson = False,
) -> None:
    """Show a fact's consensus: its score in (-1, 1), status, and each agent's standing vote.

    The score is the reputation-weighted vote (docs/consensus.md); WEIGHT is what each vote
    counted for (0 for the fact's own author, scaled down when many new agents voted).

    Example: cortex consensus 01JNZ3Q8V4K2M7T9X1B5C6D8EF
    """
    with open_memory(home, tenant) as memory:
        found = memory.consensus(fact_id)
    if as_json:
        print_json(found.to_dict())
        return
    print_fields(
        [
            ("fact", found.fact_id),
            ("score", f"{found.score:+.4f}"),
            ("status", found.status),
            ("outcome", found.outcome),
            ("support", f"{found.support:.4f}"),
            ("opposition", f"{found.opposition:.4f}"),
            ("thresholds", f"verified >= {found.verified_at:g}, disputed <= {found.disputed_at:g}"),
            ("votes", f"{len(found.votes)} standing, {found.votes_cast} cast"),
        ]
    )
    if found.votes:
        print_table(_votes_table(found))


def _votes_table(found: Consensus) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("AGENT", no_wrap=True)
    table.add_column("VOTE", no_wrap=True)
    table.add_column("WEIGHT", justify="right", no_wrap=True)
    table.add_column("REPUTATION", justify="right", no_wrap=True)
    table.add_column("POOL", no_wrap=True)
    table.add_column("SEQ", justify="right", no_wrap=True)
    table.add_column("REASON", overflow="fold")
    for vote in found.votes:
        pool = "established" if vote.established else "fresh"
        table.add_row(
            Text(vote.agent),
            "up" if vote.value > 0 else "down",
            f"{vote.weight:.4f}",
            f"{vote.reputation:.4f}",
            pool if vote.counted else "author (not counted)",
            str(vote.seq),
            Text(vote.reason or "-"),
        )
    return table


def reputation(
    agent: Annotated[str, typer.Argument(metavar="AGENT", help="Agent name.", show_default=False)],
    home: Home = None,
    tenant: Tenant = None,
    as_json: AsJson = False,
) -> None:
    """Show an agent's reputation in (0, 1), its vote weight and the record they come from.

    The record counts the agent's facts that were verified or refuted (disputed or deprecated)
    and its timely votes that agreed or disagreed with a fact's outcome; "formula" shows the
    computation. An agent without a record has the prior, 0.5.

    Example: cortex reputation reviewer-1 --json
    """
    with open_memory(home, tenant) as memory:
        found = memory.reputation(agent)
    if as_json:
        print_json(found.to_dict())
        return
    print_fields(
        [
            ("agent", found.agent),
            ("reputation", f"{found.score:.4f}"),
            ("weight", f"{found.weight:.4f}"),
            ("standing", "established" if found.established else "fresh"),
            ("facts", f"{found.facts_verified} verified, {found.facts_refuted} refuted"),
            (
                "votes",
                f"{found.votes_agreed} agreed, {found.votes_disagreed} disagreed,"
                f" {found.votes_standing} standing",
            ),
            ("formula", found.formula),
        ]
    )
