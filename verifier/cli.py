"""``saksi-verify``: the observer's command line (standard library and PyNaCl only).

Commands: ``checkpoint`` (verify the log's checkpoint and that it extends the one
this observer trusted), ``inclusion`` (an entry, a receipt), ``consistency``
(two checkpoints, or re-check fork evidence), ``audit`` (read and replay the whole
log), ``proof`` (a C2SP tlog-proof file), ``compare`` (checkpoints from several
sources), ``witness`` and ``witness-key`` (cosign as a C2SP tlog-witness).

Exit codes: 0 verified, 1 verification failed (the log misbehaved, or what was
checked is not what it claims), 2 usage, 3 network or I/O. Every command prints
JSON with ``--json``; long ones show progress on standard error.

``--log`` is the log's tlog-tiles prefix (where ``checkpoint`` is); for a Saksi
service its base URL works too (its tiles are under ``/log``).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import heapq
import json
import os
import signal
import sqlite3
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from verifier import __version__
from verifier._encoding import b64encode
from verifier.audit import NOT_FAILURES, SKEW, Auditor, AuditStore, TreeHasher
from verifier.audit_run import default_workers, run_audit
from verifier.bundle import bundle_fetch, write_bundle
from verifier.checkpoint import Checkpoint, verify_inclusion_in_checkpoint
from verifier.cosignature import WitnessPolicy, verify_cosigned
from verifier.errors import MalformedInput, VerificationError
from verifier.merkle import verify_inclusion
from verifier.note import VerifierKey
from verifier.observe import (
    Fork,
    ObserverState,
    check_evidence,
    default_state_dir,
    prove_consistent,
)
from verifier.proof import parse_tlog_proof
from verifier.record import RECORD_PAYLOAD_TYPE, parse_log_entry, parse_record
from verifier.rfc6962 import hash_leaf
from verifier.tlog import FetchError, TileHashes, TileLog, http_fetch
from verifier.witness import WitnessKey, ensure_private
from verifier.witness_server import Witness, serve_witness

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_IO = 0, 1, 2, 3
SHOWN = 30  # findings printed in the human summary (--json lists all)
MAX_INPUT_FILE = 1 << 22  # receipts, entries, proofs, checkpoints, evidence
AUDIT_STEP = 100_000  # entries between the steps a long audit saves (resumable)


class _Exit(Exception):
    def __init__(
        self,
        code: int,
        message: str,
        hint: str = "",
        detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint
        self.detail = detail or {}


# -- inputs ----------------------------------------------------------------------


def _read(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_INPUT_FILE + 1)
    except OSError as e:
        # A file the command line names that is not there, or cannot be read, is
        # I/O (3), as for every saksi command.
        raise _Exit(EXIT_IO, f"cannot read {what} {path}: {e.strerror}") from e
    if len(data) > MAX_INPUT_FILE:
        raise _Exit(EXIT_USAGE, f"{what} {path} is larger than {MAX_INPUT_FILE} bytes")
    return data


def _vkey(text: str, what: str) -> VerifierKey:
    """A verifier key given as the key itself or as a file holding it."""
    candidate = text.strip()
    if candidate.count("+") >= 2 and not Path(candidate).exists():
        source = candidate
    else:
        source = _read(Path(text), what).decode("utf-8", "replace").strip()
    try:
        return VerifierKey.parse(source)
    except VerificationError as e:
        raise _Exit(
            EXIT_USAGE,
            f"{what} {text[:80]}: not a verifier key: {e}",
            "pass the key (name+id+base64) or a file holding it",
        ) from e


def _key(args: argparse.Namespace) -> VerifierKey:
    return _vkey(str(args.key), "--key")


def _origin(args: argparse.Namespace, key: VerifierKey) -> str:
    return str(args.origin or key.name)


def _policy(args: argparse.Namespace) -> WitnessPolicy:
    witnesses = tuple(_vkey(w, "--witness") for w in args.witness or ())
    quorum = len(witnesses) if args.min_witnesses is None else args.min_witnesses
    try:
        return WitnessPolicy(witnesses, quorum)
    except MalformedInput as e:
        raise _Exit(EXIT_USAGE, str(e), "--witness takes a cosigner key") from e


def _state(args: argparse.Namespace, key: VerifierKey) -> ObserverState:
    return ObserverState(args.state or default_state_dir(), key, _origin(args, key))


def _open_log(url: str) -> tuple[TileLog, bytes, str]:
    """(the tiles reader, the served checkpoint, the tiles prefix) of ``url``.

    The prefix is ``url`` itself, or ``url/log`` for a Saksi service's base URL.
    """
    try:
        first = TileLog(http_fetch(url))
        try:
            return first, first.checkpoint(), url.rstrip("/")
        except FetchError as e:
            if e.status != 404:
                raise
        prefix = url.rstrip("/") + "/log"
        second = TileLog(http_fetch(prefix))
        return second, second.checkpoint(), prefix
    except FetchError as e:
        raise _Exit(EXIT_IO, str(e), "check --log and that the log is up") from e


def _verify_note(
    note: bytes, key: VerifierKey, origin: str, policy: WitnessPolicy, what: str
) -> tuple[Checkpoint, dict[str, int]]:
    try:
        checkpoint, _, cosigned = verify_cosigned(note, key, origin, policy)
    except VerificationError as e:
        raise _Exit(
            EXIT_FAILED,
            f"{what} does not verify: {e}",
            "check --key, --origin and --witness; if they are right, the log is "
            "not what it claims",
            {"checkpoint": note.decode("utf-8", "replace")},
        ) from e
    return checkpoint, cosigned


def _fresh_enough(
    cosigned: dict[str, int], policy: WitnessPolicy, max_age: float, note: bytes
) -> None:
    """At least the policy's quorum of cosignatures are at most ``max_age`` old."""
    if not policy.witnesses:
        raise _Exit(EXIT_USAGE, "--max-age needs the witnesses (--witness)")
    now = time.time()
    fresh = {name for name, stamp in cosigned.items() if now - stamp <= max_age}
    if len(fresh) < max(policy.quorum, 1):
        ages = ", ".join(f"{n} {now - t:,.0f} s" for n, t in sorted(cosigned.items()))
        raise _Exit(
            EXIT_FAILED,
            f"stale: {len(fresh)} cosignature(s) younger than {max_age:,.0f} s, the "
            f"policy needs {max(policy.quorum, 1)} ({ages or 'none'}): a frozen view, "
            "or the witnesses cannot reach the log",
            "compare with other observers; ask the witnesses what they last cosigned",
            {"checkpoint": note.decode("utf-8", "replace")},
        )


