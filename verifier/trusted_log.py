"""What an observer trusts of one log, and how that moves: a pure state object.

``TrustedLog`` pins a log's key and origin (C2SP tlog-checkpoint, signed-note)
and a witness policy. It trusts the first checkpoint it is given and from then
on accepts a newer one only with a consistency proof (RFC 9162 §2.1.4) from the
trusted one. A smaller checkpoint (a rollback, or an old one replayed to freeze
the observer's view), one of the same size with another root, or one the proof
cannot connect, is a fork: ``Fork`` carries the evidence, both signed
checkpoints and the proof, which anyone can re-check with ``check_evidence``
and nothing but the log's public key.

It is fed bytes (signed notes, proof hashes) and returns decisions; it reads no
file, socket or clock, like python-tuf's ``TrustedMetadataSet``. Fetching the
checkpoint and the tiles a proof is built from, and keeping the trusted note
between visits, are the caller's (``verifier.observe``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from verifier._encoding import b64decode_strict, b64encode
from verifier.checkpoint import Checkpoint
from verifier.cosignature import WitnessPolicy, verify_cosigned
from verifier.errors import MalformedInput, ProofInvalid, VerificationError
from verifier.note import VerifierKey
from verifier.proof_check import roots_from_consistency_proof, verify_consistency

__all__ = [
    "Fork",
    "Signed",
    "TrustedLog",
    "Update",
    "check_consistent",
    "check_evidence",
    "proof_needed",
]

Signed = tuple[Checkpoint, bytes]  # a verified checkpoint and its signed note


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
    proof: Sequence[bytes] | None = None,
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


def proof_needed(trusted: Signed, presented: Signed) -> bool:
    """Whether a consistency proof must connect ``trusted`` to ``presented``.

    Both are verified checkpoints with their signed notes. No proof is needed
    for the same tree, or from the empty tree.

    Raises:
        Fork: a rollback (the presented tree is smaller), or two roots for one
            size.
    """
    (old, old_note), (new, new_note) = trusted, presented
    # (1) The log never shrinks.
    if new.size < old.size:
        raise Fork(
            f"rollback: the log presents size {new.size} after this observer "
            f"trusted size {old.size}",
            _evidence("rollback", "presented size is smaller", old_note, new_note),
        )
    # (2) One size, one root.
    if new.size == old.size:
        if new.root_hash != old.root_hash:
            raise Fork(
                f"fork: two roots for size {new.size}",
                _evidence("fork", "same size, different roots", old_note, new_note),
            )
        return False
    # (3) Every tree extends the empty one.
    return old.size != 0


def check_consistent(
    trusted: Signed, presented: Signed, proof: Sequence[bytes]
) -> None:
    """``presented`` extends ``trusted``, as ``proof`` shows (when one is needed).

    Raises:
        Fork: a rollback, two roots for one size, or a proof that does not
            connect the two signed roots (the evidence carries it).
    """
    if not proof_needed(trusted, presented):
        return
    (old, old_note), (new, new_note) = trusted, presented
    try:
        verify_consistency(
            old.size, new.size, old.root_hash, new.root_hash, list(proof)
        )
    except VerificationError as e:
        raise Fork(
            f"fork: size {new.size} is not consistent with trusted size {old.size} "
            f"({e})",
            _evidence("fork", str(e), old_note, new_note, proof),
        ) from e


@dataclass(frozen=True, slots=True)
class Update:
    """What ``TrustedLog.update`` decided: the checkpoint it now trusts.

    Attributes:
        before: the checkpoint trusted until now (None: first use).
        proof: the consistency proof from ``before`` (empty when none was needed).
        changed: the trusted note changed: the caller keeps ``note`` now.
    """

    checkpoint: Checkpoint
    note: bytes
    cosigned: dict[str, int]
    before: Checkpoint | None
    proof: tuple[bytes, ...]
    changed: bool

    @property
    def first_use(self) -> bool:
        """Nothing was trusted before this checkpoint."""
        return self.before is None


class TrustedLog:
    """The checkpoint an observer trusts for one pinned log, and its moves.

    Every method takes bytes and either returns a decision or raises: nothing
    here is trusted that did not verify, and a refused checkpoint changes
    nothing.
    """

    def __init__(
        self,
        log_key: VerifierKey,
        origin: str,
        policy: WitnessPolicy | None = None,
    ) -> None:
        self.log_key = log_key
        self.origin = origin
        self.policy = policy or WitnessPolicy()
        self._trusted: Signed | None = None

    @property
    def trusted(self) -> Signed | None:
        """The trusted checkpoint and its note (None before the first)."""
        return self._trusted

    def verify(self, note: bytes) -> tuple[Checkpoint, dict[str, int]]:
        """The checkpoint of ``note`` and its cosigners' timestamps; trusts nothing.

        Raises:
            VerificationError: not signed by the pinned key for the pinned origin,
                or not cosigned as the witness policy requires.
        """
        checkpoint, _, cosigned = verify_cosigned(
            note, self.log_key, self.origin, self.policy
        )
        return checkpoint, cosigned

    def load(self, note: bytes) -> Checkpoint:
        """Start from ``note``, the checkpoint this observer trusted before.

        Only the log's signature is checked again (the witness policy was
        applied when it was trusted).

        Raises:
            VerificationError: it does not verify (the state was damaged or
                written by someone else: do not trust it).
        """
        checkpoint, _, _ = verify_cosigned(note, self.log_key, self.origin)
        self._trusted = (checkpoint, note)
        return checkpoint

    def needs_proof(self, note: bytes) -> tuple[int, int] | None:
        """(trusted size, presented size) of the proof ``update`` needs; or None.

        Raises:
            VerificationError: ``note`` does not verify (see ``verify``).
            Fork: a rollback, or another root for the trusted size.
        """
        checkpoint, _ = self.verify(note)
        if self._trusted is None:
            return None
        if not proof_needed(self._trusted, (checkpoint, note)):
            return None
        return self._trusted[0].size, checkpoint.size

    def update(self, note: bytes, proof: Sequence[bytes] = ()) -> Update:
        """Trust ``note`` if it extends the trusted checkpoint, as ``proof`` shows.

        The steps: (1) ``note`` verifies (key, origin, witness policy); (2) it is
        not smaller than the trusted checkpoint, nor another root for its size;
        (3) ``proof`` connects the two signed roots (RFC 9162 §2.1.4.2). On
        first use nothing is compared.

        Raises:
            VerificationError: ``note`` does not verify.
            Fork: steps 2 or 3 failed; ``Fork.evidence`` shows it to anyone.
        """
        checkpoint, cosigned = self.verify(note)
        before, presented = self._trusted, (checkpoint, note)
        used: tuple[bytes, ...] = ()
        if before is not None and proof_needed(before, presented):
            check_consistent(before, presented, proof)
            used = tuple(proof)
        self._trusted = presented
        return Update(
            checkpoint,
            note,
            cosigned,
            None if before is None else before[0],
            used,
            before is None or before[1] != note,
        )


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
