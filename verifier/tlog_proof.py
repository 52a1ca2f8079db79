"""C2SP tlog-proof@v1: an offline-verifiable proof that an entry is in a log.

The file (``.tlog-proof``)::

    c2sp.org/tlog-proof@v1
    extra <base64>             (optional, unauthenticated)
    index <decimal>
    <base64 hash>              (the inclusion proof, leaf's sibling first)
    ...
                               (an empty line)
    <the signed checkpoint, verbatim, cosignatures included>

Saksi's exports put the log entry itself in ``extra``: the inclusion proof then
authenticates it (its leaf hash is what the proof leads from), so the file stands
alone. For other logs the caller supplies the entry or its leaf hash.
"""

from __future__ import annotations

from dataclasses import dataclass

from verifier._encoding import (
    b64decode_strict,
    b64encode,
    parse_decimal,
    parse_hash_lines,
    split_lines_and_note,
)
from verifier.checkpoint import Checkpoint
from verifier.cosignature import NO_WITNESSES, WitnessPolicy, verify_cosigned
from verifier.errors import MalformedInput
from verifier.note import MAX_NOTE_SIZE, VerifierKey
from verifier.proof_check import MAX_PROOF_HASHES, verify_inclusion

__all__ = ["HEADER", "TlogProof", "format_tlog_proof", "parse_tlog_proof"]

HEADER = "c2sp.org/tlog-proof@v1"
MAX_EXTRA = 1 << 17  # an entry is at most 65,535 bytes; base64 and slack on top
MAX_PROOF_FILE = MAX_NOTE_SIZE + MAX_EXTRA + 8 * 1024


@dataclass(frozen=True, slots=True)
class TlogProof:
    """A parsed proof file: entry index, inclusion proof, checkpoint, extra data."""

    index: int
    proof: tuple[bytes, ...]
    checkpoint: bytes  # the signed note, byte for byte
    extra: bytes | None = None

    def verify(
        self,
        leaf_hash: bytes,
        log_key: VerifierKey,
        origin: str,
        policy: WitnessPolicy = NO_WITNESSES,
    ) -> tuple[Checkpoint, dict[str, int]]:
        """Check the checkpoint, then that ``leaf_hash`` is entry ``index`` in it.

        Returns the checkpoint and the witnesses' cosignature timestamps.

        Raises:
            VerificationError: a bad signature, too few witnesses, or a proof
                that does not lead to the checkpoint's root.
        """
        checkpoint, _, cosigned = verify_cosigned(
            self.checkpoint, log_key, origin, policy
        )
        verify_inclusion(
            self.index, checkpoint.size, leaf_hash, self.proof, checkpoint.root_hash
        )
        return checkpoint, cosigned


def parse_tlog_proof(data: bytes) -> TlogProof:
    """Parse a tlog-proof@v1 file (no signature or proof is checked here).

    Raises:
        MalformedInput: a wrong header, a bad line, a hash that is not 32 bytes,
            too many hashes, no checkpoint, or an oversized file.
    """
    if len(data) > MAX_PROOF_FILE:
        raise MalformedInput(f"tlog-proof: {len(data)} bytes is too large")
    lines, checkpoint = split_lines_and_note(data, "tlog-proof")
    if lines[0] != HEADER:
        raise MalformedInput(f"tlog-proof: first line must be {HEADER!r}")
    rest = lines[1:]
    extra = None
    if rest and rest[0].startswith("extra "):
        extra = b64decode_strict(rest.pop(0)[len("extra ") :], "tlog-proof extra")
        if len(extra) > MAX_EXTRA:
            raise MalformedInput("tlog-proof: extra data too large")
    if not rest or not rest[0].startswith("index "):
        raise MalformedInput("tlog-proof: expected an 'index <n>' line")
    index = parse_decimal(rest.pop(0)[len("index ") :], "tlog-proof index")
    proof = parse_hash_lines(rest, "tlog-proof", MAX_PROOF_HASHES)
    return TlogProof(index, tuple(proof), checkpoint, extra)


def format_tlog_proof(proof: TlogProof) -> bytes:
    """Serialize a proof file; the inverse of ``parse_tlog_proof``."""
    lines = [HEADER]
    if proof.extra is not None:
        lines.append("extra " + b64encode(proof.extra))
    lines.append(f"index {proof.index}")
    lines += [b64encode(h) for h in proof.proof]
    return ("\n".join(lines) + "\n\n").encode("ascii") + proof.checkpoint
