"""PEM import and export of Ed25519 keys (PKCS#8 private, SubjectPublicKeyInfo public).

So operators can move keys between Saksi and standard tooling (``openssl pkey``,
HSM import utilities). A private key leaves only encrypted under a passphrase
unless the caller explicitly asks for an unencrypted export.
"""

from __future__ import annotations

from cryptography.exceptions import InternalError, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from keys.errors import KeyLoadError
from keys.signer import Ed25519Signer

__all__ = [
    "private_key_to_pem",
    "public_key_from_pem",
    "public_key_to_pem",
    "signer_from_pem",
]


def public_key_to_pem(public_key: bytes) -> bytes:
    """The 32-byte Ed25519 public key as a SubjectPublicKeyInfo PEM.

    Raises:
        KeyLoadError: not 32 bytes.
    """
    if len(public_key) != 32:
        raise KeyLoadError("an Ed25519 public key is 32 bytes")
    key = ed25519.Ed25519PublicKey.from_public_bytes(public_key)
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_from_pem(data: bytes) -> bytes:
    """The raw 32-byte key from a SubjectPublicKeyInfo PEM (or a private PEM).

    Raises:
        KeyLoadError: not an Ed25519 public key PEM.
    """
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm, InternalError):  # not a public key
        try:
            return _private(data, None).public_key
        except KeyLoadError:
            raise KeyLoadError("not an Ed25519 public key PEM") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise KeyLoadError("the PEM holds a key that is not Ed25519")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def private_key_to_pem(signer: Ed25519Signer, passphrase: bytes | None) -> bytes:
    """The signer's key as PKCS#8 PEM, encrypted unless ``passphrase`` is None."""
    key = ed25519.Ed25519PrivateKey.from_private_bytes(signer._seed_for_keyfile())
    encryption: serialization.KeySerializationEncryption = (
        serialization.NoEncryption()
        if passphrase is None
        else serialization.BestAvailableEncryption(passphrase)
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _private(data: bytes, passphrase: bytes | None) -> Ed25519Signer:
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except (ValueError, TypeError, UnsupportedAlgorithm, InternalError) as e:
        # InternalError: OpenSSL refusing to set up a malformed key (an Ed448
        # key of the wrong length). Never echo the library's message: it may
        # describe the key material.
        raise KeyLoadError(
            "cannot read the PKCS#8 PEM (wrong passphrase, or not a private key)"
        ) from e
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise KeyLoadError("the PEM holds a key that is not Ed25519")
    seed = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return Ed25519Signer("imported", seed)


def signer_from_pem(data: bytes, passphrase: bytes | None, name: str) -> Ed25519Signer:
    """An Ed25519 signer from a PKCS#8 PEM (encrypted or not).

    Raises:
        KeyLoadError: wrong passphrase, not PKCS#8, or not Ed25519.
    """
    signer = _private(data, passphrase)
    return Ed25519Signer(name, signer._seed_for_keyfile())
