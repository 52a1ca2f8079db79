"""``saksi-verify check-bundle``: a selective proof bundle, fully offline.

Checks everything ``verifier.bundle_check`` lists: the checkpoint and its
cosignatures, consistency with the checkpoints pinned in the bundle and with
yours (``--pin``), every inclusion proof, every signature and authorization as
of each entry's position, chains and recap sums within the selection, and that
each entry is what the bundle says it is. It reads no network. It says what a
selection proves and what it cannot: that nothing matching was left out is
shown only by a full audit (``saksi-verify audit``).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

from verifier.bundle_check import check_bundle
from verifier.commands._common import (
    EXIT_FAILED,
    EXIT_IO,
    Exit,
    Subparsers,
    add_common,
    log_key,
    origin,
    policy,
    read,
)
from verifier.commands.audit import forensics_lines
from verifier.errors import MalformedInput, VerificationError
from verifier.fullaudit.run import default_workers

__all__ = ["register", "run", "summary"]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Check the bundle ``args.file`` offline."""
    key = log_key(args)
    pinned_origin = origin(args, key)
    witnesses = policy(args)
    pins = [read(path, "--pin") for path in args.pin or ()]
    shown = {"at": 0}

    def progress(done: int) -> None:
        if not args.json and sys.stderr.isatty() and done - shown["at"] >= 65536:
            shown["at"] = done
            print(f"  checked up to entry {done:,}", file=sys.stderr, flush=True)

    try:
        with (
            args.file.open("rb") as raw,
            tempfile.TemporaryDirectory(prefix="saksi-check-bundle-") as work,
        ):
            report = check_bundle(
                raw,
                key,
                pinned_origin,
                witnesses,
                pins,
                store=Path(work) / "audit.sqlite",
                progress=progress,
                workers=default_workers() if args.workers is None else args.workers,
            )
    except MalformedInput as e:
        raise Exit(
            EXIT_FAILED,
            f"{args.file}: not a valid proof bundle: {e}",
            "ask for the bundle again; a whole one ends with its trailer",
        ) from e
    except VerificationError as e:
        raise Exit(EXIT_FAILED, f"{args.file}: refused: {e}") from e
    except (OSError, sqlite3.Error) as e:
        raise Exit(EXIT_IO, f"cannot read {args.file}: {e}") from e
    report["bundle"] = str(args.file)
    return report


def summary(report: dict[str, Any]) -> str:
    """The human summary of ``run``'s report."""
    lines = [
        f"bundle {report['bundle']}: {report['selected']:,} selected entries and "
        f"{report['context']:,} registry records of {report['origin']}, each proven "
        f"in the checkpoint of size {report['tree_size']:,}"
        + (
            "; cosigned by " + ", ".join(sorted(report["cosigned_by"]))
            if report["cosigned_by"]
            else ""
        ),
    ]
    if report["pinned"]:
        sizes = ", ".join(f"{s:,}" for s in report["pinned"])
        lines.append(f"consistent with the pinned checkpoints of size {sizes}")
    for check in report["checks"]:
        if check["status"] == "skipped":
            continue
        lines.append(
            f"  {check['number']:>2}. {check['check']}: {check['status']} "
            f"({check['checked']:,} checked, {check['findings']:,} findings)"
        )
    for name, count in sorted(report["not_checkable"].items()):
        lines.append(
            f"  not checkable from this selection: {name} of {count:,} entries "
            "(what they rest on is not in the bundle)"
        )
    if report["outside_selection_count"]:
        lines.append(
            f"  {report['outside_selection_count']:,} entries are not what the "
            f"bundle says they are (first: {report['outside_selection'][:5]})"
        )
    for finding in report["findings"][:20]:
        lines.append(
            f"  entry {finding['index']}: {finding['check']}: {finding['detail']}"
        )
    lines += forensics_lines(report.get("forensics"))
    if report["passed"]:
        lines.append(f"proves: {report['proves']}")
    lines.append(f"does not prove: {report['does_not_prove']}")
    lines.append("VERIFIED" if report["passed"] else "FAILED")
    return "\n".join(lines)


def register(sub: Subparsers) -> None:
    """Add the ``check-bundle`` command."""
    parser = sub.add_parser(
        "check-bundle",
        help="verify a selective proof bundle (saksi export bundle) offline",
    )
    parser.add_argument("file", type=Path, help="the bundle (.saksi-bundle)")
    add_common(parser, log=False)
    parser.add_argument(
        "--pin",
        action="append",
        type=Path,
        metavar="CHECKPOINT",
        help="a checkpoint you trust (a file): the bundle's must extend it; repeat",
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes that examine entries (default: one per core)",
    )
    parser.set_defaults(func=run, summary=summary)
