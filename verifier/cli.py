"""``saksi-verify``: the observer's command line (standard library and PyNaCl only).

``saksi-verify audit --log URL --key VKEY`` reads the whole log through the
C2SP tlog-tiles API (the signed checkpoint and the entry bundles), recomputes the
root, and replays every entry with ``verifier.audit``. Exit codes: 0 verified,
1 verification failed, 2 usage, 3 network or I/O.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from verifier.audit import NOT_FAILURES, Auditor, TreeHasher
from verifier.checkpoint import Checkpoint, verify_checkpoint
from verifier.errors import VerificationError
from verifier.note import VerifierKey
from verifier.tiles import TILE_WIDTH, entries_path, parse_entry_bundle

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_IO = 0, 1, 2, 3
USER_AGENT = "saksi-verify"
SHOWN = 30  # findings printed in the human summary (--json lists all)


class _Exit(Exception):
    def __init__(self, code: int, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


def _fetch(url: str, timeout: float = 30.0) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise _Exit(EXIT_USAGE, f"not an http(s) URL: {url[:80]}", "pass --log URL")
    request = urllib.request.Request(url, headers={"user-agent": USER_AGENT})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return bytes(response.read())
    except urllib.error.HTTPError as e:
        raise _Exit(
            EXIT_IO, f"{url}: HTTP {e.code}", "check --log and that the log is up"
        ) from e
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
        raise _Exit(EXIT_IO, f"cannot reach {url}: {e}", "check --log") from e


def _key(path: Path) -> VerifierKey:
    try:
        return VerifierKey.parse(path.read_text(encoding="utf-8").strip())
    except OSError as e:
        raise _Exit(
            EXIT_USAGE, f"cannot read {path}: {e.strerror}", "pass the log's key"
        ) from e
    except VerificationError as e:
        raise _Exit(
            EXIT_USAGE, f"{path}: not a verifier key: {e}", "pass the log's .vkey"
        ) from e


def _checkpoint(base: str, key: VerifierKey, origin: str) -> tuple[Checkpoint, bytes]:
    note = _fetch(f"{base}/checkpoint")
    try:
        checkpoint, _ = verify_checkpoint(note, key, origin)
    except VerificationError as e:
        raise _Exit(
            EXIT_FAILED,
            f"the checkpoint does not verify with the pinned key: {e}",
            "check --key; if it is right, the log is not what it claims",
        ) from e
    return checkpoint, note


def _entries(base: str, size: int) -> Iterator[tuple[int, int, list[bytes]]]:
    """(first index, expected count, entries) of each entry bundle below ``size``."""
    for tile in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        width = min(TILE_WIDTH, size - tile * TILE_WIDTH)
        data = _fetch(f"{base}/{entries_path(tile, width)}")
        try:
            yield tile * TILE_WIDTH, width, parse_entry_bundle(data, width)
        except VerificationError as e:
            raise _Exit(
                EXIT_FAILED,
                f"entry bundle {tile}: {e}",
                "the log serves a malformed tile: keep it as evidence",
            ) from e


def _progress(label: str, total: int) -> Callable[[int], None]:
    tty = sys.stderr.isatty()

    def show(done: int) -> None:
        if tty or done == total:
            share = done * 100 // max(total, 1)
            print(f"\r{label}: {done:,}/{total:,} ({share}%)", end="", file=sys.stderr)
            if done == total:
                print(file=sys.stderr)

    return show


def cmd_audit(args: argparse.Namespace) -> dict[str, Any]:
    """Read, recompute and replay the log; the audit report."""
    key = _key(args.key)
    base = args.log.rstrip("/") + "/log"
    checkpoint, note = _checkpoint(base, key, args.origin or key.name)
    size = checkpoint.size
    upto = size if args.to is None else min(args.to, size)
    if args.from_ < 0 or upto < args.from_:
        raise _Exit(EXIT_USAGE, "--from must be 0..--to", "check the range")
    hasher, auditor = TreeHasher(), Auditor()
    show = _progress("entries", size)
    show(0)
    for first, width, entries in _entries(base, size):
        if len(entries) != width:
            raise _Exit(EXIT_FAILED, f"entry bundle at {first}: {len(entries)} entries")
        for offset, entry in enumerate(entries):
            hasher.add(entry)
            if first + offset < upto:
                auditor.add(first + offset, entry)
        show(first + width)
    root_matches = hasher.root() == checkpoint.root_hash
    report = auditor.report(root_matches)
    if args.from_:
        report["findings"] = [f for f in report["findings"] if f["index"] >= args.from_]
        for item in report["checks"]:
            item["indices"] = [i for i in item["indices"] if i >= args.from_]
    report.update(
        {
            "log": args.log,
            "origin": checkpoint.origin,
            "checkpoint": note.decode(),
            "tree_size": size,
            "root": checkpoint.root_hash.hex(),
            "from": args.from_,
            "to": upto,
        }
    )
    return report


def _summary(report: dict[str, Any]) -> str:
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
    # What fails first; flags and notices after.
    ordered = sorted(
        report["findings"], key=lambda f: (f["check"] in NOT_FAILURES, f["index"])
    )
    for finding in ordered[:SHOWN]:
        lines.append(
            f"  entry {finding['index']}: {finding['check']}"
            + (f"/{finding['rule']}" if "rule" in finding else "")
            + f" {finding['subject'] or ''}: {finding['detail']}"
        )
    if len(report["findings"]) > SHOWN:
        lines.append(f"  … and {len(report['findings']) - SHOWN:,} more (--json)")
    lines.append(
        "VERIFIED: every check passed"
        if report["passed"]
        else "VERIFICATION FAILED: see the failing checks above"
    )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="saksi-verify",
        description="Check a Saksi log without trusting its operator.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    audit = sub.add_parser("audit", help="read the whole log, recompute and replay it")
    audit.add_argument("--log", required=True, help="the log's base URL")
    audit.add_argument(
        "--key", type=Path, required=True, help="the log's verifier key file (.vkey)"
    )
    audit.add_argument("--origin", help="the checkpoint origin (default: key name)")
    audit.add_argument("--from", dest="from_", type=int, default=0, metavar="N")
    audit.add_argument("--to", type=int, metavar="N", help="default: the tree size")
    audit.add_argument("--json", action="store_true", help="print the report as JSON")
    audit.set_defaults(func=cmd_audit, summary=_summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``saksi-verify``; the exit code."""
    args = _parser().parse_args(argv)
    try:
        report = args.func(args)
    except _Exit as e:
        if args.json:
            print(json.dumps({"error": e.message, "hint": e.hint}))
        print(f"saksi-verify: error: {e.message}", file=sys.stderr)
        if e.hint:
            print(f"saksi-verify: hint: {e.hint}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return EXIT_IO
    try:
        print(json.dumps(report, indent=1) if args.json else args.summary(report))
    except BrokenPipeError:  # e.g. piped into head
        sys.stderr.close()
    return EXIT_OK if report["passed"] else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
