"""``saksi-verify``: the observer's command line (standard library and PyNaCl only).

Commands, one module each: ``checkpoint`` (verify the log's checkpoint and that
it extends the one this observer trusted), ``inclusion`` (an entry, a receipt),
``consistency`` (two checkpoints, or re-check fork evidence), ``audit`` (read and
replay the whole log), ``bundle`` (the log in one file, for offline audits),
``check-bundle`` (a selective proof bundle from ``saksi export bundle``, offline),
``sample`` (recompute an audit sample from its logged plan, or check one),
``proof`` (a C2SP tlog-proof file), ``compare`` (checkpoints from several
sources), ``witness`` and ``witness-key`` (cosign as a C2SP tlog-witness).

Exit codes: 0 verified, 1 verification failed (the log misbehaved, or what was
checked is not what it claims), 2 usage, 3 network or I/O. Every command prints
JSON with ``--json``; long ones show progress on standard error.

``--log`` is the log's tlog-tiles prefix (where ``checkpoint`` is); for a Saksi
service its base URL works too (its tiles are under ``/log``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from verifier import __version__
from verifier.commands import (
    audit,
    bundle,
    check_bundle,
    checkpoint,
    compare,
    consistency,
    inclusion,
    proof,
    sample,
    witness,
    witness_key,
)
from verifier.commands._common import EXIT_FAILED, EXIT_IO, EXIT_OK, Exit

__all__ = ["build_parser", "main"]

# In the order ``--help`` lists them.
COMMANDS = (
    checkpoint,
    inclusion,
    consistency,
    audit,
    bundle,
    check_bundle,
    sample,
    proof,
    compare,
    witness,
    witness_key,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``saksi-verify`` parser, every command's flags."""
    parser = argparse.ArgumentParser(
        prog="saksi-verify",
        description="Check a transparency log without trusting its operator.",
    )
    parser.add_argument(
        "--version", action="version", version=f"saksi-verify {__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
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
    args = build_parser().parse_args(argv)
    try:
        report = args.func(args)
    except Exit as e:
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
