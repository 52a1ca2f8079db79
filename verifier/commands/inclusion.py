"""``saksi-verify inclusion``: an entry is in the log under a trusted checkpoint.

The entry is named by ``--index``, by its bytes (``--entry``; a Saksi service
looks its index up by leaf hash) or by the receipt the log returned for the
write (``--receipt``). (1) The log's checkpoint is observed as by ``checkpoint``
(verified, proven to extend the trusted one, trusted); (2) a receipt's own
checkpoint and proof must verify, and its checkpoint must be one the log still
stands by (consistent with the published one, either way); (3) the inclusion
proof built from the log's tiles (RFC 9162 §2.1.3) reaches the checkpoint's root.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import urllib.parse
from pathlib import Path
from typing import Any

from verifier._encoding import b64encode
from verifier.checkpoint import verify_inclusion_in_checkpoint
from verifier.commands._common import (
    EXIT_FAILED,
    EXIT_IO,
    EXIT_USAGE,
    Exit,
    Subparsers,
    add_common,
    describe,
    fork,
    io,
    origin,
    read,
    state,
)
from verifier.commands.checkpoint import observe
from verifier.errors import MalformedInput, VerificationError
from verifier.observe import prove_consistent
from verifier.proof_check import verify_inclusion
from verifier.rfc6962 import hash_leaf
from verifier.tile_client import FetchError, TileHashes, http_fetch
from verifier.trusted_log import Fork

__all__ = ["register", "run", "summary"]


def _receipt(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(read(path, "--receipt"))
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
        raise Exit(
            EXIT_USAGE,
            f"--receipt {path}: not a Saksi receipt ({e})",
            "pass the JSON receipt the log returned for the write",
        ) from e


def run(args: argparse.Namespace) -> dict[str, Any]:
    """An entry (by index, by its bytes, or a receipt) under a trusted checkpoint."""
    if args.receipt is None and args.entry is None and args.index is None:
        raise Exit(EXIT_USAGE, "pass --index N, --entry FILE or --receipt FILE")
    if args.receipt is not None and args.index is not None:
        raise Exit(EXIT_USAGE, "a receipt names its own index: drop --index")
    # (1)
    observed = observe(args)
    key, log, checkpoint = observed.key, observed.log, observed.checkpoint
    note, report = observed.note, observed.report
    pinned = origin(args, key)
    hashes = TileHashes(log, checkpoint.size)
    entry: bytes | None = None
    try:
        if args.receipt is not None:
            # (2)
            receipt = _receipt(args.receipt)
            index, leaf = receipt["index"], receipt["leaf_hash"]
            entry = receipt["entry"]
            if entry is not None and hash_leaf(entry) != leaf:
                raise Exit(EXIT_FAILED, "the receipt's entry is not its leaf")
            try:
                theirs = verify_inclusion_in_checkpoint(
                    receipt["checkpoint"], key, pinned, index, leaf, receipt["proof"]
                )
            except VerificationError as e:
                raise Exit(EXIT_FAILED, f"the receipt does not verify: {e}") from e
            # The receipt's checkpoint must be one the log still stands by:
            # a prefix of the published one, or (when the log publishes
            # witnessed checkpoints a moment later) extending it.
            kept = state(args, key)
            ours, theirs_note = (checkpoint, note), (theirs, receipt["checkpoint"])
            try:
                if theirs.size <= checkpoint.size:
                    proof = prove_consistent(theirs_note, ours, hashes)
                else:
                    ahead = TileHashes(log, theirs.size)
                    proof = prove_consistent(ours, theirs_note, ahead)
            except Fork as e:
                raise fork(e, kept, key) from e
            except FetchError as e:
                raise Exit(
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
                entry = read(args.entry, "--entry")
                leaf = hash_leaf(entry)
                index = args.index if args.index is not None else _lookup(args, leaf)
            else:
                index = args.index
                if not 0 <= index < checkpoint.size:
                    raise Exit(
                        EXIT_USAGE,
                        f"--index {index} is outside the log (size {checkpoint.size})",
                    )
                entry = log.entry(index, checkpoint.size)
                leaf = hash_leaf(entry)
        if index >= checkpoint.size:
            raise Exit(
                EXIT_IO,
                f"entry {index} is not under the published checkpoint (size "
                f"{checkpoint.size:,}) yet",
                "try again once the log has published a newer checkpoint",
            )
        path = hashes.inclusion_proof(index, checkpoint.size)
    except FetchError as e:
        raise io(e) from e
    except MalformedInput as e:
        raise Exit(EXIT_FAILED, f"the log's tiles are malformed: {e}") from e
    # (3)
    try:
        verify_inclusion(index, checkpoint.size, leaf, path, checkpoint.root_hash)
    except VerificationError as e:
        raise Exit(
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
            "record": None if entry is None else describe(entry),
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
            raise Exit(
                EXIT_FAILED if e.status == 404 else EXIT_USAGE,
                "the log does not hold this entry (or cannot look it up by hash)",
                "check --entry, or pass --index N",
            ) from e
        raise io(e) from e
    except (ValueError, KeyError, TypeError) as e:
        raise Exit(EXIT_USAGE, "no lookup by hash here: pass --index N") from e


def summary(report: dict[str, Any]) -> str:
    """The human summary of ``run``'s report."""
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


def register(sub: Subparsers) -> None:
    """Add the ``inclusion`` command."""
    parser = sub.add_parser("inclusion", help="verify that an entry is in the log")
    add_common(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--receipt", type=Path, help="a receipt (JSON) from the log")
    which.add_argument("--entry", type=Path, help="the entry's exact bytes")
    parser.add_argument("--index", type=int, metavar="N", help="the entry's index")
    parser.set_defaults(func=run, summary=summary)
