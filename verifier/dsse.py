"""DSSE envelopes (Dead Simple Signing Envelope v1) with Ed25519 signatures.

An envelope is ``{"payloadType", "payload" (base64), "signatures": [{"keyid",
"sig"}]}``; each signature covers PAE = ``"DSSEv1" SP len(type) SP type SP
len(payload) SP payload`` (lengths as ASCII decimals of byte counts). Key IDs are
the lowercase hex SHA-256 of the 32-byte Ed25519 public key (DESIGN.md).

Stricter than DSSE requires, because envelopes are submissions to a ledger: no
members beyond those above, canonical padded standard base64 only, 64-hex key IDs,
no key signing twice, at most ``MAX_SIGNATURES`` signatures. Deciding *which* keys
may sign is not done here: ``verify_envelope`` takes the public keys to check with.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import nacl.exceptions
import nacl.signing

from verifier._encoding import b64decode_strict, b64encode
from verifier.errors import MalformedInput, SignatureInvalid
from verifier.jcs import parse_json

__all__ = [
    "MAX_SIGNATURES",
    "Envelope",
    "EnvelopeSignature",
    "EnvelopeSigner",
    "UnknownKey",
    "envelope_to_json",
    "key_id",
    "pae",
    "parse_envelope",
    "sign_envelope",
    "verify_envelope",
]

MAX_SIGNATURES = 16
MAX_ENVELOPE_SIZE = 96 * 1024
_KEY_ID = re.compile(r"\A[0-9a-f]{64}\Z")
_MEMBERS = {"payloadType", "payload", "signatures"}


class UnknownKey(SignatureInvalid):
    """A signature names a key ID the verifier has no public key for.

    Attributes:
        keyid: the unknown key ID (public information).
    """

    cause = "unknown-key"

    def __init__(self, keyid: str) -> None:
        super().__init__(f"signature by an unknown key {keyid}")
        self.keyid = keyid


@dataclass(frozen=True, slots=True)
class EnvelopeSignature:
    """One signature: the signer's key ID and the 64-byte Ed25519 signature."""

    keyid: str
    sig: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    """A parsed DSSE envelope (payload decoded)."""

    payload_type: str
    payload: bytes
    signatures: tuple[EnvelopeSignature, ...]


class EnvelopeSigner(Protocol):
    """Anything that can sign bytes with an Ed25519 key and name its key ID."""

    @property
    def keyid(self) -> str:
        """Lowercase hex SHA-256 of the public key."""
        ...

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        ...


def key_id(public_key: bytes) -> str:
    """The submitter key ID: lowercase hex SHA-256 of the 32-byte public key.

    Raises:
        MalformedInput: not 32 bytes.
    """
    if len(public_key) != 32:
        raise MalformedInput(
            f"Ed25519 public key: expected 32 bytes, found {len(public_key)}"
        )
    return hashlib.sha256(public_key).hexdigest()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of a payload and its type."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def envelope_to_json(envelope: Envelope) -> dict[str, Any]:
    """The envelope as a JSON object (base64 fields encoded)."""
    return {
        "payloadType": envelope.payload_type,
        "payload": b64encode(envelope.payload),
        "signatures": [
            {"keyid": s.keyid, "sig": b64encode(s.sig)} for s in envelope.signatures
        ],
    }


def _require_str(value: object, what: str, max_len: int) -> str:
    if not isinstance(value, str):
        raise MalformedInput(f"{what}: expected a string, found {type(value).__name__}")
    if len(value) > max_len:
        raise MalformedInput(f"{what}: longer than {max_len} characters")
    return value


