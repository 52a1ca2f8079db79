"""``saksi submit``: sign a record file, submit it, verify the receipt.

The record goes to the log named by ``--url`` or ``--db`` (``cli.connect``),
after its identity is checked against the pinned log key. The receipt is
printed as JSON, always: it is what a script keeps.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from cli.args import common_flags, load_signer, passphrase_of
from cli.connect import head_of, open_log, receipt_out, send, write_flags
from cli.run import EXIT_IO, EXIT_USAGE, CommandError
from verifier.errors import VerificationError
from verifier.record import format_timestamp, record_payload

__all__ = ["add_command"]

_RECORD_FIELDS = {
    "schema",
    "subject",
    "revision",
    "prev",
    "issued_at",
    "body",
    "reason",
    "evidence",
}


def _record_spec(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise CommandError(
            f"cannot read record {path}: {e.strerror}",
            "check the path of RECORD.json",
            EXIT_IO,
        ) from e
    try:
        spec = json.loads(text)
        if not isinstance(spec, dict):
            raise TypeError("not a JSON object")
        missing = {"schema", "subject", "body"} - set(spec)
        unknown = set(spec) - _RECORD_FIELDS
        if missing or unknown:
            raise KeyError(
                f"missing {sorted(missing)}"
                if missing
                else f"unknown {sorted(unknown)}"
            )
    except (ValueError, KeyError, TypeError) as e:
        raise CommandError(
            f"cannot read record {path}: {e}",
            'write {"schema": ..., "subject": ..., "body": {...}} '
            "(revision, prev, issued_at, reason and evidence are optional)",
            EXIT_USAGE,
        ) from e
    return spec


def cmd_submit(args: argparse.Namespace) -> int:
    """Sign a record file and submit it; verify the receipt."""
    path = args.record_file or args.record
    if path is None:
        raise CommandError(
            "no record file",
            "saksi submit --url URL --key FILE RECORD.json",
            EXIT_USAGE,
        )
    spec = _record_spec(Path(path))
    signer = load_signer(args.key, passphrase_of(args))
    with open_log(args, writes=True) as client:
        if "revision" in spec:
            revision, prev = spec["revision"], spec.get("prev")
        else:
            head = head_of(client, spec["subject"])
            revision, prev = (0, None) if head is None else (head[0] + 1, head[1])
        try:
            payload = record_payload(
                schema=spec["schema"],
                subject=spec["subject"],
                revision=revision,
                prev=prev,
                issued_at=spec.get("issued_at")
                or format_timestamp(dt.datetime.now(dt.UTC)),
                body=spec["body"],
                reason=spec.get("reason"),
                evidence=tuple(spec.get("evidence", ())),
            )
        except (VerificationError, TypeError, ValueError) as e:
            raise CommandError(
                f"not a valid record: {e}", "fix the record file", EXIT_USAGE
            ) from e
        receipt = send(client, client.sign(payload, [signer]))
    args.json = True  # the receipt is what a script keeps: always JSON
    return receipt_out(args, receipt, f"submitted {spec['subject']}")


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``submit`` on the ``saksi`` subparsers."""
    submit = sub.add_parser("submit", help="sign a record file, submit it, verify")
    write_flags(submit)
    submit.add_argument("--key", type=Path, required=True, help="the signer's key file")
    submit.add_argument(
        "record_file",
        nargs="?",
        type=Path,
        metavar="RECORD.json",
        help="the record's fields (schema, subject, body; optional revision, prev, "
        "issued_at, reason, evidence), unsigned",
    )
    submit.add_argument(
        "--record", type=Path, help="the record file (the older form of RECORD.json)"
    )
    common_flags(submit)
    submit.set_defaults(func=cmd_submit)
