"""One router per resource: facts, search, ledger (proofs, checkpoints, export), keys, service."""
