"""``saksi-verify audit``: read the whole log, recompute and replay it.

(1) The log (``--log``) or a bundle file (``--bundle``) is opened and its
checkpoint verified against the pinned key and origin; (2) the audit state of
an earlier run is opened (resumable; none for ``--to``), and a log smaller than
what was audited is a rollback; (3) every entry is checked and replayed
(``verifier.fullaudit``), on every core; (4) the entries must hash to the signed
root; (5) the report: numbered checks, then the findings, streamed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from verifier.bundle import bundle_fetch
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
    policy,
    progress,
    state,
    verify_note,
)
from verifier.errors import MalformedInput
from verifier.fullaudit import (
    NOT_FAILURES,
    SKEW,
    Auditor,
    AuditStore,
    TreeHasher,
    default_workers,
    run_audit,
)
from verifier.tile_client import READ_AHEAD, FetchError, TileLog

__all__ = ["bundle_source", "forensics_lines", "register", "run", "summary"]

SHOWN = 30  # findings printed in the human summary (--json lists all)
AUDIT_STEP = 100_000  # entries between the steps a long audit saves (resumable)


def bundle_source(path: Path) -> tuple[TileLog, bytes, str]:
    """A whole-log bundle file's tiles, its checkpoint, and how to name it."""
    try:
        fetch, _ = bundle_fetch(path)
        log = TileLog(fetch)
        return log, log.checkpoint(), f"bundle {path}"
    except FetchError as e:
        raise Exit(EXIT_IO, str(e), "pass a bundle written by saksi-verify") from e


def _source(args: argparse.Namespace) -> tuple[TileLog, bytes, str]:
    """The log to audit: over HTTP (--log) or from a bundle file (--bundle)."""
    if args.bundle is not None:
        return bundle_source(args.bundle)
    if args.log is None:
        raise Exit(EXIT_USAGE, "pass --log URL or --bundle FILE")
    return open_log(args.log)


def _bounded(
    bundles: Iterator[tuple[int, list[bytes]]], upto: int
) -> Iterator[tuple[int, list[bytes]]]:
    """The bundles trimmed to entries below ``upto``."""
    for first, entries in bundles:
        if first >= upto:
            return
        yield first, entries[: upto - first]


def _open(args: argparse.Namespace, path: Path | None) -> Auditor:
    """The auditor over the state at ``path`` (None: in memory)."""
    if path is not None:
        if args.fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
    skew = dt.timedelta(seconds=args.skew)
    try:
        return Auditor(AuditStore(path), skew)
    except sqlite3.DatabaseError as e:
        raise Exit(
            EXIT_IO,
            f"the audit state {path} is unreadable: {e}",
            "run again with --fresh to audit from the start",
        ) from e


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Read, recompute and replay the log; the audit report."""
    # (1)
    key = log_key(args)
    pinned = origin(args, key)
    log, note, source = _source(args)
    witnesses = policy(args)
    checkpoint, cosigned = verify_note(note, key, pinned, witnesses, "the checkpoint")
    size = checkpoint.size
    upto = size if args.to is None else min(args.to, size)
    if args.from_ < 0 or upto < args.from_:
        raise Exit(EXIT_USAGE, "--from must be 0..--to", "check the range")
    # (2) A partial audit (--to) keeps no state.
    kept = state(args, key)
    path: Path | None = None if args.to is not None else kept.path / "audit.db"
    auditor = _open(args, path)
    start = auditor.size
    if start > size:
        raise Exit(
            EXIT_FAILED,
            f"this observer audited {start:,} entries of {pinned}; the log now "
            f"shows {size:,}: it was rolled back",
            "keep the state directory and both checkpoints as evidence",
        )
    # (3)
    hasher = None  # past --to, entries are hashed but not replayed
    show = progress("entries", size)
    show(start)
    try:
        run_audit(
            _bounded(log.entries(start, size, READ_AHEAD), upto),
            auditor,
            args.workers,
            show,
            save_every=0 if path is None else AUDIT_STEP,
        )
        if upto < size:
            hasher = TreeHasher(auditor.hasher.frontier)
            for first, entries in log.entries(upto, size, READ_AHEAD):
                for entry in entries:
                    hasher.add(entry)
                show(first + len(entries))
    except FetchError as e:
        raise io(e) from e
    except MalformedInput as e:
        raise Exit(
            EXIT_FAILED,
            f"the log serves a malformed entry bundle: {e}",
            "keep it as evidence",
        ) from e
    # (4)
    root = (hasher or auditor.hasher).root()
    root_matches = root == checkpoint.root_hash
    if root_matches and path is not None:
        auditor.save()  # the next audit starts here
    # (5)
    report = auditor.summary(root_matches)
    report["forensics"] = auditor.forensics()
    report["timeline"] = auditor.timeline()
    report["keys"] = auditor.key_events()
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
            "witnesses": cosigned,
            "from": args.from_,
            "to": upto,
            "resumed_at": start,
            "state": None if path is None else str(path),
            "verified": report["passed"],
        }
    )
    return report


def summary(report: dict[str, Any]) -> str:
    """The human summary of ``run``'s report."""
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
    lines += forensics_lines(report.get("forensics"))
    lines.append(
        "VERIFIED: every check passed"
        if report["passed"]
        else "VERIFICATION FAILED: see the failing checks above"
    )
    if "hint" in report:
        lines.append(f"hint: {report['hint']}")
    return "\n".join(lines)


def forensics_lines(found: dict[str, Any] | None) -> list[str]:
    """The forensics in a few lines: what is flagged, for a person to look at."""
    if not found:
        return []
    flagged = found["flagged"]
    lines = [
        f"forensics: {len(flagged)} flagged (last digits, fingerprint), "
        f"{found['extreme_station_count']:,} stations at 100% turnout or with one "
        f"candidate at 100%, {found['decrease_count']:,} totals lowered with no "
        "correction (--json for every figure; flags are for a person to look "
        "at, not evidence of fraud)"
    ]
    for item in flagged[:SHOWN]:
        figure = (
            f"p = {item['p_value']:.2g}"
            if "p_value" in item
            else f"{item['corner_share']:.1%} of stations in the corner"
        )
        lines.append(f"  {item['statistic']} {item['region']}: {figure}")
    return lines


def register(sub: Subparsers) -> None:
    """Add the ``audit`` command."""
    parser = sub.add_parser("audit", help="read the whole log, recompute and replay it")
    parser.add_argument("--log", help="the log's tiles prefix or Saksi base URL")
    parser.add_argument("--bundle", type=Path, help="a bundle file instead of --log")
    add_common(parser, log=False)
    parser.add_argument(
        "--from",
        dest="from_",
        type=int,
        default=0,
        metavar="N",
        help="report findings from entry N on (default 0); every entry is still "
        "read and replayed",
    )
    parser.add_argument(
        "--to", type=int, metavar="N", help="stop replaying at N (no state is kept)"
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="start from entry 0, not where the last audit of this log stopped",
    )
    parser.add_argument(
        "--skew",
        type=float,
        default=SKEW.total_seconds(),
        metavar="SECONDS",
        help="how far issued_at may be ahead of logged_at (default 300)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="processes that check entries (default: one per core)",
    )
    parser.set_defaults(func=run, summary=summary)
