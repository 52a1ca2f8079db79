"""What an observer keeps and checks between visits: the trusted checkpoint.

An observer trusts the first checkpoint it verifies for a log (pinned by key and
origin) and from then on accepts a newer one only with a consistency proof it
built itself from the log's tiles. A checkpoint smaller than the trusted one (a
rollback, or an old one replayed to freeze the observer's view), one of the same
size with another root, or one the proof cannot connect, is a fork: ``Fork``
carries the evidence, both signed checkpoints and the proof, which anyone can
re-check with ``check_evidence`` and nothing but the log's public key.

State lives in a directory, one sub-directory per (origin, key); every file is
replaced atomically (write, fsync, rename, fsync the directory), so a crash
leaves the old state or the new, never a torn one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verifier._encoding import b64decode_strict, b64encode
from verifier.checkpoint import Checkpoint
from verifier.cosignature import verify_cosigned
from verifier.errors import MalformedInput, ProofInvalid, VerificationError
from verifier.merkle import roots_from_consistency_proof, verify_consistency
from verifier.note import VerifierKey
from verifier.tlog import TileHashes

__all__ = [
    "Fork",
    "ObserverState",
    "atomic_write",
    "check_evidence",
    "default_state_dir",
    "prove_consistent",
]


def default_state_dir() -> Path:
    """Where an observer's state lives unless ``--state`` says otherwise.

    ``$SAKSI_VERIFY_STATE``, else ``$XDG_STATE_HOME/saksi-verify``, else
    ``~/.local/state/saksi-verify``.
    """
    if os.environ.get("SAKSI_VERIFY_STATE"):
        return Path(os.environ["SAKSI_VERIFY_STATE"])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "saksi-verify"


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves old or new, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class Fork(VerificationError):
    """The log showed this observer two views that cannot both be true.

    Attributes:
        evidence: JSON-able: the kind, both signed checkpoints, the proof.
    """

    cause = "fork"

    def __init__(self, message: str, evidence: dict[str, Any]) -> None:
        super().__init__(message)
        self.evidence = evidence


def _evidence(
    kind: str,
    detail: str,
    trusted: bytes,
    presented: bytes,
    proof: list[bytes] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": kind,
        "detail": detail,
        "trusted_checkpoint": trusted.decode("utf-8"),
        "presented_checkpoint": presented.decode("utf-8"),
    }
    if proof is not None:
        out["consistency_proof"] = [b64encode(h) for h in proof]
    return out


def prove_consistent(
    trusted: tuple[Checkpoint, bytes],
    presented: tuple[Checkpoint, bytes],
    hashes: TileHashes | None,
) -> list[bytes]:
    """The consistency proof from ``trusted`` to ``presented``, checked.

    Both are verified checkpoints with their signed notes; the proof is built
    from ``hashes`` (tiles for at least the presented size) and checked against
    both signed roots.

    Raises:
        Fork: a rollback, two roots for one size, or no consistent proof.
        FetchError: the tiles could not be read (no verdict).
    """
    (old, old_note), (new, new_note) = trusted, presented
    if new.size < old.size:
        raise Fork(
            f"rollback: the log presents size {new.size} after this observer "
            f"trusted size {old.size}",
            _evidence("rollback", "presented size is smaller", old_note, new_note),
        )
    if new.size == old.size:
        if new.root_hash != old.root_hash:
            raise Fork(
                f"fork: two roots for size {new.size}",
                _evidence("fork", "same size, different roots", old_note, new_note),
            )
        return []
    if old.size == 0:
        return []
    if hashes is None or hashes.size < new.size:
        raise MalformedInput("consistency needs the tiles of the presented tree")
    proof = hashes.consistency_proof(old.size, new.size)
    try:
        verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
    except VerificationError as e:
        raise Fork(
            f"fork: size {new.size} is not consistent with trusted size {old.size} "
            f"({e})",
            _evidence("fork", str(e), old_note, new_note, proof),
        ) from e
    return proof


def check_evidence(
    evidence: dict[str, Any],
    log_key: VerifierKey,
    origin: str,
) -> tuple[bool, str]:
    """Re-check fork evidence with the log's key alone.

    Returns whether it proves the log misbehaved, and a sentence saying what it
    shows. Proof is what the log signed: two checkpoints it cannot both stand by
    (a smaller one after a larger, two roots for one size), or a proof whose
    hashes reach the later signed root but not the earlier one.

    Raises:
        MalformedInput: the evidence is not in the format ``Fork`` writes.
        SignatureInvalid: a checkpoint in it is not signed by ``log_key``.
    """
    try:
        old_note = evidence["trusted_checkpoint"].encode("utf-8")
        new_note = evidence["presented_checkpoint"].encode("utf-8")
        proof = [
            b64decode_strict(h, "evidence proof")
            for h in evidence.get("consistency_proof", [])
        ]
    except (KeyError, AttributeError, TypeError) as e:
        raise MalformedInput(f"evidence: missing or malformed field ({e})") from e
    old, _, _ = verify_cosigned(old_note, log_key, origin)
    new, _, _ = verify_cosigned(new_note, log_key, origin)
    signed = f"both checkpoints are signed by {log_key.name}"
    if new.size < old.size:
        return True, (
            f"{signed}; the log presented size {new.size} to an observer that had "
            f"verified size {old.size} (a rollback or a frozen view)"
        )
    if new.size == old.size:
        if new.root_hash == old.root_hash:
            return False, "the two checkpoints are the same tree: no fork"
        return True, (
            f"{signed} for size {new.size} with different roots: the log signed "
            "two different trees (a fork)"
        )
    try:
        first, second = roots_from_consistency_proof(
            old.size, new.size, old.root_hash, proof
        )
    except ProofInvalid as e:
        return False, (
            f"not conclusive: the proof does not fit sizes {old.size} and "
            f"{new.size} ({e}); only who fetched the log's tiles can say they "
            "were served so"
        )
    if first == old.root_hash and second == new.root_hash:
        return False, "the proof connects the two checkpoints: no fork"
    if second == new.root_hash:
        return True, (
            f"{signed}; the tiles behind the signed root of size {new.size} put "
            f"root {first.hex()} at size {old.size}, but the log signed "
            f"{old.root_hash.hex()} for that size: two different histories (a fork)"
        )
    # Hashes that reach no signed root are not bound to anything the log
    # signed: they show what was served only to whoever fetched them.
    return False, (
        f"not conclusive: the proof leads to neither signed root (size {new.size}: "
        f"{second.hex()} instead of {new.root_hash.hex()}); only who fetched the "
        "log's tiles can say they were served so"
    )


def _slug(origin: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", origin)[:80]


@dataclass
class ObserverState:
    """One log's state under an observer's state directory."""

    root: Path
    log_key: VerifierKey
    origin: str

    @property
    def path(self) -> Path:
        """The log's own directory: origin (made file-safe) and key ID."""
        digest = hashlib.sha256(self.origin.encode("utf-8")).hexdigest()[:8]
        return self.root / f"{_slug(self.origin)}-{digest}-{self.log_key.key_id.hex()}"

    @property
    def checkpoint_file(self) -> Path:
        """The signed checkpoint this observer trusts."""
        return self.path / "checkpoint"

    def trusted(self) -> tuple[Checkpoint, bytes] | None:
        """The checkpoint this observer trusts, re-verified; None before the first.

        Only the log's signature is checked again (the witness policy was
        applied when it was trusted).

        Raises:
            VerificationError: the stored checkpoint does not verify (the state
                was damaged or written by someone else: do not trust it).
        """
        try:
            note = self.checkpoint_file.read_bytes()
        except FileNotFoundError:
            return None
        checkpoint, _, _ = verify_cosigned(note, self.log_key, self.origin)
        return checkpoint, note

    def trust(self, note: bytes) -> None:
        """Make ``note`` (already verified and proven consistent) the trusted one."""
        atomic_write(self.checkpoint_file, note)

    def record_evidence(self, evidence: dict[str, Any]) -> Path:
        """Keep fork evidence beside the state; its path."""
        body = json.dumps(evidence, indent=1, sort_keys=True).encode("utf-8") + b"\n"
        name = hashlib.sha256(body).hexdigest()[:16]
        path = self.path / "evidence" / f"{name}.json"
        atomic_write(path, body)
        return path
