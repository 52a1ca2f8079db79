"""Checking a selective proof bundle offline (``saksi-verify check-bundle``).

In order: (1) the bundle's checkpoint carries the log's signature and the
cosignatures the witness policy needs; (2) each pinned checkpoint in it is the
log's and the bundle's checkpoint extends it (a consistency proof), and each
checkpoint the auditor pins (``pins``) is one of them or the bundle's own;
(3) every entry's inclusion proof reaches the checkpoint's root; (4) every
entry goes through the audit's own checks (``verifier.fullaudit``, as a
selection: ``Auditor(sparse=True)``) in log order, so signatures and
authorization are decided by the key registry and the election's state as of
its position, from the registry records the bundle carries; chains and recap
sums are checked where the selection holds both ends, and counted as not
checkable where it does not; (5) every entry marked selected matches the
selection the header states, and every other one is a registry or state
record.

A bundle that passes proves that every entry in it is in the log as signed.
It does not prove that nothing matching its selection was left out: only a
full audit of the log (``saksi-verify audit``) shows that, and the report says
so (``proves`` and ``does_not_prove``).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from verifier.checkpoint import Checkpoint, verify_checkpoint
from verifier.cosignature import NO_WITNESSES, WitnessPolicy, verify_cosigned
from verifier.errors import VerificationError
from verifier.fullaudit import Auditor, AuditStore
from verifier.fullaudit.examiner import SKEW, Examined
from verifier.fullaudit.run import run_audit
from verifier.note import VerifierKey
from verifier.proof_bundle import CONTEXT_SCHEMAS, BundleReader
from verifier.proof_check import InclusionVerifier, verify_consistency
from verifier.record import parse_log_entry

__all__ = ["DOES_NOT_PROVE", "PROVES", "BundleRefused", "check_bundle"]

PROVES = (
    "every entry in this bundle is in the log, as signed, at its index, under "
    "the checkpoint above"
)
DOES_NOT_PROVE = (
    "that the bundle holds every entry matching its selection (no form, "
    "revision or key revocation left out): only a full audit of the log "
    "(saksi-verify audit) shows that"
)


CHUNK = 256  # entries examined at a time (by a worker, with workers)


class BundleRefused(VerificationError):
    """The bundle's checkpoint or a proof in it does not verify."""


def _pinned_ok(
    pins: Sequence[Checkpoint], have: dict[int, bytes], size: int, root: bytes
) -> None:
    for pin in pins:
        if pin.size == size and pin.root_hash == root:
            continue
        if have.get(pin.size) != pin.root_hash:
            raise BundleRefused(
                f"the bundle proves nothing about your pinned checkpoint of size "
                f"{pin.size:,} (no consistency proof to it): ask for a bundle "
                "pinned to it (saksi export bundle --pin)"
            )


