"""Writing a selective proof bundle from a log (``saksi export bundle``).

The selection's entries, and every key-registry and election-state record up
to the last of them (what decides their signatures and authorization), each
with its inclusion proof against one checkpoint, go into one
``saksi-proof-bundle/v1`` file (``verifier.proof_bundle``) as they are read:
nothing is held in memory but a batch. Which entries match is found from the
record index (the database narrows it down); the entries are read as stored,
with inclusion proofs built from the log's tiles. Nothing read is trusted:
the finished file is checked with the verifier's own code
(``verifier.bundle_check``: every proof against the signed root, every entry
against the selection it claims, every signature and authorization) before it
takes its name, so an edited row or index makes the export fail, and a bundle
the verifier refuses is never left behind.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.recordlog import ReadOnlyLog
from verifier.bundle_check import check_bundle
from verifier.checkpoint import Checkpoint, verify_checkpoint
from verifier.cosignature import NO_WITNESSES, WitnessPolicy
from verifier.errors import VerificationError
from verifier.proof_bundle import (
    CONTEXT_SCHEMAS,
    BundleWriter,
    Header,
    Pinned,
    Selection,
)
from verifier.record import parse_log_entry, parse_record

__all__ = ["ExportError", "ExportResult", "export_bundle"]

BATCH = 1024  # entries read, proven and written at a time


class ExportError(Exception):
    """The export cannot be made as asked (the message says why)."""


@dataclass(frozen=True)
class ExportResult:
    """What was written: counts, the checkpoint, and the verifier's report."""

    path: Path
    tree_size: int
    entries: int
    selected: int
    context: int
    bytes: int
    report: dict[str, Any]


# (index, subject, schema, payload hash, selected) of an entry to write
Planned = tuple[int, str, str, bytes, bool]


def _plan(log: ReadOnlyLog, selection: Selection, size: int) -> Iterator[Planned]:
    """(index, subject, schema, payload hash, selected) of every entry to write.

    The record index's candidates (the database narrows them by subject,
    schema, region and index range; ``Selection.holds`` decides exactly), each
    after the registry and state records before it (those after the last
    candidate are left out).
    """
    waiting: list[Planned] = []
    rows = log.storage.find_records(
        size if selection.end is None else min(size, selection.end),
        start=selection.start or 0,
        subjects=selection.subjects,
        schemas=selection.schemas,
        # Every subject names its region right after a "/": a narrower scan
        # than the code anywhere (the selection decides exactly).
        containing=None if selection.region is None else "/" + selection.region,
        also=sorted(CONTEXT_SCHEMAS),
    )
    for row in rows:
        i, subject, schema, digest = (
            row.index,
            row.subject,
            row.schema,
            row.payload_hash,
        )
        if selection.holds(i, subject, schema):
            yield from waiting
            waiting.clear()
            yield i, subject, schema, digest, True
        elif schema in CONTEXT_SCHEMAS:
            waiting.append((i, subject, schema, digest, False))


def _checkpoint(log: ReadOnlyLog, note: bytes | None) -> tuple[bytes, Checkpoint]:
    if note is None:
        note = log.reader.current().note
    try:
        checkpoint, _ = verify_checkpoint(note, log.verifier_key, log.origin)
    except VerificationError as e:
        raise ExportError(f"the checkpoint does not verify as this log's: {e}") from e
    if checkpoint.size > log.reader.size:
        raise ExportError(
            f"the checkpoint's size {checkpoint.size:,} is beyond this log's "
            f"{log.reader.size:,}"
        )
    return note, checkpoint


