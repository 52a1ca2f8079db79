"""Ed25519 signer for notes (checkpoints) and DSSE envelopes (records).

Implements ``verifier.note.NoteSigner`` and ``verifier.dsse.EnvelopeSigner``. The
seed stays inside the object: ``repr`` shows only the key name and key ID, and
there is no accessor for private bytes other than ``_seed_for_keyfile``, used by
``keys.keyfile`` alone.
"""

from __future__ import annotations

import nacl.signing

from verifier.dsse import key_id
from verifier.note import KEY_TYPE_ED25519, VerifierKey

__all__ = ["Ed25519Signer", "PublicIdentity"]


class PublicIdentity:
    """The public side every Ed25519 signer shows: note name, key IDs, keys.

    Shared by the in-memory and the PKCS#11 signer; neither ``repr`` nor pickling
    can reach what a subclass keeps private.
    """

    __slots__ = ("_key_id", "_name", "_public")

    def _set_identity(self, name: str, public_key: bytes) -> None:
        self._name = name
        self._public = public_key
        # Validates the name too (no spaces, no '+').
        self._key_id = VerifierKey.from_public_key(name, public_key).key_id

    @property
    def name(self) -> str:
        """Signed-note key name."""
        return self._name

    @property
    def key_id(self) -> bytes:
        """Signed-note key ID (4 bytes)."""
        return self._key_id

    @property
    def keyid(self) -> str:
        """DSSE submitter key ID: lowercase hex SHA-256 of the public key."""
        return key_id(self._public)

    @property
    def public_key(self) -> bytes:
        """The 32-byte Ed25519 public key."""
        return self._public

    @property
    def verifier_key(self) -> VerifierKey:
        """The public note verifier key (``name+keyid+base64``)."""
        return VerifierKey(self._name, self._key_id, KEY_TYPE_ED25519, self._public)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name}+{self._key_id.hex()})"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("signers cannot be pickled")


class Ed25519Signer(PublicIdentity):
    """Signs with an Ed25519 key under a signed-note key name."""

    __slots__ = ("_key",)

    def __init__(self, name: str, seed: bytes) -> None:
        if len(seed) != 32:
            raise ValueError("Ed25519 seed must be 32 bytes")
        self._key = nacl.signing.SigningKey(seed)
        self._set_identity(name, bytes(self._key.verify_key))

    @classmethod
    def generate(cls, name: str) -> Ed25519Signer:
        """A new key from the operating system's CSPRNG."""
        return cls(name, bytes(nacl.signing.SigningKey.generate()))

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of ``message``."""
        return self._key.sign(message).signature

    def _seed_for_keyfile(self) -> bytes:
        return bytes(self._key)