def check_bundle(
    raw: IO[bytes],
    log_key: VerifierKey,
    origin: str,
    policy: WitnessPolicy = NO_WITNESSES,
    pins: Sequence[bytes] = (),
    store: Path | None = None,
    progress: Callable[[int], None] | None = None,
    skew: dt.timedelta = SKEW,
    workers: int = 0,
) -> dict[str, Any]:
    """Check the bundle read from ``raw``; the report.

    ``pins``: checkpoints (signed notes) the auditor trusts, which the bundle's
    must extend. ``store``: where the audit keeps its state (a file keeps
    memory flat in the bundle's size; None: in memory). ``workers``: processes
    that examine the entries (signatures, schemas), as the full audit's.

    Raises:
        MalformedInput: the bundle is not well formed (cut short, a line too
            long, members missing, entries out of order, a decompression bomb).
        BundleRefused: its checkpoint, a pinned one or a proof does not verify.
        OSError: reading failed.
    """
    reader = BundleReader(raw)
    header = reader.header
    if header.origin != origin:
        raise BundleRefused(
            f"the bundle is of log {header.origin[:80]!r}, not {origin!r}"
        )
    # (1)
    try:
        checkpoint, _, cosigned = verify_cosigned(
            header.checkpoint, log_key, origin, policy
        )
    except VerificationError as e:
        raise BundleRefused(f"the bundle's checkpoint: {e}") from e
    size, root = checkpoint.size, checkpoint.root_hash
    # (2)
    have: dict[int, bytes] = {}
    for pinned in header.pinned:
        try:
            old, _ = verify_checkpoint(pinned.checkpoint, log_key, origin)
            if old.size > size:
                raise BundleRefused(
                    f"pinned checkpoint of size {old.size:,} is beyond the bundle's "
                    f"{size:,}"
                )
            if old.size > 0:
                verify_consistency(old.size, size, old.root_hash, root, pinned.proof)
            elif pinned.proof:
                raise BundleRefused("a proof from the empty tree is empty")
        except BundleRefused:
            raise
        except VerificationError as e:
            raise BundleRefused(f"pinned checkpoint: {e}") from e
        have[old.size] = old.root_hash
    trusted = []
    for note in pins:
        try:
            trusted.append(verify_checkpoint(note, log_key, origin)[0])
        except VerificationError as e:
            raise BundleRefused(f"your pinned checkpoint does not verify: {e}") from e
    _pinned_ok(trusted, have, size, root)
    # (3), (4), (5)
    proofs = InclusionVerifier(size, root)
    auditor = Auditor(AuditStore(store), skew, sparse=True)
    selection = header.selection
    roles: Counter[str] = Counter()
    outside, shown = 0, list[int]()  # entries against the selection (the first)
    # Each entry's role (and, when the selection names a signer, its bytes)
    # from the reader to ``applied``: only the entries in flight.
    roles_of: dict[int, tuple[bool, bytes | None]] = {}
    keep = selection.signer is not None

    def proven() -> Iterator[tuple[list[int], list[bytes]]]:
        indices: list[int] = []
        entries: list[bytes] = []
        for item in reader.entries(size):
            try:
                proofs.verify(item.index, item.leaf, item.proof)
            except VerificationError as e:
                raise BundleRefused(
                    f"entry {item.index}: its inclusion proof does not reach the "
                    f"checkpoint's root ({e})"
                ) from e
            roles_of[item.index] = (item.selected, item.entry if keep else None)
            indices.append(item.index)
            entries.append(item.entry)
            if len(entries) >= CHUNK:
                yield indices, entries
                indices, entries = [], []
        if entries:
            yield indices, entries

    def applied(examined: Examined) -> None:
        nonlocal outside
        auditor.recent.clear()  # the findings are in the store
        selected, entry = roles_of.pop(examined.index)
        roles["selected" if selected else "context"] += 1
        record = examined.record
        if record is None:
            return  # the audit's entry-format or schema finding says why
        if selected:
            keyids = (
                [s.keyid for s in parse_log_entry(entry).envelope.signatures]
                if entry is not None
                else []
            )
            fits = selection.matches(examined.index, record, keyids, examined.logged_at)
        else:
            fits = record.schema in CONTEXT_SCHEMAS
        if not fits:
            outside += 1
            if len(shown) < 1000:
                shown.append(examined.index)

    try:
        run_audit(proven(), auditor, workers, progress=progress, on_applied=applied)
        summary = auditor.summary(None)
        found = auditor.forensics()
        findings = [f.to_json() for f in itertools.islice(auditor.findings(), 1000)]
    finally:
        auditor.store.close()
    passed = bool(summary["passed"]) and not outside
    return {
        "verified": passed,
        "passed": passed,
        "origin": origin,
        "tree_size": size,
        "root": root.hex(),
        "cosigned_by": cosigned,
        "selection": selection.to_json(),
        "pinned": sorted(have),
        "entries": roles["selected"] + roles["context"],
        "selected": roles["selected"],
        "context": roles["context"],
        "inclusion_proofs": roles["selected"] + roles["context"],
        "outside_selection": shown,
        "outside_selection_count": outside,
        "checks": summary["checks"],
        "not_checkable": dict(auditor.unchecked),
        "findings": findings,
        "forensics": found,
        "proves": PROVES if passed else None,
        "does_not_prove": DOES_NOT_PROVE,
    }
