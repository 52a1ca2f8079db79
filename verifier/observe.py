"""The observer's I/O: its state on disk, and proofs built from the log's tiles.

The decisions are ``verifier.trusted_log``'s (pure, fed bytes); this module
feeds it. ``ObserverState`` keeps the signed checkpoint an observer trusts and
the fork evidence it found; ``catch_up`` builds the consistency proof a
``TrustedLog`` asks for from the log's tiles (``verifier.tile_client``) and hands it
over; ``prove_consistent`` does the same for any two verified checkpoints.

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

from verifier.errors import MalformedInput
from verifier.note import VerifierKey
from verifier.tile_client import TileHashes, TileLog
from verifier.trusted_log import (
    Signed,
    TrustedLog,
    Update,
    check_consistent,
    proof_needed,
)

__all__ = [
    "ObserverState",
    "atomic_write",
    "catch_up",
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


def prove_consistent(
    trusted: Signed, presented: Signed, hashes: TileHashes | None
) -> list[bytes]:
    """The consistency proof from ``trusted`` to ``presented``, checked.

    Both are verified checkpoints with their signed notes; the proof is built
    from ``hashes`` (tiles for at least the presented size) and checked against
    both signed roots.

    Raises:
        Fork: a rollback, two roots for one size, or no consistent proof.
        FetchError: the tiles could not be read (no verdict).
        MalformedInput: no tiles for the presented size, or malformed ones.
    """
    if not proof_needed(trusted, presented):
        return []
    (old, _), (new, _) = trusted, presented
    if hashes is None or hashes.size < new.size:
        raise MalformedInput("consistency needs the tiles of the presented tree")
    proof = hashes.consistency_proof(old.size, new.size)
    check_consistent(trusted, presented, proof)
    return proof


def catch_up(trusted: TrustedLog, note: bytes, log: TileLog) -> Update:
    """Feed ``trusted`` the log's ``note`` and the proof it needs, from ``log``.

    Raises:
        VerificationError: ``note`` does not verify.
        Fork: it cannot extend the trusted checkpoint (``Fork.evidence``).
        FetchError: the tiles could not be read (no verdict).
        MalformedInput: the log serves malformed tiles.
    """
    sizes = trusted.needs_proof(note)
    proof: list[bytes] = []
    if sizes is not None:
        old, new = sizes
        proof = TileHashes(log, new).consistency_proof(old, new)
    return trusted.update(note, proof)


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

    def load(self) -> bytes | None:
        """The signed checkpoint this observer trusts, as kept; None before the first.

        Not verified here: ``TrustedLog.load`` checks it again.
        """
        try:
            return self.checkpoint_file.read_bytes()
        except FileNotFoundError:
            return None

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