def _fork(e: Fork, state: ObserverState, key: VerifierKey) -> _Exit:
    path = state.record_evidence(e.evidence)
    return _Exit(
        EXIT_FAILED,
        str(e),
        f"keep {path} and publish it: anyone can re-check it with "
        f"'saksi-verify consistency --key {key} --evidence {path}'",
        {"evidence": e.evidence, "evidence_file": str(path)},
    )


def _io(e: FetchError) -> _Exit:
    return _Exit(EXIT_IO, str(e), "the log could not be read: try again later")


def _observe(
    args: argparse.Namespace,
) -> tuple[VerifierKey, TileLog, str, Checkpoint, bytes, dict[str, Any]]:
    """Verify the log's checkpoint, prove it extends the trusted one, trust it.

    Returns the key, the log, its tiles prefix, the checkpoint, its note and the
    report so far.
    """
    key = _key(args)
    origin = _origin(args, key)
    policy = _policy(args)
    state = _state(args, key)
    log, note, prefix = _open_log(args.log)
    checkpoint, cosigned = _verify_note(note, key, origin, policy, "the checkpoint")
    if getattr(args, "max_age", None) is not None:
        _fresh_enough(cosigned, policy, args.max_age, note)
    try:
        trusted = state.trusted()
    except VerificationError as e:
        raise _Exit(
            EXIT_FAILED,
            f"the trusted checkpoint in {state.checkpoint_file} does not verify: {e}",
            "the state was damaged or replaced: investigate before removing it",
        ) from e
    proof: list[bytes] = []
    if trusted is not None:
        try:
            hashes = TileHashes(log, checkpoint.size)
            proof = prove_consistent(trusted, (checkpoint, note), hashes)
        except Fork as e:
            raise _fork(e, state, key) from e
        except FetchError as e:
            raise _io(e) from e
        except MalformedInput as e:
            raise _Exit(
                EXIT_FAILED,
                f"the log serves malformed tiles: {e}",
                "keep the output; try again, then compare with other observers",
            ) from e
    if trusted is None or trusted[1] != note:
        state.trust(note)
    report: dict[str, Any] = {
        "verified": True,
        "log": prefix,
        "origin": checkpoint.origin,
        "tree_size": checkpoint.size,
        "root": checkpoint.root_hash.hex(),
        "cosigned_by": cosigned,
        "first_use": trusted is None,
        "trusted_before": None
        if trusted is None
        else {"tree_size": trusted[0].size, "root": trusted[0].root_hash.hex()},
        "consistency_proof": [b64encode(h) for h in proof],
        "state": str(state.path),
        "checkpoint": note.decode("utf-8"),
    }
    return key, log, prefix, checkpoint, note, report


# -- checkpoint ------------------------------------------------------------------


def cmd_checkpoint(args: argparse.Namespace) -> dict[str, Any]:
    """Verify the log's checkpoint and that it extends the trusted one."""
    return _observe(args)[-1]


def _checkpoint_summary(report: dict[str, Any]) -> str:
    lines = [
        f"log {report['origin']}: size {report['tree_size']:,}, root "
        f"{report['root'][:16]}…",
    ]
    if report["cosigned_by"]:
        lines.append("cosigned by " + ", ".join(sorted(report["cosigned_by"])))
    before = report["trusted_before"]
    if before is None:
        lines.append(f"first use: this checkpoint is now trusted ({report['state']})")
    elif before["tree_size"] == report["tree_size"]:
        lines.append("unchanged since the trusted checkpoint")
    else:
        lines.append(
            f"consistent with the trusted size {before['tree_size']:,} "
            f"({len(report['consistency_proof'])}-hash proof built from the tiles)"
        )
    lines.append("VERIFIED")
    return "\n".join(lines)


# -- inclusion -------------------------------------------------------------------


def _describe(entry: bytes) -> dict[str, Any] | None:
    """Schema, subject and revision when the entry is a Saksi record."""
    try:
        logged = parse_log_entry(entry)
        if logged.envelope.payload_type != RECORD_PAYLOAD_TYPE:
            return None
        record = parse_record(logged.envelope.payload)
    except VerificationError:
        return None
    return {
        "schema": record.schema,
        "subject": record.subject,
        "revision": record.revision,
        "logged_at": logged.logged_at,
    }


