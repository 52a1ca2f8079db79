"""``saksi``: the operator's command, one subcommand per task.

Each command group has its own module in this package (``cli.log`` for init
and check, ``cli.serve``, ``cli.keys``, ``cli.grants`` and ``cli.provision``
for keys, ``cli.submit``, ``cli.demo``, ``cli.election`` for regions and
results, ``cli.monitor`` for the security monitor, ``cli.export`` and
``cli.audit`` for auditors' evidence and samples, ``cli.backup`` for backup and
restore, ``cli.publish`` for the static tiles); this module only wires them
together, in the order ``--help`` lists them.
"""

from __future__ import annotations

import argparse
import logging

from cli import (
    audit,
    backup,
    demo,
    election,
    export,
    grants,
    keys,
    log,
    monitor,
    provision,
    publish,
    serve,
    submit,
)
from cli.run import run_command

__all__ = ["build_parser", "main"]


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
    log.add_commands(sub)
    serve.add_command(sub)
    keys_sub = keys.add_commands(sub)
    grants.add_commands(keys_sub)
    provision.add_command(keys_sub)
    submit.add_command(sub)
    demo.add_command(sub)
    election.add_commands(sub)
    monitor.add_command(sub)
    export.add_commands(sub)
    audit.add_commands(sub)
    backup.add_commands(sub)
    publish.add_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, run, return the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    return run_command(args)
