"""``saksi``: the operator's command, one subcommand per task.

Each subcommand's code lives in its own package's ``cli.py`` (``ledger.cli`` for
init, check and demo); this module only wires them together.
"""

from __future__ import annotations

import argparse
import logging

from ledger.cli import add_commands, run_command

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    """The full ``saksi`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="saksi", description="Saksi: a signed, append-only election ledger"
    )
    parser.add_argument("--version", action="version", version="saksi 0.1.0")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more diagnostics on stderr"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, run, return the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    return run_command(args)