def _receipt(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_read(path, "--receipt"))
        data = data.get("receipt", data)
        return {
            "index": int(data["index"]),
            "leaf_hash": bytes.fromhex(data["leaf_hash"]),
            "checkpoint": data["checkpoint"].encode("utf-8"),
            "proof": [bytes.fromhex(h) for h in data["inclusion_proof"]],
            "entry": base64.b64decode(data["entry"], validate=True)
            if data.get("entry")
            else None,
        }
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as e:
        raise _Exit(
            EXIT_USAGE,
            f"--receipt {path}: not a Saksi receipt ({e})",
            "pass the JSON receipt the log returned for the write",
        ) from e


def cmd_inclusion(args: argparse.Namespace) -> dict[str, Any]:
    """An entry (by index, by its bytes, or a receipt) under a trusted checkpoint."""
    if args.receipt is None and args.entry is None and args.index is None:
        raise _Exit(EXIT_USAGE, "pass --index N, --entry FILE or --receipt FILE")
    if args.receipt is not None and args.index is not None:
        raise _Exit(EXIT_USAGE, "a receipt names its own index: drop --index")
    key, log, _, checkpoint, note, report = _observe(args)
    origin = _origin(args, key)
    hashes = TileHashes(log, checkpoint.size)
    entry: bytes | None = None
    try:
        if args.receipt is not None:
            receipt = _receipt(args.receipt)
            index, leaf = receipt["index"], receipt["leaf_hash"]
            entry = receipt["entry"]
            if entry is not None and hash_leaf(entry) != leaf:
                raise _Exit(EXIT_FAILED, "the receipt's entry is not its leaf")
            try:
                theirs = verify_inclusion_in_checkpoint(
                    receipt["checkpoint"], key, origin, index, leaf, receipt["proof"]
                )
            except VerificationError as e:
                raise _Exit(EXIT_FAILED, f"the receipt does not verify: {e}") from e
            # The receipt's checkpoint must be one the log still stands by:
            # a prefix of the published one, or (when the log publishes
            # witnessed checkpoints a moment later) extending it.
            state = _state(args, key)
            ours, theirs_note = (checkpoint, note), (theirs, receipt["checkpoint"])
            try:
                if theirs.size <= checkpoint.size:
                    proof = prove_consistent(theirs_note, ours, hashes)
                else:
                    ahead = TileHashes(log, theirs.size)
                    proof = prove_consistent(ours, theirs_note, ahead)
            except Fork as e:
                raise _fork(e, state, key) from e
            except FetchError as e:
                raise _Exit(
                    EXIT_IO,
                    f"the receipt (size {theirs.size:,}) is newer than what the log "
                    f"publishes (size {checkpoint.size:,}) and its tiles: {e}",
                    "try again once the log has published a newer checkpoint",
                ) from e
            report["receipt_checkpoint"] = {
                "tree_size": theirs.size,
                "root": theirs.root_hash.hex(),
                "consistency_proof": [b64encode(h) for h in proof],
            }
            if theirs.size > checkpoint.size:
                # Included by the receipt's own proof, verified above.
                return _included(report, index, leaf, receipt["proof"], entry)
        else:
            if args.entry is not None:
                entry = _read(args.entry, "--entry")
                leaf = hash_leaf(entry)
                index = args.index if args.index is not None else _lookup(args, leaf)
            else:
                index = args.index
                if not 0 <= index < checkpoint.size:
                    raise _Exit(
                        EXIT_USAGE,
                        f"--index {index} is outside the log (size {checkpoint.size})",
                    )
                entry = log.entry(index, checkpoint.size)
                leaf = hash_leaf(entry)
        if index >= checkpoint.size:
            raise _Exit(
                EXIT_IO,
                f"entry {index} is not under the published checkpoint (size "
                f"{checkpoint.size:,}) yet",
                "try again once the log has published a newer checkpoint",
            )
        path = hashes.inclusion_proof(index, checkpoint.size)
    except FetchError as e:
        raise _io(e) from e
    except MalformedInput as e:
        raise _Exit(EXIT_FAILED, f"the log's tiles are malformed: {e}") from e
    try:
        verify_inclusion(index, checkpoint.size, leaf, path, checkpoint.root_hash)
    except VerificationError as e:
        raise _Exit(
            EXIT_FAILED,
            f"entry {index} is not in the log under its checkpoint: {e}",
            "the entry differs from what was logged, or the log's tiles do",
        ) from e
    return _included(report, index, leaf, path, entry)


def _included(
    report: dict[str, Any],
    index: int,
    leaf: bytes,
    proof: list[bytes],
    entry: bytes | None,
) -> dict[str, Any]:
    report.update(
        {
            "index": index,
            "leaf_hash": leaf.hex(),
            "inclusion_proof": [b64encode(h) for h in proof],
            "entry": None if entry is None else b64encode(entry),
            "record": None if entry is None else _describe(entry),
        }
    )
    return report


