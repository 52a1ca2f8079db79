"""``saksi-verify checkpoint``: the log's checkpoint, and that it extends ours.

(1) Fetch the log's checkpoint; (2) verify it against the pinned key, origin
and witness policy; (3) with ``--max-age``, enough recent cosignatures; (4)
re-verify the checkpoint this observer trusted; (5) prove from the log's tiles
that the new one extends it (else keep the fork evidence); (6) trust it.
The decisions are ``verifier.trusted_log.TrustedLog``'s; this module does the
I/O. ``inclusion`` starts with the same steps (``observe``).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

from verifier._encoding import b64encode
from verifier.checkpoint import Checkpoint
from verifier.commands._common import (
    EXIT_FAILED,
    EXIT_IO,
    EXIT_USAGE,
    Exit,
    Subparsers,
    add_common,
    fork,
    io,
    log_key,
    open_log,
    origin,
    policy,
    state,
    verify_note,
)
from verifier.cosignature import WitnessPolicy
from verifier.errors import MalformedInput, VerificationError
from verifier.note import VerifierKey
from verifier.observe import catch_up
from verifier.tile_client import FetchError, TileLog
from verifier.trusted_log import Fork, TrustedLog

__all__ = ["Observed", "observe", "register", "run", "summary"]


@dataclass(frozen=True, slots=True)
class Observed:
    """The log as this observer now trusts it, and the report so far."""

    key: VerifierKey
    log: TileLog
    checkpoint: Checkpoint
    note: bytes
    report: dict[str, Any]


def _fresh_enough(
    cosigned: dict[str, int], policy: WitnessPolicy, max_age: float, note: bytes
) -> None:
    """At least the policy's quorum of cosignatures are at most ``max_age`` old."""
    if not policy.witnesses:
        raise Exit(EXIT_USAGE, "--max-age needs the witnesses (--witness)")
    now = time.time()
    fresh = {name for name, stamp in cosigned.items() if now - stamp <= max_age}
    if len(fresh) < max(policy.quorum, 1):
        ages = ", ".join(f"{n} {now - t:,.0f} s" for n, t in sorted(cosigned.items()))
        raise Exit(
            EXIT_FAILED,
            f"stale: {len(fresh)} cosignature(s) younger than {max_age:,.0f} s, the "
            f"policy needs {max(policy.quorum, 1)} ({ages or 'none'}): a frozen view, "
            "or the witnesses cannot reach the log",
            "compare with other observers; ask the witnesses what they last cosigned",
            {"checkpoint": note.decode("utf-8", "replace")},
        )


def observe(args: argparse.Namespace) -> Observed:
    """Verify the log's checkpoint, prove it extends the trusted one, trust it."""
    key = log_key(args)
    pinned = origin(args, key)
    witnesses = policy(args)
    kept = state(args, key)
    # (1) and (2)
    log, note, prefix = open_log(args.log)
    checkpoint, cosigned = verify_note(note, key, pinned, witnesses, "the checkpoint")
    # (3)
    if getattr(args, "max_age", None) is not None:
        _fresh_enough(cosigned, witnesses, args.max_age, note)
    # (4)
    trusted = TrustedLog(key, pinned, witnesses)
    try:
        stored = kept.load()
    except OSError as e:
        raise Exit(
            EXIT_IO,
            f"cannot read the trusted checkpoint {kept.checkpoint_file}: "
            f"{e.strerror or e}",
            "check the state directory and its permissions",
        ) from e
    if stored is not None:
        try:
            trusted.load(stored)
        except VerificationError as e:
            raise Exit(
                EXIT_FAILED,
                f"the trusted checkpoint in {kept.checkpoint_file} does not verify: "
                f"{e}",
                "the state was damaged or replaced: investigate before removing it",
            ) from e
    # (5)
    try:
        update = catch_up(trusted, note, log)
    except Fork as e:
        raise fork(e, kept, key) from e
    except FetchError as e:
        raise io(e) from e
    except MalformedInput as e:
        raise Exit(
            EXIT_FAILED,
            f"the log serves malformed tiles: {e}",
            "keep the output; try again, then compare with other observers",
        ) from e
    # (6)
    if update.changed:
        kept.trust(note)
    before = update.before
    report: dict[str, Any] = {
        "verified": True,
        "log": prefix,
        "origin": checkpoint.origin,
        "tree_size": checkpoint.size,
        "root": checkpoint.root_hash.hex(),
        "cosigned_by": cosigned,
        "first_use": update.first_use,
        "trusted_before": None
        if before is None
        else {"tree_size": before.size, "root": before.root_hash.hex()},
        "consistency_proof": [b64encode(h) for h in update.proof],
        "state": str(kept.path),
        "checkpoint": note.decode("utf-8"),
    }
    return Observed(key, log, checkpoint, note, report)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Verify the log's checkpoint and that it extends the trusted one."""
    return observe(args).report


def summary(report: dict[str, Any]) -> str:
    """The human summary of ``run``'s report."""
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


def register(sub: Subparsers) -> None:
    """Add the ``checkpoint`` command."""
    parser = sub.add_parser(
        "checkpoint", help="verify the checkpoint; prove it extends the trusted one"
    )
    add_common(parser)
    parser.add_argument(
        "--max-age",
        type=float,
        metavar="SECONDS",
        help="refuse a checkpoint without enough cosignatures this recent",
    )
    parser.set_defaults(func=run, summary=summary)
