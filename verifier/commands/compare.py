"""``saksi-verify compare``: one log's checkpoints from several sources.

(1) The log's checkpoint, this observer's trusted one, and each ``--peer``'s (a
mirror or another observer's log URL, or a signed checkpoint file) verify
against the pinned key and origin; (2) the largest one with tiles to read
anchors the comparison; (3) every checkpoint is proven a prefix of the anchor
from its tiles, or reported as a split view with the evidence.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from verifier.checkpoint import Checkpoint
from verifier.commands._common import (
    Subparsers,
    add_common,
    io,
    log_key,
    open_log,
    origin,
    read,
    state,
    verify_note,
)
from verifier.cosignature import WitnessPolicy
from verifier.observe import prove_consistent
from verifier.tile_client import FetchError, TileHashes, TileLog
from verifier.trusted_log import Fork

__all__ = ["register", "run", "summary"]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Checkpoints of one log from several sources: one history, or a split view."""
    key = log_key(args)
    pinned = origin(args, key)
    log, note, _ = open_log(args.log)
    sources: list[tuple[str, bytes, TileLog | None]] = [(args.log, note, log)]
    trusted = state(args, key).checkpoint_file
    if trusted.exists():
        sources.append((f"state {trusted}", read(trusted, "state"), None))
    for peer in args.peer:
        if peer.startswith(("http://", "https://")):
            peer_log, peer_note, _ = open_log(peer)
            sources.append((peer, peer_note, peer_log))
        else:
            sources.append((peer, read(Path(peer), "--peer"), None))
    # (1)
    seen: list[tuple[str, Checkpoint, bytes, TileLog | None]] = []
    for name, data, reader in sources:
        checkpoint, _ = verify_note(data, key, pinned, WitnessPolicy(), name)
        seen.append((name, checkpoint, data, reader))
    # (2) The largest checkpoint with tiles to read anchors every comparison.
    readable = [(n, c, d, r) for n, c, d, r in seen if r is not None]
    anchor_name, anchor, anchor_note, anchor_log = max(
        readable, key=lambda s: s[1].size
    )
    # (3)
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
            raise io(e) from e
        rows.append(row)
    return {
        "verified": not forks,
        "anchor": {"source": anchor_name, "tree_size": anchor.size},
        "sources": rows,
        "split_views": forks,
    }


def summary(report: dict[str, Any]) -> str:
    """The human summary of ``run``'s report."""
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


def register(sub: Subparsers) -> None:
    """Add the ``compare`` command."""
    parser = sub.add_parser(
        "compare", help="checkpoints from several sources: one history or a split view"
    )
    add_common(parser, witnesses=False)
    parser.add_argument(
        "--peer",
        action="append",
        required=True,
        metavar="SOURCE",
        help="a mirror or another observer's log URL, or a signed checkpoint file",
    )
    parser.set_defaults(func=run, summary=summary)
