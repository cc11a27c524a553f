"""Key material: the checkpoint signing key (encryption at rest arrives with the Trust issue)."""

from cortex.crypto.keys import create_signing_key, load_public_key, load_signing_key

__all__ = ["create_signing_key", "load_public_key", "load_signing_key"]