def _lookup(args: argparse.Namespace, leaf: bytes) -> int:
    """The index of ``leaf`` from a Saksi service (other logs have no lookup)."""
    base = args.log.rstrip("/")
    if base.endswith("/log"):
        base = base[: -len("/log")]
    query = urllib.parse.urlencode({"leaf_hash": leaf.hex()})
    try:
        data = json.loads(http_fetch(base)(f"v1/proofs/inclusion?{query}"))
        return int(data["index"])
    except FetchError as e:
        if e.status in (400, 404):
            raise _Exit(
                EXIT_FAILED if e.status == 404 else EXIT_USAGE,
                "the log does not hold this entry (or cannot look it up by hash)",
                "check --entry, or pass --index N",
            ) from e
        raise _io(e) from e
    except (ValueError, KeyError, TypeError) as e:
        raise _Exit(EXIT_USAGE, "no lookup by hash here: pass --index N") from e


def _inclusion_summary(report: dict[str, Any]) -> str:
    record = report.get("record")
    what = (
        f"{record['schema']} {record['subject']} revision {record['revision']}"
        if record
        else f"leaf {report['leaf_hash'][:16]}…"
    )
    lines = [
        f"entry {report['index']:,} ({what}) is in {report['origin']} at size "
        f"{report['tree_size']:,}, root {report['root'][:16]}…",
    ]
    if "receipt_checkpoint" in report:
        theirs = report["receipt_checkpoint"]["tree_size"]
        lines.append(f"the receipt's checkpoint (size {theirs:,}) is consistent")
    lines.append("VERIFIED")
    return "\n".join(lines)


# -- consistency -----------------------------------------------------------------


def cmd_consistency(args: argparse.Namespace) -> dict[str, Any]:
    """Two signed checkpoints of one log: consistent, or fork evidence re-checked."""
    key = _key(args)
    origin = _origin(args, key)
    if args.evidence is not None:
        try:
            evidence = json.loads(_read(args.evidence, "--evidence"))
            proven, finding = check_evidence(
                evidence.get("evidence", evidence), key, origin
            )
        except (ValueError, AttributeError) as e:
            raise _Exit(EXIT_USAGE, f"--evidence: not fork evidence ({e})") from e
        except VerificationError as e:
            raise _Exit(
                EXIT_USAGE,
                f"the evidence is not about this log: {e}",
                "check --key and --origin; evidence not signed by the log proves "
                "nothing against it",
            ) from e
        return {"verified": not proven, "fork_proven": proven, "finding": finding}
    if args.old is None or args.new is None or args.log is None:
        raise _Exit(EXIT_USAGE, "pass --evidence FILE, or --old, --new and --log")
    old_note, new_note = _read(args.old, "--old"), _read(args.new, "--new")
    old, _ = _verify_note(old_note, key, origin, WitnessPolicy(), "--old")
    new, _ = _verify_note(new_note, key, origin, WitnessPolicy(), "--new")
    log, _, _ = _open_log(args.log)
    if new.size < old.size:
        (old, old_note), (new, new_note) = (new, new_note), (old, old_note)
    try:
        hashes = TileHashes(log, new.size)
        proof = prove_consistent((old, old_note), (new, new_note), hashes)
    except Fork as e:
        raise _Exit(
            EXIT_FAILED, str(e), "keep both checkpoints", {"evidence": e.evidence}
        ) from e
    except FetchError as e:
        raise _io(e) from e
    except MalformedInput as e:
        raise _Exit(EXIT_IO, f"the log has no tiles for size {new.size}: {e}") from e
    return {
        "verified": True,
        "old_size": old.size,
        "new_size": new.size,
        "consistency_proof": [b64encode(h) for h in proof],
    }


def _consistency_summary(report: dict[str, Any]) -> str:
    if "finding" in report:
        verdict = "FORK PROVEN" if report["fork_proven"] else "NOT PROVEN"
        return f"{verdict}: {report['finding']}"
    return (
        f"size {report['old_size']:,} is a prefix of size {report['new_size']:,} "
        f"({len(report['consistency_proof'])}-hash proof)\nVERIFIED"
    )


# -- proof -----------------------------------------------------------------------


def cmd_proof(args: argparse.Namespace) -> dict[str, Any]:
    """A C2SP tlog-proof file, offline."""
    key = _key(args)
    origin = _origin(args, key)
    policy = _policy(args)
    try:
        proof = parse_tlog_proof(_read(args.file, "proof file"))
    except VerificationError as e:
        raise _Exit(EXIT_FAILED, f"{args.file}: not a valid tlog-proof: {e}") from e
    entry: bytes | None = None
    if args.leaf_hash is not None:
        try:
            leaf = bytes.fromhex(args.leaf_hash)
        except ValueError as e:
            raise _Exit(EXIT_USAGE, "--leaf-hash: expected 64 hex digits") from e
    elif args.entry is not None:
        entry = _read(args.entry, "--entry")
        leaf = hash_leaf(entry)
    elif proof.extra is not None:
        entry = proof.extra  # Saksi's exports carry the entry; the proof binds it
        leaf = hash_leaf(entry)
    else:
        raise _Exit(
            EXIT_USAGE,
            "the proof carries no entry",
            "pass --entry FILE (the logged bytes) or --leaf-hash HEX",
        )
    try:
        checkpoint, cosigned = proof.verify(leaf, key, origin, policy)
    except VerificationError as e:
        raise _Exit(EXIT_FAILED, f"{args.file}: {e}") from e
    return {
        "verified": True,
        "origin": checkpoint.origin,
        "tree_size": checkpoint.size,
        "root": checkpoint.root_hash.hex(),
        "index": proof.index,
        "leaf_hash": leaf.hex(),
        "cosigned_by": cosigned,
        "record": None if entry is None else _describe(entry),
    }


