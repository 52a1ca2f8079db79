"""``saksi-verify bundle``: the log's checkpoint and entries in one file.

The checkpoint is verified against the pinned key and origin first; the file is
what ``audit --bundle`` reads offline.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from verifier.bundle import write_bundle
from verifier.commands._common import (
    EXIT_IO,
    Exit,
    Subparsers,
    add_common,
    io,
    log_key,
    open_log,
    origin,
    progress,
    verify_note,
)
from verifier.cosignature import WitnessPolicy
from verifier.tile_client import FetchError

__all__ = ["register", "run", "summary"]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Write the log's checkpoint and entries to one file, for offline audits."""
    key = log_key(args)
    log, note, _ = open_log(args.log)
    checkpoint, _ = verify_note(
        note, key, origin(args, key), WitnessPolicy(), "the checkpoint"
    )
    try:
        write_bundle(
            log, note, checkpoint.size, args.out, progress("entries", checkpoint.size)
        )
    except FetchError as e:
        raise io(e) from e
    except OSError as e:
        raise Exit(EXIT_IO, f"cannot write {args.out}: {e.strerror}") from e
    return {
        "verified": True,
        "bundle": str(args.out),
        "tree_size": checkpoint.size,
        "root": checkpoint.root_hash.hex(),
        "bytes": args.out.stat().st_size,
    }


def summary(report: dict[str, Any]) -> str:
    """The human summary of ``run``'s report."""
    return (
        f"{report['bundle']}: {report['tree_size']:,} entries, "
        f"{report['bytes']:,} bytes"
    )


def register(sub: Subparsers) -> None:
    """Add the ``bundle`` command."""
    parser = sub.add_parser("bundle", help="save the log's entries to one file")
    add_common(parser, witnesses=False)
    parser.add_argument(
        "--out", type=Path, required=True, help="the bundle file to write"
    )
    parser.set_defaults(func=run, summary=summary)
