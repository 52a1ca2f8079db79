"""DSSE: a signature is checked only with the key its key ID names.

Key ID = lowercase hex SHA-256 of the 32-byte Ed25519 public key. The lookup is
the caller's (a registry, a dict); whatever it returns, a signature filed under
key A's ID must not be accepted on the strength of key B.
"""

from __future__ import annotations

import hashlib

import pytest

from keys import Ed25519Signer
from verifier.dsse import (
    Envelope,
    EnvelopeSignature,
    UnknownKey,
    key_id,
    pae,
    sign_envelope,
    verify_envelope,
)
from verifier.errors import SignatureInvalid

TYPE = "application/vnd.saksi.test+json"
PAYLOAD = b'{"n":1}'
A = Ed25519Signer("a", bytes(range(32)))
B = Ed25519Signer("b", bytes(range(1, 33)))


def test_key_id_is_hex_sha256_of_the_public_key():
    assert A.keyid == key_id(A.public_key) == hashlib.sha256(A.public_key).hexdigest()


def test_valid_signature_under_its_own_key_id_verifies():
    envelope = sign_envelope(TYPE, PAYLOAD, [A])
    assert verify_envelope(envelope, {A.keyid: A.public_key}.get) == (A.keyid,)


def test_lookup_returning_another_keys_public_key_is_rejected():
    # B signed, the line says A's key ID, and the lookup hands back B's key for
    # A's ID (a mis-filed registry entry, a fallback). The signature is valid
    # under the key used, but that key is not the one the ID names.
    sig = B.sign(pae(TYPE, PAYLOAD))
    envelope = Envelope(TYPE, PAYLOAD, (EnvelopeSignature(A.keyid, sig),))
    with pytest.raises(SignatureInvalid) as caught:
        verify_envelope(envelope, {A.keyid: B.public_key}.get)
    assert not isinstance(caught.value, UnknownKey)


def test_lookup_falling_back_to_another_key_is_rejected():
    # Any key ID gets B's key: B's signature filed under A's ID must not pass.
    sig = B.sign(pae(TYPE, PAYLOAD))
    envelope = Envelope(TYPE, PAYLOAD, (EnvelopeSignature(A.keyid, sig),))
    with pytest.raises(SignatureInvalid):
        verify_envelope(envelope, lambda _keyid: B.public_key)