def _proof_summary(report: dict[str, Any]) -> str:
    record = report.get("record")
    what = f" ({record['schema']} {record['subject']})" if record else ""
    witnessed = (
        "; cosigned by " + ", ".join(sorted(report["cosigned_by"]))
        if report["cosigned_by"]
        else ""
    )
    return (
        f"entry {report['index']:,}{what} is in {report['origin']} at size "
        f"{report['tree_size']:,}{witnessed}\nVERIFIED"
    )


# -- compare ---------------------------------------------------------------------


def cmd_compare(args: argparse.Namespace) -> dict[str, Any]:
    """Checkpoints of one log from several sources: one history, or a split view."""
    key = _key(args)
    origin = _origin(args, key)
    log, note, _ = _open_log(args.log)
    sources: list[tuple[str, bytes, TileLog | None]] = [(args.log, note, log)]
    trusted = _state(args, key).checkpoint_file
    if trusted.exists():
        sources.append((f"state {trusted}", _read(trusted, "state"), None))
    for peer in args.peer:
        if peer.startswith(("http://", "https://")):
            peer_log, peer_note, _ = _open_log(peer)
            sources.append((peer, peer_note, peer_log))
        else:
            sources.append((peer, _read(Path(peer), "--peer"), None))
    seen: list[tuple[str, Checkpoint, bytes, TileLog | None]] = []
    for name, data, reader in sources:
        checkpoint, _ = _verify_note(data, key, origin, WitnessPolicy(), name)
        seen.append((name, checkpoint, data, reader))
    # The largest checkpoint with tiles to read anchors every comparison.
    readable = [(n, c, d, r) for n, c, d, r in seen if r is not None]
    anchor_name, anchor, anchor_note, anchor_log = max(
        readable, key=lambda s: s[1].size
    )
    rows, forks = [], []
    for name, checkpoint, data, _ in seen:
        row: dict[str, Any] = {
            "source": name,
            "tree_size": checkpoint.size,
            "root": checkpoint.root_hash.hex(),
        }
        try:
            hashes = TileHashes(anchor_log, anchor.size)
            prove_consistent((checkpoint, data), (anchor, anchor_note), hashes)
            row["consistent"] = True
        except Fork as e:
            row["consistent"] = False
            forks.append({"source": name, "anchor": anchor_name, **e.evidence})
        except FetchError as e:
            raise _io(e) from e
        rows.append(row)
    return {
        "verified": not forks,
        "anchor": {"source": anchor_name, "tree_size": anchor.size},
        "sources": rows,
        "split_views": forks,
    }


def _compare_summary(report: dict[str, Any]) -> str:
    lines = [
        f"{len(report['sources'])} sources, compared with {report['anchor']['source']}"
        f" (size {report['anchor']['tree_size']:,}):"
    ]
    for row in report["sources"]:
        mark = "consistent" if row["consistent"] else "SPLIT VIEW"
        lines.append(
            f"  {row['source']}: size {row['tree_size']:,} root {row['root'][:16]}… "
            f"{mark}"
        )
    lines.append(
        "VERIFIED: one history" if report["verified"] else "VERIFICATION FAILED"
    )
    return "\n".join(lines)


# -- audit -----------------------------------------------------------------------


def _progress(label: str, total: int) -> Callable[[int], None]:
    tty = sys.stderr.isatty()

    def show(done: int) -> None:
        if tty or done == total:
            share = done * 100 // max(total, 1)
            print(f"\r{label}: {done:,}/{total:,} ({share}%)", end="", file=sys.stderr)
            if done == total:
                print(file=sys.stderr)

    return show


def _audit_source(args: argparse.Namespace) -> tuple[TileLog, bytes, str]:
    """The log to audit: over HTTP (--log) or from a bundle file (--bundle)."""
    if args.bundle is not None:
        try:
            fetch, _ = bundle_fetch(args.bundle)
            log = TileLog(fetch)
            return log, log.checkpoint(), f"bundle {args.bundle}"
        except FetchError as e:
            raise _Exit(EXIT_IO, str(e), "pass a bundle written by saksi-verify") from e
    if args.log is None:
        raise _Exit(EXIT_USAGE, "pass --log URL or --bundle FILE")
    return _open_log(args.log)


