"""Checkpoints the operator pins: the stored log must extend every one of them.

A database restored from an older backup, or truncated consistently (entries,
tiles, checkpoints, head and seal all rolled back together), holds nothing that
shows it: every row is one the writer once wrote. Only a checkpoint kept
outside the database tells. ``--trusted-checkpoint FILE`` names one: a signed
checkpoint note (an observer's ``checkpoint`` file, a saved
``/log/checkpoint``, cosignatures allowed) or a witness's state file for this
log (``saksi-verify witness --state``). The log's head must be at least as
large and consistent with it, proven from the stored tiles.
"""

from __future__ import annotations

import json
from pathlib import Path

from ledger.errors import IntegrityFailure, OutOfRange
from ledger.read.proof_builder import NodeReader, build_consistency_proof
from verifier.checkpoint import Checkpoint
from verifier.cosignature import verify_cosigned
from verifier.errors import VerificationError
from verifier.note import VerifierKey
from verifier.proof_check import verify_consistency

__all__ = ["load_trusted", "rollback_problem"]

_MAX_FILE = 1 << 20


def load_trusted(path: Path, key: VerifierKey, origin: str) -> Checkpoint:
    """The checkpoint in ``path``, verified under the log's key and origin.

    Raises:
        OSError: the file cannot be read.
        ValueError: it holds no checkpoint of this log signed by its key.
    """
    data = path.read_bytes()[:_MAX_FILE]
    note = data
    if data.lstrip().startswith(b"{"):  # a witness's state file
        try:
            note = json.loads(data)["checkpoint"].encode("utf-8")
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{path}: not a witness state file") from e
    try:
        checkpoint, _, _ = verify_cosigned(note, key, origin)
    except VerificationError as e:
        raise ValueError(f"{path}: not a checkpoint of {origin} by its key: {e}") from e
    return checkpoint


def rollback_problem(trusted: Checkpoint, reader: NodeReader, root: bytes) -> str:
    """Why the stored tree (``reader``, ``root``) does not extend ``trusted``.

    Returns "" when it does: the same tree, or a larger one that a consistency
    proof built from the stored tiles connects to it.
    """
    size = reader.size
    if trusted.size > size:
        return (
            f"the log's head is at size {size}, older than the trusted checkpoint "
            f"of size {trusted.size}: the database was rolled back"
        )
    if trusted.size == size:
        if trusted.root_hash != root:
            return f"the trusted checkpoint has another root at size {size}: a fork"
        return ""
    if trusted.size == 0:
        return ""
    try:
        proof = build_consistency_proof(reader, trusted.size, size)
        verify_consistency(trusted.size, size, trusted.root_hash, root, proof)
    except (VerificationError, OutOfRange, IntegrityFailure) as e:
        return (
            f"the log at size {size} is not consistent with the trusted checkpoint "
            f"of size {trusted.size}: {e}"
        )
    return ""
