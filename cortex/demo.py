"""A short guided tour of CORTEX on a real data directory (what `make run` shows).

    python -m cortex.demo --home ~/.cortex

Stores a few facts in the project `demo`, supersedes one, lists them, searches them, proves one
entry is in the ledger and verifies the whole ledger. Safe to run repeatedly: each run appends
new facts.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from cortex.config import Settings
from cortex.engine import connect
from cortex.errors import CortexError
from cortex.ledger.merkle import verify_inclusion

__all__ = ["main"]

_FACTS = (
    ("The staging database moved from db-1 to db-2 on Monday.", "infra", "decision"),
    ("Deploys to production need two approvals since the March incident.", "infra", "policy"),
    ("Alice owns the billing service; page her for invoicing errors.", "people", "knowledge"),
)


def run(home: str, console: Console) -> bool:
    """Run the tour against `home`; return True when the ledger verifies."""
    with connect(Settings.load(home)) as memory:
        console.rule("[bold]1. An agent stores facts")
        stored = [
            memory.store(text, project="demo", fact_type=kind, tags=[topic], source="demo-agent")
            for text, topic, kind in _FACTS
        ]
        for fact in stored:
            console.print(f"  stored [cyan]{fact.id}[/] at ledger seq {fact.seq}: {fact.content}")

        console.rule("[bold]2. Facts are never overwritten: an edit supersedes")
        newer = memory.supersede(
            stored[0].id,
            "The staging database moved from db-1 to db-3 (not db-2) on Monday.",
            reason="corrected host name",
        )
        versions = memory.history(newer.id)
        for version in versions:
            console.print(
                f"  {version.fact.id} ({version.fact.status}) {version.fact.content}"
                f"  ({', '.join(tx.op for tx in version.transactions)})"
            )

        console.rule("[bold]3. What the agent knows now (project demo, newest 10)")
        page = memory.list(project="demo", limit=1000)
        table = Table("id", "type", "tags", "content")
        for fact in page.items[-10:]:
            table.add_row(fact.id, fact.fact_type, ",".join(fact.tags), fact.content)
        console.print(table)

        console.rule("[bold]4. Recall by meaning and by words (hybrid search)")
        question = "which host runs the staging database?"
        for hit in memory.search(question, k=3, project="demo"):
            ranks = ", ".join(f"{method} #{rank}" for method, rank in sorted(hit.ranks.items()))
            console.print(f"  {hit.score:.4f}  ({ranks})  {hit.fact.content}", markup=False)
        console.print(f"  for: {question!r}", markup=False)

        console.rule("[bold]5. Proof that the newest fact is in the ledger (RFC 9162)")
        proof = memory.inclusion_proof(newer.id)
        ok = verify_inclusion(proof.leaf_hash, proof.seq, proof.tree_size, proof.path, proof.root)
        console.print(
            f"  entry seq {proof.seq} of {proof.tree_size}, audit path of {len(proof.path)} hashes,"
            f" root {proof.root.hex()[:16]}...  ->  {'[green]verified' if ok else '[red]FAILED'}"
        )
        checkpoint = memory.checkpoint()
        console.print(
            f"  signed checkpoint: size {checkpoint.tree_size}, key {checkpoint.key_id},"
            f" signature {checkpoint.signature.hex()[:16]}..."
        )

        console.rule("[bold]6. Verify the whole ledger")
        report = memory.verify()
        console.print(
            f"  {report.entries} entries, {report.facts} facts, {report.checkpoints} checkpoints"
            f" -> {'[green]OK' if report.ok else f'[red]{len(report.problems)} problem(s)'}"
        )
        for problem in report.problems[:20]:
            console.print(
                f"  [red]{problem.tenant} seq {problem.seq}: {problem.kind}: {problem.detail}"
            )
    cli = _cli_command()
    console.print(
        Panel(
            f"Data directory: {home}\nTry: {cli} list --home {home} --project demo\n"
            f"     {cli} verify --home {home}",
            title="next",
        )
    )
    return ok and report.ok


def _cli_command() -> str:
    """How to call the CLI from here: `cortex` if it is on PATH, else its path in this venv."""
    beside = Path(sys.executable).parent / "cortex"
    if shutil.which("cortex") == str(beside) or not beside.exists():
        return "cortex"
    return str(beside)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m cortex.demo`."""
    parser = argparse.ArgumentParser(
        prog="python -m cortex.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--home", default=None, help="data directory (default: CORTEX_HOME or ~/.cortex)"
    )
    args = parser.parse_args(argv)
    console = Console()
    home = str(Settings.load(args.home).home)
    try:
        return 0 if run(home, console) else 1
    except CortexError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 4


if __name__ == "__main__":
    sys.exit(main())