def cmd_audit(args: argparse.Namespace) -> dict[str, Any]:
    """Read, recompute and replay the log; the audit report."""
    key = _key(args)
    origin = _origin(args, key)
    log, note, source = _audit_source(args)
    checkpoint, _ = _verify_note(note, key, origin, WitnessPolicy(), "the checkpoint")
    size = checkpoint.size
    upto = size if args.to is None else min(args.to, size)
    if args.from_ < 0 or upto < args.from_:
        raise _Exit(EXIT_USAGE, "--from must be 0..--to", "check the range")
    state = _state(args, key)
    path: Path | None = state.path / "audit.db"
    if args.to is not None:
        path = None  # a partial audit keeps no state
    elif path is not None:
        if args.fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
    skew = dt.timedelta(seconds=args.skew)
    try:
        auditor = Auditor(AuditStore(path), skew)
    except sqlite3.DatabaseError as e:
        raise _Exit(
            EXIT_IO,
            f"the audit state {path} is unreadable: {e}",
            "run again with --fresh to audit from the start",
        ) from e
    start = auditor.size
    if start > size:
        raise _Exit(
            EXIT_FAILED,
            f"this observer audited {start:,} entries of {origin}; the log now "
            f"shows {size:,}: it was rolled back",
            "keep the state directory and both checkpoints as evidence",
        )
    hasher = None  # past --to, entries are hashed but not replayed
    show = _progress("entries", size)
    show(start)
    try:
        run_audit(
            _bounded(log.entries(start, size), upto),
            auditor,
            args.workers,
            show,
            save_every=0 if path is None else AUDIT_STEP,
        )
        if upto < size:
            hasher = TreeHasher(auditor.hasher.frontier)
            for first, entries in log.entries(upto, size):
                for entry in entries:
                    hasher.add(entry)
                show(first + len(entries))
    except FetchError as e:
        raise _io(e) from e
    except MalformedInput as e:
        raise _Exit(
            EXIT_FAILED,
            f"the log serves a malformed entry bundle: {e}",
            "keep it as evidence",
        ) from e
    root = (hasher or auditor.hasher).root()
    root_matches = root == checkpoint.root_hash
    if root_matches and path is not None:
        auditor.save()  # the next audit starts here
    report = auditor.summary(root_matches)
    saved = auditor.store.progress()  # None in memory: nothing is ever saved
    if not root_matches and saved is not None and saved["size"] > auditor.confirmed:
        # Steps saved part-way (by this audit or an interrupted one) are part of
        # the root that did not match.
        report["hint"] = (
            f"the audit state holds entries {auditor.confirmed:,} to "
            f"{saved['size']:,} that no checkpoint has confirmed: keep the state and "
            "this checkpoint as evidence, then run again with --fresh"
        )
    first = args.from_

    def findings() -> Iterator[dict[str, Any]]:
        # Streamed from the audit's store when printed, then the store closes.
        try:
            for finding in auditor.findings():
                if finding.index >= first:
                    yield finding.to_json()
        finally:
            auditor.store.close()

    report["findings"] = findings()
    if first:
        for item in report["checks"]:
            item["indices"] = [i for i in item["indices"] if i >= first]
    report.update(
        {
            "log": source,
            "origin": checkpoint.origin,
            "checkpoint": note.decode(),
            "tree_size": size,
            "root": checkpoint.root_hash.hex(),
            "from": args.from_,
            "to": upto,
            "resumed_at": start,
            "state": None if path is None else str(path),
            "verified": report["passed"],
        }
    )
    return report


def _bounded(
    bundles: Iterator[tuple[int, list[bytes]]], upto: int
) -> Iterator[tuple[int, list[bytes]]]:
    """The bundles trimmed to entries below ``upto``."""
    for first, entries in bundles:
        if first >= upto:
            return
        yield first, entries[: upto - first]


def cmd_bundle(args: argparse.Namespace) -> dict[str, Any]:
    """Write the log's checkpoint and entries to one file, for offline audits."""
    key = _key(args)
    log, note, _ = _open_log(args.log)
    checkpoint, _ = _verify_note(
        note, key, _origin(args, key), WitnessPolicy(), "the checkpoint"
    )
    try:
        write_bundle(
            log, note, checkpoint.size, args.out, _progress("entries", checkpoint.size)
        )
    except FetchError as e:
        raise _io(e) from e
    except OSError as e:
        raise _Exit(EXIT_IO, f"cannot write {args.out}: {e.strerror}") from e
    return {
        "verified": True,
        "bundle": str(args.out),
        "tree_size": checkpoint.size,
        "root": checkpoint.root_hash.hex(),
        "bytes": args.out.stat().st_size,
    }


def _audit_summary(report: dict[str, Any]) -> str:
    lines = [
        f"log {report['origin']}: {report['tree_size']:,} entries, root "
        f"{report['root'][:16]}…; audited entries {report['from']:,} to "
        f"{report['to']:,}",
    ]
    for item in report["checks"]:
        mark = {"pass": "ok", "fail": "FAIL", "flagged": "flagged", "skipped": "-"}
        extra = ""
        if item.get("rules"):
            extra = " (" + ", ".join(f"{r} {n}" for r, n in item["rules"].items()) + ")"
        lines.append(
            f"{item['number']:>2}. {item['check']:<18} {mark[item['status']]:<8}"
            f"{item['checked']:>10,} checked, {item['findings']:,} findings{extra}"
        )
    # What fails first; flags and notices after (a bounded pick, not a sort of
    # what may be a million flags).
    ordered = heapq.nsmallest(
        SHOWN + 1,
        report["findings"],
        key=lambda f: (f["check"] in NOT_FAILURES, f["index"]),
    )
    total = sum(item["findings"] for item in report["checks"])
    for finding in ordered[:SHOWN]:
        lines.append(
            f"  entry {finding['index']}: {finding['check']}"
            + (f"/{finding['rule']}" if "rule" in finding else "")
            + f" {finding['subject'] or ''}: {finding['detail']}"
        )
    if total > SHOWN:
        lines.append(f"  … and {total - SHOWN:,} more (--json)")
    lines.append(
        "VERIFIED: every check passed"
        if report["passed"]
        else "VERIFICATION FAILED: see the failing checks above"
    )
    if "hint" in report:
        lines.append(f"hint: {report['hint']}")
    return "\n".join(lines)