def export_bundle(
    log: ReadOnlyLog,
    selection: Selection,
    out: Path,
    *,
    checkpoint: bytes | None = None,
    pins: Sequence[bytes] = (),
    policy: WitnessPolicy = NO_WITNESSES,
    progress: Callable[[int, int], None] | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    workers: int = 0,
) -> ExportResult:
    """Write the bundle of ``selection`` to ``out``; check it; the result.

    ``checkpoint``: the signed (and cosigned) note to prove against (default:
    the log's latest); ``pins``: earlier checkpoints to prove it consistent
    with; ``policy``: the witnesses the check asks for; ``workers``: processes
    the check examines entries in.

    Raises:
        ExportError: a checkpoint or pin that is not this log's, an index row
            that disagrees with its entry, or a bundle the verifier refuses.
        OSError: writing failed.
    """
    note, signed = _checkpoint(log, checkpoint)
    size = signed.size
    pinned = []
    for pin in pins:
        try:
            old, _ = verify_checkpoint(pin, log.verifier_key, log.origin)
        except VerificationError as e:
            raise ExportError(f"a pinned checkpoint does not verify: {e}") from e
        if old.size > size:
            raise ExportError(
                f"a pinned checkpoint of size {old.size:,} is beyond the bundle's "
                f"{size:,}"
            )
        proof = log.reader.consistency_proof(old.size, size) if old.size else []
        pinned.append(Pinned(pin, tuple(proof)))
    header = Header(
        log.origin,
        note,
        selection,
        tuple(pinned),
        now().isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    partial = out.with_name(f".{out.name}.partial")
    counts = {"selected": 0, "context": 0}
    try:
        with partial.open("wb") as raw:
            writer = BundleWriter(raw, header)
            try:
                for batch, rows in _batches(log, selection, size):
                    _write(log, writer, selection, batch, rows, size, counts)
                    if progress is not None:
                        progress(counts["selected"], counts["context"])
                writer.finish()
            finally:
                writer.close()
            raw.flush()
            os.fsync(raw.fileno())
        with (
            partial.open("rb") as raw,
            tempfile.TemporaryDirectory(prefix="saksi-export-check-") as work,
        ):
            # The audit's state in a file, as saksi-verify check-bundle keeps
            # it: in memory it would grow with the bundle (11 GB for a
            # national one).
            report = check_bundle(
                raw,
                log.verifier_key,
                log.origin,
                policy,
                pins,
                store=Path(work) / "audit.sqlite",
                workers=workers,
            )
        if not report["passed"]:
            raise ExportError(
                "the verifier refuses the bundle just written: "
                + "; ".join(
                    f"{c['check']}: {c['findings']}"
                    for c in report["checks"]
                    if c["status"] == "fail"
                )
            )
        partial.replace(out)
    except VerificationError as e:
        partial.unlink(missing_ok=True)
        raise ExportError(f"the verifier refuses the bundle just written: {e}") from e
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return ExportResult(
        out,
        size,
        counts["selected"] + counts["context"],
        counts["selected"],
        counts["context"],
        out.stat().st_size,
        report,
    )


def _batches(
    log: ReadOnlyLog, selection: Selection, size: int
) -> Iterator[tuple[list[Planned], dict[int, bytes]]]:
    """The plan, ``BATCH`` entries at a time, each batch with its stored bytes."""
    batch: list[Planned] = []
    for planned in _plan(log, selection, size):
        batch.append(planned)
        if len(batch) >= BATCH:
            yield batch, _stored(log, batch)
            batch = []
    if batch:
        yield batch, _stored(log, batch)


def _stored(log: ReadOnlyLog, batch: list[Planned]) -> dict[int, bytes]:
    return {
        r.index: r.data for r in log.storage.read_entries_at([i for i, *_ in batch])
    }


def _write(
    log: ReadOnlyLog,
    writer: BundleWriter,
    selection: Selection,
    batch: list[Planned],
    rows: dict[int, bytes],
    size: int,
    counts: dict[str, int],
) -> None:
    """Write ``batch``'s entries, read as stored, each with its inclusion proof.

    Nothing read here is trusted: the finished bundle is checked (every proof
    against the signed root, every entry against the selection it claims)
    before it takes its name, so an edited row makes the export fail, never a
    bundle. Only the selection's signer and time need the entry decoded.
    """
    decide = selection.signer is not None or selection.since or selection.until
    kept: list[tuple[int, bytes, bool]] = []
    for index, _, schema, _, chosen in batch:
        data = rows.get(index)
        if data is None:
            raise ExportError(
                f"entry {index} is not stored: run 'saksi check' on this log"
            )
        if chosen and decide:
            try:
                entry = parse_log_entry(data)
                record = parse_record(entry.envelope.payload)
            except VerificationError as e:
                raise ExportError(
                    f"entry {index} does not parse ({e}): run 'saksi check' on this log"
                ) from e
            keyids = [s.keyid for s in entry.envelope.signatures]
            chosen = selection.matches(index, record, keyids, entry.logged_at)
        if chosen or schema in CONTEXT_SCHEMAS:
            kept.append((index, data, chosen))
    proofs = log.reader.inclusion_proofs([index for index, _, _ in kept], size)
    for (index, data, chosen), proof in zip(kept, proofs, strict=True):
        writer.add(index, data, proof, chosen)
        counts["selected" if chosen else "context"] += 1
