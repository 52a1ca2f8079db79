r"""C2SP tlog-cosignature (cosignature/v1) and the witness policy an observer pins.

A witness cosigns a checkpoint only after checking it is consistent with every
checkpoint of that log it cosigned before; a checkpoint carrying cosignatures
from K independent witnesses was therefore shown, as it is, to K parties that
would refuse a fork. The cosignature is a signed-note signature line of a key of
type 0x04: ``key ID (4) || timestamp (u64, big-endian) || Ed25519 signature (64)``
over ``cosignature/v1\ntime <timestamp>\n`` followed by the checkpoint text.

``verify_cosigned`` is what an observer runs: the log's own signature, then at
least ``quorum`` of the pinned witnesses.
"""

from __future__ import annotations

from dataclasses import dataclass

import nacl.signing

from verifier.checkpoint import Checkpoint, parse_checkpoint
from verifier.errors import MalformedInput, SignatureInvalid
from verifier.note import (
    COSIGNATURE_SIZE,
    KEY_TYPE_COSIGNATURE_V1,
    Note,
    NoteSignature,
    VerifierKey,
    cosignature_message,
    parse_note,
)

__all__ = [
    "NO_WITNESSES",
    "Cosignature",
    "WitnessPolicy",
    "cosign",
    "cosigner_key",
    "parse_cosignature",
    "verify_cosigned",
]


@dataclass(frozen=True, slots=True)
class Cosignature:
    """One witness's cosignature line, decoded."""

    name: str
    key_id: bytes
    timestamp: int  # seconds since the Unix epoch, when the witness cosigned
    signature: bytes


def parse_cosignature(line: NoteSignature) -> Cosignature:
    """Decode a cosignature/v1 signature line (the signature is not checked).

    Raises:
        MalformedInput: not 72 bytes after the key ID, or a timestamp >= 2^63.
    """
    if len(line.signature) != COSIGNATURE_SIZE:
        raise MalformedInput(
            f"cosignature by {line.name}: expected {4 + COSIGNATURE_SIZE} bytes, "
            f"found {4 + len(line.signature)}"
        )
    stamp = int.from_bytes(line.signature[:8], "big")
    if stamp >= 1 << 63:
        raise MalformedInput(f"cosignature by {line.name}: timestamp out of range")
    return Cosignature(line.name, line.key_id, stamp, line.signature[8:])


def cosigner_key(name: str, public_key: bytes) -> VerifierKey:
    """The cosignature/v1 verifier key of a witness's Ed25519 public key."""
    return VerifierKey.from_public_key(name, public_key, KEY_TYPE_COSIGNATURE_V1)


def cosign(
    text: str, name: str, signing_key: nacl.signing.SigningKey, timestamp: int
) -> NoteSignature:
    """A witness's cosignature/v1 line over checkpoint ``text`` at ``timestamp``."""
    if not 0 <= timestamp < 1 << 63:
        raise MalformedInput(f"cosignature: timestamp {timestamp} out of range")
    key = cosigner_key(name, bytes(signing_key.verify_key))
    signed = signing_key.sign(cosignature_message(text, timestamp)).signature
    return NoteSignature(name, key.key_id, timestamp.to_bytes(8, "big") + signed)


@dataclass(frozen=True, slots=True)
class WitnessPolicy:
    """The witnesses an observer trusts, and how many of them must cosign."""

    witnesses: tuple[VerifierKey, ...] = ()
    quorum: int = 0

    def __post_init__(self) -> None:
        for key in self.witnesses:
            if not key.is_cosigner:
                raise MalformedInput(
                    f"witness key {key.name}: expected a cosignature/v1 key "
                    f"(type 0x04), found type {key.key_type:#04x}"
                )
        if not 0 <= self.quorum <= len(self.witnesses):
            raise MalformedInput(
                f"witness policy: need 0 <= quorum <= {len(self.witnesses)}, "
                f"found {self.quorum}"
            )


NO_WITNESSES = WitnessPolicy()


def verify_cosigned(
    data: bytes,
    log_key: VerifierKey,
    origin: str,
    policy: WitnessPolicy = NO_WITNESSES,
) -> tuple[Checkpoint, Note, dict[str, int]]:
    """Verify a checkpoint's log signature and the cosignatures the policy needs.

    Returns the checkpoint, the note, and the timestamp of each pinned witness
    whose cosignature verified (by witness name). Lines by keys not pinned are
    ignored; a pinned key whose signature fails rejects the note.

    Raises:
        MalformedInput: the note or checkpoint is malformed.
        SignatureInvalid: no valid log signature, another origin, a bad
            signature by a pinned key, or fewer than ``quorum`` witnesses.
    """
    note = parse_note(data)
    message = note.text.encode("utf-8")
    pinned = {(k.name, k.key_id): k for k in (log_key, *policy.witnesses)}
    logged = False
    cosigned: dict[str, int] = {}
    for line in note.signatures:
        key = pinned.get((line.name, line.key_id))
        if key is None:
            continue
        key.verify(message, line.signature)
        if key is log_key:
            logged = True
        else:
            cosigned[key.name] = parse_cosignature(line).timestamp
    if not logged:
        raise SignatureInvalid(f"checkpoint: no valid signature by {log_key.name}")
    checkpoint = parse_checkpoint(note.text)
    if checkpoint.origin != origin:
        raise SignatureInvalid(
            f"checkpoint: origin {checkpoint.origin!r}, expected {origin!r}"
        )
    if len(cosigned) < policy.quorum:
        missing = sorted({k.name for k in policy.witnesses} - set(cosigned))
        raise SignatureInvalid(
            f"checkpoint: cosigned by {len(cosigned)} of the pinned witnesses, "
            f"the policy needs {policy.quorum} (missing: {', '.join(missing)})",
            cause="witness-quorum",
        )
    return checkpoint, note, cosigned