# -- witness ---------------------------------------------------------------------


def _witness_key(path: Path) -> WitnessKey:
    try:
        ensure_private(path)
        return WitnessKey.parse(_read(path, "--key-file").decode("utf-8", "replace"))
    except MalformedInput as e:
        raise _Exit(
            EXIT_USAGE,
            f"--key-file {path}: {e}",
            "make one with 'saksi-verify witness-key --name NAME --out FILE'",
        ) from e
    except FileNotFoundError as e:
        raise _Exit(EXIT_IO, f"--key-file {path}: no such file") from e


def cmd_witness(args: argparse.Namespace) -> dict[str, Any]:
    """Serve as a C2SP tlog-witness until stopped (SIGINT or SIGTERM)."""
    key = _witness_key(args.key_file)
    logs = [_vkey(k, "--log-key") for k in args.log_key]
    host, sep, port = args.listen.rpartition(":")
    if not sep or not port.isdigit():
        raise _Exit(EXIT_USAGE, f"--listen {args.listen}: expected HOST:PORT")
    state = args.state or default_state_dir() / "witness" / key.name
    try:
        witness = Witness(key, logs, state)
        server = serve_witness(witness, host or "127.0.0.1", int(port))
    except OSError as e:
        raise _Exit(EXIT_IO, f"cannot listen on {args.listen}: {e.strerror}") from e
    bound_host, bound_port = server.server_address[:2]
    started = {
        "witness": key.name,
        "vkey": str(key.verifier_key),
        "url": f"http://{bound_host!s}:{bound_port}",
        "logs": [str(k) for k in logs],
        "state": str(state),
    }
    print(
        json.dumps(started)
        if args.json
        else (
            f"witness {key.name} ({key.verifier_key}) cosigning "
            f"{', '.join(k.name for k in logs)} on {started['url']}"
        ),
        flush=True,
    )

    def stop(*_: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
    return {"verified": True, "stopped": True, **started}


def cmd_witness_key(args: argparse.Namespace) -> dict[str, Any]:
    """Make a witness key file; print the cosigner key to publish."""
    try:
        key = WitnessKey.generate(args.name)
    except MalformedInput as e:
        raise _Exit(EXIT_USAGE, f"--name: {e}") from e
    try:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise _Exit(EXIT_USAGE, f"{args.out} exists: not overwritten") from e
    except OSError as e:
        raise _Exit(EXIT_IO, f"cannot write {args.out}: {e.strerror}") from e
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(key.to_text())
    vkey = str(key.verifier_key)
    return {"witness": key.name, "vkey": vkey, "key_file": str(args.out)}


# -- the parser ------------------------------------------------------------------


def _common(
    parser: argparse.ArgumentParser, *, log: bool = True, witnesses: bool = True
) -> None:
    if log:
        parser.add_argument(
            "--log", required=True, help="the log's tiles prefix or Saksi base URL"
        )
    parser.add_argument(
        "--key", required=True, help="the log's verifier key, or a file holding it"
    )
    parser.add_argument("--origin", help="the checkpoint origin (default: key name)")
    parser.add_argument(
        "--state",
        type=Path,
        help="where this observer keeps what it trusts "
        "(default $SAKSI_VERIFY_STATE or ~/.local/state/saksi-verify)",
    )
    if witnesses:
        parser.add_argument(
            "--witness",
            action="append",
            metavar="VKEY",
            help="a witness's cosigner key (or file); repeat for each",
        )
        parser.add_argument(
            "--min-witnesses",
            type=int,
            metavar="K",
            help="cosignatures needed (default: every --witness)",
        )
    parser.add_argument("--json", action="store_true", help="print JSON")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="saksi-verify",
        description="Check a transparency log without trusting its operator.",
    )
    parser.add_argument(
        "--version", action="version", version=f"saksi-verify {__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    checkpoint = sub.add_parser(
        "checkpoint", help="verify the checkpoint; prove it extends the trusted one"
    )
    _common(checkpoint)
    checkpoint.add_argument(
        "--max-age",
        type=float,
        metavar="SECONDS",
        help="refuse a checkpoint without enough cosignatures this recent",
    )
    checkpoint.set_defaults(func=cmd_checkpoint, summary=_checkpoint_summary)

    inclusion = sub.add_parser("inclusion", help="verify that an entry is in the log")
    _common(inclusion)
    which = inclusion.add_mutually_exclusive_group()
    which.add_argument("--receipt", type=Path, help="a receipt (JSON) from the log")
    which.add_argument("--entry", type=Path, help="the entry's exact bytes")
    inclusion.add_argument("--index", type=int, metavar="N", help="the entry's index")
    inclusion.set_defaults(func=cmd_inclusion, summary=_inclusion_summary)

    consistency = sub.add_parser(
        "consistency", help="two checkpoints are one history; re-check fork evidence"
    )
    consistency.add_argument("--log", help="the log (for --old/--new)")
    _common(consistency, log=False, witnesses=False)
    consistency.add_argument("--old", type=Path, help="a signed checkpoint")
    consistency.add_argument("--new", type=Path, help="a later signed checkpoint")
    consistency.add_argument(
        "--evidence", type=Path, help="fork evidence written by saksi-verify"
    )
    consistency.set_defaults(func=cmd_consistency, summary=_consistency_summary)

    audit = sub.add_parser("audit", help="read the whole log, recompute and replay it")
    audit.add_argument("--log", help="the log's tiles prefix or Saksi base URL")
    audit.add_argument("--bundle", type=Path, help="a bundle file instead of --log")
    _common(audit, log=False, witnesses=False)
    audit.add_argument(
        "--from",
        dest="from_",
        type=int,
        default=0,
        metavar="N",
        help="report findings from entry N on (default 0); every entry is still "
        "read and replayed",
    )
    audit.add_argument(
        "--to", type=int, metavar="N", help="stop replaying at N (no state is kept)"
    )
    audit.add_argument(
        "--fresh",
        action="store_true",
        help="start from entry 0, not where the last audit of this log stopped",
    )
    audit.add_argument(
        "--skew",
        type=float,
        default=SKEW.total_seconds(),
        metavar="SECONDS",
        help="how far issued_at may be ahead of logged_at (default 300)",
    )
    audit.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="processes that check entries (default: one per core)",
    )
    audit.set_defaults(func=cmd_audit, summary=_audit_summary)

    bundle = sub.add_parser("bundle", help="save the log's entries to one file")
    _common(bundle, witnesses=False)
    bundle.add_argument(
        "--out", type=Path, required=True, help="the bundle file to write"
    )
    bundle.set_defaults(
        func=cmd_bundle,
        summary=lambda r: (
            f"{r['bundle']}: {r['tree_size']:,} entries, {r['bytes']:,} bytes"
        ),
    )

    proof = sub.add_parser("proof", help="verify a C2SP tlog-proof file offline")
    proof.add_argument("file", type=Path, help="the .tlog-proof file")
    _common(proof, log=False)
    bound = proof.add_mutually_exclusive_group()
    bound.add_argument("--entry", type=Path, help="the entry's exact bytes")
    bound.add_argument("--leaf-hash", help="the entry's RFC 6962 leaf hash (hex)")
    proof.set_defaults(func=cmd_proof, summary=_proof_summary)

    compare = sub.add_parser(
        "compare", help="checkpoints from several sources: one history or a split view"
    )
    _common(compare, witnesses=False)
    compare.add_argument(
        "--peer",
        action="append",
        required=True,
        metavar="SOURCE",
        help="a mirror or another observer's log URL, or a signed checkpoint file",
    )
    compare.set_defaults(func=cmd_compare, summary=_compare_summary)

    witness = sub.add_parser("witness", help="cosign checkpoints (C2SP tlog-witness)")
    witness.add_argument(
        "--log-key",
        action="append",
        required=True,
        metavar="VKEY",
        help="the key of a log to witness (its name is the origin); repeat",
    )
    witness.add_argument(
        "--key-file", type=Path, required=True, help="the witness's private key"
    )
    witness.add_argument(
        "--listen",
        required=True,
        metavar="HOST:PORT",
        help="the address to serve the witness on, e.g. 127.0.0.1:8081",
    )
    witness.add_argument("--state", type=Path, help="where cosigned sizes are kept")
    witness.add_argument("--json", action="store_true", help="print JSON")
    witness.set_defaults(func=cmd_witness, summary=lambda r: "witness stopped")

    witness_key = sub.add_parser("witness-key", help="make a witness key file")
    witness_key.add_argument("--name", required=True, help="e.g. witness.example.org")
    witness_key.add_argument(
        "--out",
        type=Path,
        required=True,
        help="the key file to write (mode 0600; an existing file is not overwritten)",
    )
    witness_key.add_argument("--json", action="store_true", help="print JSON")
    witness_key.set_defaults(
        func=cmd_witness_key,
        summary=lambda r: (
            f"{r['key_file']} written; publish the cosigner key:\n{r['vkey']}"
        ),
    )
    return parser


