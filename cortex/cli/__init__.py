"""The `cortex` command line: thin commands that parse input, call the engine, render output.

cortex init --home ~/.cortex
cortex store "The staging database moved to db-2" --project infra --tag db
cortex list --project infra --json
cortex verify
"""

from cortex.cli.app import app, main

__all__ = ["app", "main"]
