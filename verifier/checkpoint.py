r"""C2SP tlog-checkpoint: the signed statement of a log's size and root.

Body: ``<origin>\\n<size>\\n<base64 root>\\n`` then optional non-empty extension lines,
signed as a C2SP signed-note (see :mod:`verifier.note`). ``verify_checkpoint`` pins
the origin and the key and compares origin, size and root; it does not decide
whether a checkpoint is *consistent* with an earlier one (that needs a proof: see
:func:`verifier.proof_check.verify_consistency`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from verifier._encoding import b64decode_strict, b64encode, parse_decimal
from verifier.errors import MalformedInput, SignatureInvalid
from verifier.note import Note, VerifierKey, verify_note
from verifier.proof_check import verify_inclusion
from verifier.rfc6962 import HASH_SIZE

__all__ = [
    "Checkpoint",
    "parse_checkpoint",
    "verify_checkpoint",
    "verify_inclusion_in_checkpoint",
]

MAX_ORIGIN_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's origin, tree size and root hash (32 bytes), plus extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or len(self.origin) > MAX_ORIGIN_LENGTH:
            raise MalformedInput("checkpoint: origin must be 1..256 characters")
        if any(ord(ch) < 0x20 for ch in self.origin):
            raise MalformedInput("checkpoint: control character in origin")
        if not 0 <= self.size < (1 << 63):
            raise MalformedInput(f"checkpoint: size {self.size} out of range")
        if len(self.root_hash) != HASH_SIZE:
            raise MalformedInput(
                f"checkpoint: root must be {HASH_SIZE} bytes, "
                f"found {len(self.root_hash)}"
            )
        for line in self.extensions:
            if not line or "\n" in line or any(ord(ch) < 0x20 for ch in line):
                raise MalformedInput(
                    "checkpoint: extension lines must be non-empty text"
                )

    def to_text(self) -> str:
        """Return the checkpoint body, the exact text that is signed."""
        lines = [self.origin, str(self.size), b64encode(self.root_hash)]
        return "\n".join([*lines, *self.extensions]) + "\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint body (the text of a note, without its signatures).

    Raises:
        MalformedInput: fewer than three lines, a bad size or root, an empty line.
    """
    if not text.endswith("\n"):
        raise MalformedInput("checkpoint: body must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedInput(
            f"checkpoint: expected at least 3 lines, found {len(lines)}"
        )
    origin, size_text, root_text, *extensions = lines
    size = parse_decimal(size_text, "checkpoint size")
    root = b64decode_strict(root_text, "checkpoint root")
    return Checkpoint(origin, size, root, tuple(extensions))


def verify_checkpoint(
    note: bytes, key: VerifierKey, origin: str
) -> tuple[Checkpoint, Note]:
    """Verify a signed checkpoint against a pinned log key and origin.

    Steps: (1) the note parses and carries a valid signature by ``key``; (2) its text
    is a well-formed checkpoint; (3) the origin is exactly the pinned one.

    Raises:
        MalformedInput: the note or checkpoint body is malformed.
        SignatureInvalid: no valid signature by ``key``, or the origin differs.
    """
    parsed, _ = verify_note(note, [key])
    checkpoint = parse_checkpoint(parsed.text)
    if checkpoint.origin != origin:
        raise SignatureInvalid(
            f"checkpoint: origin {checkpoint.origin!r}, expected {origin!r}"
        )
    return checkpoint, parsed


def verify_inclusion_in_checkpoint(
    note: bytes,
    key: VerifierKey,
    origin: str,
    index: int,
    leaf_hash: bytes,
    proof: Sequence[bytes],
) -> Checkpoint:
    """Verify a signed checkpoint, then that ``leaf_hash`` is leaf ``index`` in it.

    The tree size is taken from the signed checkpoint, never from the caller: an
    inclusion proof alone does not bind the size.

    Raises:
        MalformedInput: malformed note, checkpoint or proof.
        SignatureInvalid: no valid signature by ``key``, or another origin.
        ProofInvalid: the proof does not lead to the checkpoint's root.
    """
    checkpoint, _ = verify_checkpoint(note, key, origin)
    verify_inclusion(index, checkpoint.size, leaf_hash, proof, checkpoint.root_hash)
    return checkpoint
