"""Key material and encryption at rest: the checkpoint signing key, master and data keys.

`keys` creates and loads key files; `envelope` holds the AES-256-GCM and Argon2id primitives;
`cipher.EnvelopeCipher` is the stores' FieldCipher; `master` finds the master key (key file or
passphrase); `rotation` turns encryption on and rotates its keys. See docs/encryption.md.
"""

from cortex.crypto.cipher import EnvelopeCipher
from cortex.crypto.envelope import KdfParams, MasterKey
from cortex.crypto.keys import create_signing_key, load_public_key, load_signing_key
from cortex.crypto.rotation import (
    KEY_ROTATE_OP,
    DataRotation,
    MasterRotation,
    enable_encryption,
    open_cipher,
    rotate_data,
    rotate_master,
)

__all__ = [
    "KEY_ROTATE_OP",
    "DataRotation",
    "EnvelopeCipher",
    "KdfParams",
    "MasterKey",
    "MasterRotation",
    "create_signing_key",
    "enable_encryption",
    "load_public_key",
    "load_signing_key",
    "open_cipher",
    "rotate_data",
    "rotate_master",
]
