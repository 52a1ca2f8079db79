"""``saksi-verify consistency``: two checkpoints are one history, or a fork proven.

With ``--old`` and ``--new``: (1) both verify against the pinned key and
origin; (2) the consistency proof between them, built from the log's tiles,
connects their signed roots (RFC 9162 §2.1.4). With ``--evidence``: fork
evidence written by ``saksi-verify`` is re-checked with the log's key alone
(``verifier.trusted_log.check_evidence``); no log is read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from verifier._encoding import b64encode
from verifier.commands._common import (
    EXIT_FAILED,
    EXIT_IO,
    EXIT_USAGE,
    Exit,
    Subparsers,
    add_common,
    io,
    log_key,
    open_log,
    origin,
    read,
    verify_note,
)
from verifier.cosignature import WitnessPolicy
from verifier.errors import MalformedInput, VerificationError
from verifier.observe import prove_consistent
from verifier.tile_client import FetchError, TileHashes
from verifier.trusted_log import Fork, check_evidence

__all__ = ["register", "run", "summary"]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Two signed checkpoints of one log: consistent, or fork evidence re-checked."""
    key = log_key(args)
    pinned = origin(args, key)
    if args.evidence is not None:
        try:
            evidence = json.loads(read(args.evidence, "--evidence"))
            proven, finding = check_evidence(
                evidence.get("evidence", evidence), key, pinned
            )
        except (ValueError, AttributeError) as e:
            raise Exit(EXIT_USAGE, f"--evidence: not fork evidence ({e})") from e
        except VerificationError as e:
            raise Exit(
                EXIT_USAGE,
                f"the evidence is not about this log: {e}",
                "check --key and --origin; evidence not signed by the log proves "
                "nothing against it",
            ) from e
        return {"verified": not proven, "fork_proven": proven, "finding": finding}
    if args.old is None or args.new is None or args.log is None:
        raise Exit(EXIT_USAGE, "pass --evidence FILE, or --old, --new and --log")
    # (1)
    old_note, new_note = read(args.old, "--old"), read(args.new, "--new")
    old, _ = verify_note(old_note, key, pinned, WitnessPolicy(), "--old")
    new, _ = verify_note(new_note, key, pinned, WitnessPolicy(), "--new")
    # (2)
    log, _, _ = open_log(args.log)
    if new.size < old.size:
        (old, old_note), (new, new_note) = (new, new_note), (old, old_note)
    try:
        hashes = TileHashes(log, new.size)
        proof = prove_consistent((old, old_note), (new, new_note), hashes)
    except Fork as e:
        raise Exit(
            EXIT_FAILED, str(e), "keep both checkpoints", {"evidence": e.evidence}
        ) from e
    except FetchError as e:
        raise io(e) from e
    except MalformedInput as e:
        raise Exit(EXIT_IO, f"the log has no tiles for size {new.size}: {e}") from e
    return {
        "verified": True,
        "old_size": old.size,
        "new_size": new.size,
        "consistency_proof": [b64encode(h) for h in proof],
    }


def summary(report: dict[str, Any]) -> str:
    """The human summary of ``run``'s report."""
    if "finding" in report:
        verdict = "FORK PROVEN" if report["fork_proven"] else "NOT PROVEN"
        return f"{verdict}: {report['finding']}"
    return (
        f"size {report['old_size']:,} is a prefix of size {report['new_size']:,} "
        f"({len(report['consistency_proof'])}-hash proof)\nVERIFIED"
    )


def register(sub: Subparsers) -> None:
    """Add the ``consistency`` command."""
    parser = sub.add_parser(
        "consistency", help="two checkpoints are one history; re-check fork evidence"
    )
    parser.add_argument("--log", help="the log (for --old/--new)")
    add_common(parser, log=False, witnesses=False)
    parser.add_argument("--old", type=Path, help="a signed checkpoint")
    parser.add_argument("--new", type=Path, help="a later signed checkpoint")
    parser.add_argument(
        "--evidence", type=Path, help="fork evidence written by saksi-verify"
    )
    parser.set_defaults(func=run, summary=summary)
