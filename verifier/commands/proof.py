"""``saksi-verify proof``: a C2SP tlog-proof file, offline.

(1) The file parses as a tlog-proof; (2) the entry it is about is bound: by
``--leaf-hash``, by ``--entry`` (its bytes), or by the entry the proof carries;
(3) the proof's checkpoint verifies against the pinned key, origin and witness
policy, and its inclusion proof reaches that checkpoint's root.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from verifier.commands._common import (
    EXIT_FAILED,
    EXIT_USAGE,
    Exit,
    Subparsers,
    add_common,
    describe,
    log_key,
    origin,
    policy,
    read,
)
from verifier.errors import VerificationError
from verifier.rfc6962 import hash_leaf
from verifier.tlog_proof import parse_tlog_proof

__all__ = ["register", "run", "summary"]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """A C2SP tlog-proof file, offline."""
    key = log_key(args)
    pinned = origin(args, key)
    witnesses = policy(args)
    # (1)
    try:
        proof = parse_tlog_proof(read(args.file, "proof file"))
    except VerificationError as e:
        raise Exit(EXIT_FAILED, f"{args.file}: not a valid tlog-proof: {e}") from e
    # (2)
    entry: bytes | None = None
    if args.leaf_hash is not None:
        try:
            leaf = bytes.fromhex(args.leaf_hash)
        except ValueError as e:
            raise Exit(EXIT_USAGE, "--leaf-hash: expected 64 hex digits") from e
    elif args.entry is not None:
        entry = read(args.entry, "--entry")
        leaf = hash_leaf(entry)
    elif proof.extra is not None:
        entry = proof.extra  # Saksi's exports carry the entry; the proof binds it
        leaf = hash_leaf(entry)
    else:
        raise Exit(
            EXIT_USAGE,
            "the proof carries no entry",
            "pass --entry FILE (the logged bytes) or --leaf-hash HEX",
        )
    # (3)
    try:
        checkpoint, cosigned = proof.verify(leaf, key, pinned, witnesses)
    except VerificationError as e:
        raise Exit(EXIT_FAILED, f"{args.file}: {e}") from e
    return {
        "verified": True,
        "origin": checkpoint.origin,
        "tree_size": checkpoint.size,
        "root": checkpoint.root_hash.hex(),
        "index": proof.index,
        "leaf_hash": leaf.hex(),
        "cosigned_by": cosigned,
        "record": None if entry is None else describe(entry),
    }


def summary(report: dict[str, Any]) -> str:
    """The human summary of ``run``'s report."""
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


def register(sub: Subparsers) -> None:
    """Add the ``proof`` command."""
    parser = sub.add_parser("proof", help="verify a C2SP tlog-proof file offline")
    parser.add_argument("file", type=Path, help="the .tlog-proof file")
    add_common(parser, log=False)
    bound = parser.add_mutually_exclusive_group()
    bound.add_argument("--entry", type=Path, help="the entry's exact bytes")
    bound.add_argument("--leaf-hash", help="the entry's RFC 6962 leaf hash (hex)")
    parser.set_defaults(func=run, summary=summary)
