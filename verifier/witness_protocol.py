r"""A C2SP tlog-witness's wire format and key: what a log and a witness share.

``POST /add-checkpoint`` with body::

    old <size the log believes the witness last cosigned>
    <base64 consistency-proof hash>      (0 to 63 lines)
                                         (an empty line)
    <the signed checkpoint>

``parse_add_checkpoint`` and ``format_add_checkpoint`` read and write it (the
log's side sends it, ``verifier.witness_server`` decides it). Checking a
witness's cosignature is ``verifier.cosignature``'s; serving one is not here.

The witness's key file is the signed-note private-key form
``PRIVATE+KEY+<name>+<hex key ID>+<base64(type || seed)>`` (type 0x04, or 0x01
from Go's ``note.GenerateKey``; either way the cosigner key is type 0x04).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nacl.signing

from verifier._encoding import (
    b64decode_strict,
    b64encode,
    parse_decimal,
    parse_hash_lines,
    split_lines_and_note,
)
from verifier.cosignature import cosigner_key
from verifier.errors import MalformedInput
from verifier.note import (
    KEY_TYPE_COSIGNATURE_V1,
    KEY_TYPE_ED25519,
    VerifierKey,
    compute_key_id,
)

__all__ = [
    "MAX_REQUEST",
    "SIZE_TYPE",
    "WitnessKey",
    "ensure_private",
    "format_add_checkpoint",
    "parse_add_checkpoint",
]

MAX_REQUEST = 1 << 20
MAX_PROOF_LINES = 63
SIZE_TYPE = "text/x.tlog.size"


@dataclass(frozen=True, slots=True)
class WitnessKey:
    """A witness's name and Ed25519 key."""

    name: str
    signing_key: nacl.signing.SigningKey

    @property
    def verifier_key(self) -> VerifierKey:
        """The cosigner key (type 0x04) observers pin."""
        return cosigner_key(self.name, bytes(self.signing_key.verify_key))

    @classmethod
    def generate(cls, name: str) -> WitnessKey:
        """A new key (the name is checked as a note key name)."""
        key = cls(name, nacl.signing.SigningKey.generate())
        key.verifier_key  # noqa: B018 (validates the name)
        return key

    def to_text(self) -> str:
        """The private key file's content (keep it secret)."""
        seed = bytes(self.signing_key)
        key_id = self.verifier_key.key_id.hex()
        body = b64encode(bytes([KEY_TYPE_COSIGNATURE_V1]) + seed)
        return f"PRIVATE+KEY+{self.name}+{key_id}+{body}\n"

    @classmethod
    def parse(cls, text: str) -> WitnessKey:
        """Parse a private key file.

        Raises:
            MalformedInput: not ``PRIVATE+KEY+name+id+key``, a wrong key ID, or
                not an Ed25519 seed.
        """
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise MalformedInput("witness key: expected PRIVATE+KEY+<name>+<id>+<key>")
        name, key_id, body = parts[2], parts[3], parts[4]
        raw = b64decode_strict(body, "witness key")
        if len(raw) != 33 or raw[0] not in (KEY_TYPE_ED25519, KEY_TYPE_COSIGNATURE_V1):
            raise MalformedInput("witness key: expected an Ed25519 seed")
        key = cls(name, nacl.signing.SigningKey(raw[1:]))
        public = bytes(key.signing_key.verify_key)
        if key_id != compute_key_id(name, raw[0], public).hex():
            raise MalformedInput("witness key: the key ID does not match")
        return key


def parse_add_checkpoint(body: bytes) -> tuple[int, list[bytes], bytes]:
    """(old size, consistency proof, checkpoint note) of an add-checkpoint body.

    Raises:
        MalformedInput: anything but the grammar above.
    """
    lines, note = split_lines_and_note(body, "add-checkpoint")
    if not lines[0].startswith("old "):
        raise MalformedInput("add-checkpoint: the first line must be 'old <size>'")
    old = parse_decimal(lines[0][4:], "add-checkpoint old size")
    proof = parse_hash_lines(lines[1:], "add-checkpoint proof", MAX_PROOF_LINES)
    return old, proof, note


def format_add_checkpoint(old: int, proof: Sequence[bytes], note: bytes) -> bytes:
    """The request body a log sends to a witness."""
    lines = [f"old {old}", *(b64encode(h) for h in proof)]
    return ("\n".join(lines) + "\n\n").encode("ascii") + note


def ensure_private(path: Path) -> None:
    """Refuse a key file others can read (as ssh does)."""
    mode = path.stat().st_mode
    if mode & 0o077 and os.name == "posix":
        raise MalformedInput(
            f"{path} is readable by others (mode {mode & 0o777:o}): chmod 600 it"
        )