def _print_json(report: dict[str, Any]) -> None:
    """Print ``report`` as JSON; a ``findings`` iterator is streamed, item by item."""
    findings = report.get("findings")
    if findings is None or isinstance(findings, list):
        print(json.dumps(report, indent=1))
        return
    head = json.dumps({k: v for k, v in report.items() if k != "findings"}, indent=1)
    out = sys.stdout
    out.write(head[:-2] + ',\n "findings": [')
    for n, finding in enumerate(findings):
        out.write(("\n  " if n == 0 else ",\n  ") + json.dumps(finding))
    out.write("\n ]\n}\n")
    out.flush()


def main(argv: list[str] | None = None) -> int:
    """Run ``saksi-verify``; the exit code."""
    args = _parser().parse_args(argv)
    try:
        report = args.func(args)
    except _Exit as e:
        if args.json:
            print(
                json.dumps(
                    {"verified": False, "error": e.message, "hint": e.hint, **e.detail},
                    indent=1,
                )
            )
        print(f"saksi-verify: error: {e.message}", file=sys.stderr)
        evidence = e.detail.get("evidence")
        if evidence and not args.json:
            print(json.dumps(evidence, indent=1), file=sys.stderr)
        if e.hint:
            print(f"saksi-verify: hint: {e.hint}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return EXIT_IO
    try:
        if args.json:
            _print_json(report)
        else:
            print(args.summary(report))
    except BrokenPipeError:  # e.g. piped into head
        sys.stderr.close()
    if "passed" in report:
        return EXIT_OK if report["passed"] else EXIT_FAILED
    return EXIT_OK if report.get("verified", True) else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
