"""Key handling: Ed25519 signers and key files encrypted at rest.

Private key bytes never leave this package: signers expose ``sign`` and public
material only, and their ``repr`` hides the key.
"""

from __future__ import annotations

from keys.errors import KeyLoadError
from keys.keyfile import KdfProfile, load_key_file, read_passphrase, write_key_file
from keys.signer import Ed25519Signer

__all__ = [
    "Ed25519Signer",
    "KdfProfile",
    "KeyLoadError",
    "load_key_file",
    "read_passphrase",
    "write_key_file",
]