def parse_envelope(source: bytes | Mapping[str, Any]) -> Envelope:
    """Parse a DSSE envelope from JSON bytes or an already-parsed JSON object.

    Raises:
        MalformedInput: not a JSON object with exactly payloadType, payload and
            signatures; bad base64; a malformed or repeated key ID; a signature
            that is not 64 bytes; no signatures or more than ``MAX_SIGNATURES``.
    """
    raw = (
        parse_json(source, MAX_ENVELOPE_SIZE, "envelope")
        if isinstance(source, bytes)
        else source
    )
    if not isinstance(raw, Mapping):
        raise MalformedInput("envelope: expected a JSON object")
    members = set(raw)
    if members != _MEMBERS:
        missing, extra = sorted(_MEMBERS - members), sorted(members - _MEMBERS)
        raise MalformedInput(
            f"envelope: expected members {sorted(_MEMBERS)}"
            + (f"; missing {missing}" if missing else "")
            + (f"; unexpected {extra}" if extra else "")
        )
    payload_type = _require_str(raw["payloadType"], "envelope payloadType", 256)
    payload = b64decode_strict(
        _require_str(raw["payload"], "envelope payload", 2 * MAX_ENVELOPE_SIZE),
        "envelope payload",
    )
    items = raw["signatures"]
    if not isinstance(items, list) or not items:
        raise MalformedInput("envelope signatures: expected a non-empty list")
    if len(items) > MAX_SIGNATURES:
        raise MalformedInput(
            f"envelope: {len(items)} signatures, at most {MAX_SIGNATURES} allowed",
            cause="too-many-signatures",
        )
    signatures = []
    seen: set[str] = set()
    for number, item in enumerate(items):
        what = f"envelope signature {number}"
        if not isinstance(item, Mapping) or set(item) != {"keyid", "sig"}:
            raise MalformedInput(f"{what}: expected exactly keyid and sig")
        keyid = _require_str(item["keyid"], f"{what} keyid", 64)
        if not _KEY_ID.match(keyid):
            raise MalformedInput(f"{what}: keyid must be 64 lowercase hex characters")
        if keyid in seen:
            raise MalformedInput(f"{what}: key {keyid} signs twice")
        seen.add(keyid)
        sig = b64decode_strict(_require_str(item["sig"], f"{what} sig", 128), what)
        if len(sig) != 64:
            raise MalformedInput(f"{what}: expected 64 bytes, found {len(sig)}")
        signatures.append(EnvelopeSignature(keyid, sig))
    return Envelope(payload_type, payload, tuple(signatures))


def sign_envelope(
    payload_type: str, payload: bytes, signers: Sequence[EnvelopeSigner]
) -> Envelope:
    """Sign a payload with every signer (one signature each), in the given order.

    Raises:
        MalformedInput: no signers, too many, or one key twice.
    """
    if not signers or len(signers) > MAX_SIGNATURES:
        raise MalformedInput(f"sign: need 1 to {MAX_SIGNATURES} signers")
    if len({s.keyid for s in signers}) != len(signers):
        raise MalformedInput("sign: the same key is given twice")
    message = pae(payload_type, payload)
    return Envelope(
        payload_type,
        payload,
        tuple(EnvelopeSignature(s.keyid, s.sign(message)) for s in signers),
    )


def verify_envelope(
    envelope: Envelope, public_key: Callable[[str], bytes | None]
) -> tuple[str, ...]:
    """Check every signature; return the key IDs that signed, in envelope order.

    Every signature must verify: an envelope carrying one bad or unknown signature
    is refused as a whole, so a submission never relies on part of its signatures.

    Raises:
        UnknownKey: ``public_key(keyid)`` returned None for some signature.
        SignatureInvalid: a signature does not verify, or the public key does not
            hash to the key ID it is filed under.
    """
    message = pae(envelope.payload_type, envelope.payload)
    signed = []
    for signature in envelope.signatures:
        key = public_key(signature.keyid)
        if key is None:
            raise UnknownKey(signature.keyid)
        # (1) the key is the one the ID names; (2) the signature is by that key.
        if len(key) != 32 or hashlib.sha256(key).hexdigest() != signature.keyid:
            raise SignatureInvalid(f"key filed under {signature.keyid} has another ID")
        try:
            nacl.signing.VerifyKey(key).verify(message, signature.sig)
        except nacl.exceptions.BadSignatureError as e:
            raise SignatureInvalid(
                f"signature by key {signature.keyid} does not verify"
            ) from e
        signed.append(signature.keyid)
    return tuple(signed)
