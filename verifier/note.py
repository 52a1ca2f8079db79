r"""C2SP signed-note: parse, format, sign and verify notes; note verifier keys.

A note is UTF-8 text ending in a newline, a blank line, then one or more signature
lines ``— <name> <base64(key ID || signature)>``. Ed25519 keys (type 0x01) sign the
text including its final newline; key ID = SHA-256(name || 0x0A || type || key)[:4].
Verifier keys are written ``<name>+<hex key ID>+<base64(type || key)>``.

Key types verified here: 0x01 Ed25519; 0x04 Ed25519 cosignature/v1 (C2SP
tlog-cosignature: the signature is a big-endian u64 timestamp then an Ed25519
signature over ``cosignature/v1\ntime <t>\n`` and the text); 0x02 ECDSA P-256
(the key a DER SubjectPublicKeyInfo, key ID = SHA-256(SPKI)[:4], the signature
ASN.1 DER over the text), which some public logs use for checkpoints.

Spec: c2sp.org/signed-note (and golang.org/x/mod/sumdb/note, whose limits we keep:
at most 100 signature lines, no ASCII control characters but newline). Parsing is
strict: canonical base64, exact line structure, bounded size. Signature lines from
keys the caller did not name are ignored; a named key whose signature fails rejects
the whole note.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import nacl.exceptions
import nacl.signing

from verifier._encoding import b64decode_strict, b64encode
from verifier.errors import MalformedInput, SignatureInvalid
from verifier.p256 import parse_spki, verify_p256

__all__ = [
    "KEY_TYPE_COSIGNATURE_V1",
    "KEY_TYPE_ECDSA",
    "KEY_TYPE_ED25519",
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "Note",
    "NoteSignature",
    "NoteSigner",
    "VerifierKey",
    "compute_key_id",
    "cosignature_message",
    "format_note",
    "parse_note",
    "sign_note",
    "verify_note",
]

KEY_TYPE_ED25519 = 0x01
KEY_TYPE_ECDSA = 0x02
KEY_TYPE_COSIGNATURE_V1 = 0x04
_KEY_SIZES = {KEY_TYPE_ED25519: 32, KEY_TYPE_COSIGNATURE_V1: 32}
COSIGNATURE_SIZE = 8 + 64  # timestamp, Ed25519 signature (after the key ID)

MAX_NOTE_SIZE = 1 << 20
MAX_SIGNATURES = 100
SIG_PREFIX = "\u2014 "  # em dash and a space


def compute_key_id(name: str, key_type: int, public_key: bytes) -> bytes:
    """Return the 4-byte signed-note key ID of a key.

    ECDSA keys are the exception the ecosystem settled on: their ID is the first
    four bytes of SHA-256 of the key's DER SubjectPublicKeyInfo, name aside.
    """
    if key_type == KEY_TYPE_ECDSA:
        return hashlib.sha256(public_key).digest()[:4]
    material = name.encode("utf-8") + b"\n" + bytes([key_type]) + public_key
    return hashlib.sha256(material).digest()[:4]


def cosignature_message(text: str, timestamp: int) -> bytes:
    """What a C2SP cosignature/v1 signs: the header lines, then the checkpoint text."""
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


def _check_name(name: str, what: str) -> None:
    if not name or "+" in name or any(ch.isspace() for ch in name):
        raise MalformedInput(f"{what}: invalid key name {name[:40]!r}")
    if any(ord(ch) < 0x20 for ch in name):
        raise MalformedInput(f"{what}: control character in key name")


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A public note verifier key: who (name), which key (ID), how (type), the key."""

    name: str
    key_id: bytes
    key_type: int
    public_key: bytes

    def __post_init__(self) -> None:
        _check_name(self.name, "verifier key")
        size = _KEY_SIZES.get(self.key_type)
        if self.key_type == KEY_TYPE_ECDSA:
            parse_spki(self.public_key)
        elif size is None:
            raise MalformedInput(f"verifier key: unknown key type {self.key_type:#04x}")
        elif len(self.public_key) != size:
            raise MalformedInput(
                f"verifier key: expected a {size}-byte key, "
                f"found {len(self.public_key)}"
            )
        if self.key_id != compute_key_id(self.name, self.key_type, self.public_key):
            raise MalformedInput("verifier key: key ID does not match name and key")

    @classmethod
    def from_public_key(
        cls, name: str, public_key: bytes, key_type: int = KEY_TYPE_ED25519
    ) -> VerifierKey:
        """Build the verifier key for ``public_key`` under ``name``."""
        key_id = compute_key_id(name, key_type, public_key)
        return cls(name, key_id, key_type, public_key)

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        """Parse ``<name>+<hex key ID>+<base64(type || key)>``.

        Raises:
            MalformedInput: wrong shape, unknown type, wrong key length or key ID.
        """
        parts = text.split("+", 2)
        if len(parts) != 3:
            raise MalformedInput("verifier key: expected <name>+<key ID>+<key>")
        name, id_hex, key_b64 = parts
        if len(id_hex) != 8 or id_hex.strip("0123456789abcdef"):
            raise MalformedInput(f"verifier key: bad key ID {id_hex[:16]!r}")
        raw = b64decode_strict(key_b64, "verifier key")
        if not raw:
            raise MalformedInput("verifier key: empty key")
        return cls(name, bytes.fromhex(id_hex), raw[0], raw[1:])

    def __str__(self) -> str:
        body = b64encode(bytes([self.key_type]) + self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{body}"

    @property
    def is_cosigner(self) -> bool:
        """A witness's key (cosignature/v1), as opposed to a log's."""
        return self.key_type == KEY_TYPE_COSIGNATURE_V1

    def verify(self, message: bytes, signature: bytes) -> None:
        """Check this key's signature (as on its note signature line) on ``message``.

        For a cosigner ``signature`` is the timestamp and the signature, and
        ``message`` the checkpoint text the cosignature message is built from.

        Raises:
            SignatureInvalid: the signature does not verify.
        """
        if self.key_type == KEY_TYPE_ECDSA:
            verify_p256(self.public_key, message, signature)
            return
        if self.key_type == KEY_TYPE_COSIGNATURE_V1:
            if len(signature) != COSIGNATURE_SIZE:
                raise SignatureInvalid(
                    f"cosignature by {self.name}: expected {COSIGNATURE_SIZE} bytes, "
                    f"found {len(signature)}"
                )
            stamp = int.from_bytes(signature[:8], "big")
            if stamp >= 1 << 63:
                raise SignatureInvalid(f"cosignature by {self.name}: bad timestamp")
            message = cosignature_message(message.decode("utf-8"), stamp)
            signature = signature[8:]
        if len(signature) != 64:
            raise SignatureInvalid(f"invalid signature for key {self}")
        try:
            nacl.signing.VerifyKey(self.public_key).verify(message, signature)
        except nacl.exceptions.BadSignatureError as e:
            raise SignatureInvalid(f"invalid signature for key {self}") from e


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID, signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def to_line(self) -> str:
        """Return the signature line, newline included."""
        return f"{SIG_PREFIX}{self.name} {b64encode(self.key_id + self.signature)}\n"


@dataclass(frozen=True, slots=True)
class Note:
    """A parsed note: its text (ending in a newline) and its signature lines."""

    text: str
    signatures: tuple[NoteSignature, ...]


class NoteSigner(Protocol):
    """Anything that signs note text as a given key (see ``keys.Ed25519Signer``)."""

    @property
    def name(self) -> str:
        """The key name on the signature line."""
        ...

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID."""
        ...

    def sign(self, message: bytes) -> bytes:
        """Return the raw signature over ``message``."""
        ...


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise MalformedInput("note: text must end with a newline")
    for ch in text:
        if ord(ch) < 0x20 and ch != "\n":
            raise MalformedInput(f"note: control character {ord(ch):#04x} in text")


def parse_note(data: bytes) -> Note:
    """Parse a signed note without checking any signature.

    Raises:
        MalformedInput: not UTF-8, control characters, no signature block, a bad
            signature line, too many signatures, or more than ``MAX_NOTE_SIZE`` bytes.
    """
    if len(data) > MAX_NOTE_SIZE:
        raise MalformedInput(f"note: {len(data)} bytes exceeds {MAX_NOTE_SIZE}")
    try:
        message = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedInput("note: not valid UTF-8") from e
    split = message.rfind("\n\n")
    if split < 0:
        raise MalformedInput("note: no blank line before the signatures")
    text, block = message[: split + 1], message[split + 2 :]
    _check_text(text)
    if not block or not block.endswith("\n"):
        raise MalformedInput("note: signature block missing or not newline-terminated")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedInput(f"note: more than {MAX_SIGNATURES} signatures")
    signatures: list[NoteSignature] = []
    seen: set[tuple[str, bytes]] = set()
    for line in lines:
        if not line.startswith(SIG_PREFIX):
            raise MalformedInput(f"note: not a signature line: {line[:40]!r}")
        name, sep, sig_b64 = line[len(SIG_PREFIX) :].partition(" ")
        if not sep:
            raise MalformedInput("note: signature line without a signature")
        _check_name(name, "note signature")
        raw = b64decode_strict(sig_b64, "note signature")
        if len(raw) < 5:
            raise MalformedInput("note: signature too short")
        sig = NoteSignature(name, raw[:4], raw[4:])
        if (name, sig.key_id) in seen:
            raise MalformedInput(f"note: two signatures by {name}+{sig.key_id.hex()}")
        seen.add((name, sig.key_id))
        signatures.append(sig)
    return Note(text, tuple(signatures))


def format_note(note: Note) -> bytes:
    """Serialize a note: text, blank line, signature lines.

    Raises:
        MalformedInput: the text is not valid note text or there is no signature.
    """
    _check_text(note.text)
    if not note.signatures:
        raise MalformedInput("note: a signed note needs at least one signature")
    lines = "".join(sig.to_line() for sig in note.signatures)
    return (note.text + "\n" + lines).encode("utf-8")


def sign_note(text: str, signers: Iterable[NoteSigner]) -> bytes:
    """Sign ``text`` with every signer and return the serialized note.

    Raises:
        MalformedInput: ``text`` is not valid note text.
    """
    _check_text(text)
    message = text.encode("utf-8")
    sigs = tuple(NoteSignature(s.name, s.key_id, s.sign(message)) for s in signers)
    return format_note(Note(text, sigs))


def verify_note(
    data: bytes, keys: Sequence[VerifierKey]
) -> tuple[Note, list[VerifierKey]]:
    """Parse a note and check the signatures of the given keys.

    Returns the note and the keys whose signatures verified (at least one).

    Raises:
        MalformedInput: the note does not parse.
        SignatureInvalid: a known key's signature fails, or no known key signed.
    """
    note = parse_note(data)
    by_id = {(k.name, k.key_id): k for k in keys}
    message = note.text.encode("utf-8")
    verified: list[VerifierKey] = []
    for sig in note.signatures:
        key = by_id.get((sig.name, sig.key_id))
        if key is None:
            continue  # unknown signer: ignored, as the spec requires
        key.verify(message, sig.signature)
        verified.append(key)
    if not verified:
        raise SignatureInvalid("note has no verifiable signatures")
    return note, verified
