"""Recompute an audit sample from a log, proving everything it is drawn from.

``recompute_sample`` is what ``saksi-verify sample`` runs over a log's tiles
and ``saksi audit sample`` runs over the operator's own database: (1) the
checkpoint verifies (log key, origin, witness policy) and holds the seed tree;
(2) the plan entry is read and must name a seed tree after itself; (3) every
entry before the seed size is audited in full (the same audit as
``saksi-verify audit``: signatures, authorization as of each entry's position,
registries, chains) while the population is read from the same bytes; (4) the
entries must hash to the seed tree's root, which a consistency proof ties to
the checkpoint; (5) the plan draws its sample (``verifier.sample``). A log
that fails any of it draws nothing.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from verifier.checkpoint import Checkpoint
from verifier.cosignature import NO_WITNESSES, WitnessPolicy, verify_cosigned
from verifier.errors import VerificationError
from verifier.fullaudit import SKEW, Auditor, AuditStore, run_audit
from verifier.fullaudit.tree import TreeHasher
from verifier.note import VerifierKey
from verifier.proof_check import verify_consistency
from verifier.record import decode_logged_entry, parse_log_entry, parse_record
from verifier.sample import PlanRefused, Population, draw, parse_plan
from verifier.tile_client import FetchError, TileHashes, TileLog

__all__ = ["SeedNotYet", "recompute_sample"]

Bundle = tuple[int, list[bytes]]  # (index of the first entry, the entries)


class SeedNotYet(VerificationError):
    """The log has not reached the plan's seed size: nothing can be drawn yet."""

    cause = "seed-not-yet"


def _trimmed(bundles: Iterator[Bundle], upto: int) -> Iterator[Bundle]:
    for first, entries in bundles:
        if first >= upto:
            return
        yield first, entries[: upto - first]


def _seed_in_checkpoint(
    log: TileLog,
    checkpoint: Checkpoint,
    seed_size: int,
    root: bytes,
    frontier: list[tuple[int, bytes]],
) -> list[bytes] | None:
    """Prove the seed tree's ``root`` is a prefix of the checkpoint's tree.

    By a consistency proof built from the log's tiles; where the log has no
    tiles (a whole-log bundle holds the entries alone), by hashing the entries
    from the seed size to the checkpoint's (None: proven that way).

    Raises:
        VerificationError: it is not.
        FetchError: the log could not be read.
    """
    try:
        proof = TileHashes(log, checkpoint.size).consistency_proof(
            seed_size, checkpoint.size
        )
    except FetchError as e:
        if e.status != 404:
            raise
        hasher = TreeHasher(frontier)
        for _, entries in log.entries(seed_size, checkpoint.size):
            for entry in entries:
                hasher.add(entry)
        if hasher.root() != checkpoint.root_hash:
            raise VerificationError(
                f"the first {seed_size:,} entries do not hash to a tree the "
                "checkpoint extends: the entries after them do not hash to its root"
            ) from None
        return None
    try:
        verify_consistency(
            seed_size, checkpoint.size, root, checkpoint.root_hash, proof
        )
    except VerificationError as e:
        raise VerificationError(
            f"the first {seed_size:,} entries do not hash to a tree the "
            f"checkpoint extends: {e}"
        ) from e
    return proof


def recompute_sample(
    log: TileLog,
    note: bytes,
    log_key: VerifierKey,
    origin: str,
    plan_index: int,
    *,
    policy: WitnessPolicy = NO_WITNESSES,
    workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
    skew: dt.timedelta = SKEW,
) -> dict[str, Any]:
    """The sample the plan at ``plan_index`` draws, with how it was proven.

    ``progress(done, total)`` is told how many entries before the seed are
    audited.

    Raises:
        VerificationError: the checkpoint, an entry, the audit or a proof fails
            (``PlanRefused``: the plan cannot seed a sample; ``SeedNotYet``: the
            log is not yet as long as the seed tree).
        FetchError: the log could not be read.
    """
    # (1)
    checkpoint, _, cosigned = verify_cosigned(note, log_key, origin, policy)
    size = checkpoint.size
    if not 0 <= plan_index < size:
        raise PlanRefused(f"there is no entry {plan_index} in a log of {size:,}")
    # (2)
    logged = parse_log_entry(log.entry(plan_index, size))
    plan = parse_plan(plan_index, parse_record(logged.envelope.payload))
    if size < plan.seed_size:
        raise SeedNotYet(
            f"the plan's seed is the tree of {plan.seed_size:,} entries and the "
            f"log has {size:,}: the sample cannot be drawn until "
            f"{plan.seed_size - size:,} more are logged and a checkpoint signed"
        )
    # (3)
    seed_size = plan.seed_size
    population = Population(plan.region, plan.ballot)

    def read(
        bundles: Iterator[tuple[int, list[bytes]]],
    ) -> Iterator[tuple[int, list[bytes]]]:
        for first, entries in bundles:
            for offset, entry in enumerate(entries):
                try:
                    _, record = decode_logged_entry(entry)
                except VerificationError:
                    continue  # the audit reports it, and then nothing is drawn
                population.feed(first + offset, record)
            yield first, entries

    with tempfile.TemporaryDirectory(prefix="saksi-sample-") as scratch:
        auditor = Auditor(AuditStore(Path(scratch) / "audit.db"), skew)
        try:
            run_audit(
                read(_trimmed(log.entries(0, size), plan.seed_size)),
                auditor,
                workers,
                None if progress is None else lambda done: progress(done, seed_size),
            )
            root = auditor.hasher.root()
            frontier = auditor.hasher.frontier
            summary = auditor.summary(None)
        finally:
            auditor.store.close()
    # (4)
    proof = _seed_in_checkpoint(log, checkpoint, seed_size, root, frontier)
    failed = [c["check"] for c in summary["checks"] if c["status"] == "fail"]
    if failed:
        raise VerificationError(
            f"the log fails its audit before the seed ({', '.join(failed)}): a "
            "sample drawn from it proves nothing; run saksi-verify audit for the "
            "findings"
        )
    # (5)
    sample = draw(plan, root, population).to_json()
    sample["origin"] = checkpoint.origin
    sample["seed"].update(
        {
            "checkpoint": note.decode(),
            "checkpoint_size": size,
            "consistency": None if proof is None else [h.hex() for h in proof],
            "witnesses": sorted(cosigned),
        }
    )
    sample["audit"] = {
        "entries": plan.seed_size,
        "checks": [
            {k: c[k] for k in ("number", "check", "status", "checked", "findings")}
            for c in summary["checks"]
        ],
    }
    return sample
