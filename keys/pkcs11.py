"""A PKCS#11 signer for the log key: the private key never leaves the token.

Ed25519 in PKCS#11 v3: key type ``CKK_EC_EDWARDS`` with the curve named by OID
1.3.101.112, mechanism ``CKM_EDDSA``. The public key is read from the token's
``CKA_EC_POINT`` (a DER OCTET STRING: 0x04, 0x20, then the 32 key bytes) and the
signatures are plain 64-byte Ed25519, so the verifier checks them with PyNaCl like
any other. Tested against SoftHSM2. The PIN is taken once at open and never kept
in a repr, a log line or an error.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import cast

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass, SignMixin
from pkcs11.util.ec import encode_named_curve_parameters

from keys.errors import KeyLoadError
from keys.signer import PublicIdentity

__all__ = ["ED25519_OID", "Pkcs11Signer", "generate_token_key"]

ED25519_OID = "1.3.101.112"


def _public_from_point(point: bytes) -> bytes:
    if len(point) == 34 and point[:2] == b"\x04\x20":
        return point[2:]
    if len(point) == 32:  # some tokens store the raw point
        return point
    raise KeyLoadError("the token's EC_POINT is not an Ed25519 public key")


def generate_token_key(
    library: str, token_label: str, pin: str, key_label: str
) -> bytes:
    """Generate an Ed25519 key pair on the token; return the public key.

    Raises:
        KeyLoadError: the token or library refused (message without the PIN).
    """
    try:
        token = pkcs11.lib(library).get_token(token_label=token_label)
        with token.open(user_pin=pin, rw=True) as session:
            params = session.create_domain_parameters(
                KeyType.EC_EDWARDS,
                {Attribute.EC_PARAMS: encode_named_curve_parameters(ED25519_OID)},
                local=True,
            )
            public, _ = params.generate_keypair(store=True, label=key_label)
            return _public_from_point(bytes(public[Attribute.EC_POINT]))
    except pkcs11.PKCS11Error as e:
        raise KeyLoadError(f"PKCS#11 key generation failed: {type(e).__name__}") from e


class Pkcs11Signer(PublicIdentity):
    """Signs checkpoints (``NoteSigner``) and envelopes with a key on a token."""

    def __init__(
        self, library: str, token_label: str, pin: str, key_label: str, name: str
    ) -> None:
        try:
            token = pkcs11.lib(library).get_token(token_label=token_label)
            self._session = token.open(user_pin=pin)
            self._private = cast(
                SignMixin,
                self._session.get_key(
                    object_class=ObjectClass.PRIVATE_KEY,
                    key_type=KeyType.EC_EDWARDS,
                    label=key_label,
                ),
            )
            public = self._session.get_key(
                object_class=ObjectClass.PUBLIC_KEY,
                key_type=KeyType.EC_EDWARDS,
                label=key_label,
            )
            public_key = _public_from_point(bytes(public[Attribute.EC_POINT]))
        except (pkcs11.PKCS11Error, RuntimeError) as e:
            raise KeyLoadError(
                f"cannot open key {key_label!r} on token {token_label!r}: "
                f"{type(e).__name__}"
            ) from e
        self._set_identity(name, public_key)
        # A PKCS#11 session is not safe for concurrent use.
        self._lock = threading.Lock()

    def sign(self, message: bytes) -> bytes:
        """Sign on the token (CKM_EDDSA); 64 bytes.

        Raises:
            KeyLoadError: the token refused (e.g. removed, session closed).
        """
        try:
            with self._lock:
                signature = self._private.sign(message, mechanism=Mechanism.EDDSA)
        except pkcs11.PKCS11Error as e:
            raise KeyLoadError(f"token signing failed: {type(e).__name__}") from e
        return bytes(signature)

    def close(self) -> None:
        """Close the token session."""
        self._session.close()

    def __enter__(self) -> Pkcs11Signer:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.close()
