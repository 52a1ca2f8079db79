"""``saksi-verify witness-key``: make a witness's private key file.

The file is created with mode 0600 and never overwritten; the cosigner key
(``verifier.witness_protocol.WitnessKey.verifier_key``) is printed for observers to pin.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from verifier.commands._common import EXIT_IO, EXIT_USAGE, Exit, Subparsers
from verifier.errors import MalformedInput
from verifier.witness_protocol import WitnessKey

__all__ = ["register", "run", "summary"]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Make a witness key file; print the cosigner key to publish."""
    try:
        key = WitnessKey.generate(args.name)
    except MalformedInput as e:
        raise Exit(EXIT_USAGE, f"--name: {e}") from e
    try:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise Exit(EXIT_USAGE, f"{args.out} exists: not overwritten") from e
    except OSError as e:
        raise Exit(EXIT_IO, f"cannot write {args.out}: {e.strerror}") from e
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(key.to_text())
    vkey = str(key.verifier_key)
    return {"witness": key.name, "vkey": vkey, "key_file": str(args.out)}


def summary(report: dict[str, Any]) -> str:
    """The human summary of ``run``'s report."""
    return f"{report['key_file']} written; publish the cosigner key:\n{report['vkey']}"


def register(sub: Subparsers) -> None:
    """Add the ``witness-key`` command."""
    parser = sub.add_parser("witness-key", help="make a witness key file")
    parser.add_argument("--name", required=True, help="e.g. witness.example.org")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="the key file to write (mode 0600; an existing file is not overwritten)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run, summary=summary)
