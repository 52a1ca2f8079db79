"""``saksi export bundle``: a selection of the log as a self-contained proof bundle.

The selection (``--region``, ``--subject``, ``--schema``, ``--signer``,
``--since``/``--until``, ``--from``/``--to``, combined: every one given must
match) goes to one compressed file with an inclusion proof for each entry
against one checkpoint (``--checkpoint FILE``, e.g. the witnessed one the
service serves at ``/log/checkpoint``; default the log's latest), consistency
proofs to ``--pin`` checkpoints, and the registry records the entries depend
on (``audit.export``). The file is checked with the verifier's own code before
the command says it is done; ``saksi-verify check-bundle`` checks it anywhere,
offline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.args import region_arg, witness_policy
from cli.run import EXIT_FAILED, EXIT_IO, EXIT_OK, EXIT_USAGE, CommandError, emit

__all__ = ["add_commands"]


def _read(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(64 * 1024 + 1)
    except OSError as e:
        raise CommandError(
            f"cannot read {what} {path}: {e.strerror}", "check the path"
        ) from e
    if len(data) > 64 * 1024:
        raise CommandError(
            f"{what} {path} is not a checkpoint (too large)",
            "pass a checkpoint note, as GET /log/checkpoint answers it",
            EXIT_USAGE,
        )
    return data


def cmd_export_bundle(args: argparse.Namespace) -> int:
    """Write, check and report the bundle (see the module docstring)."""
    from audit.export import ExportError, export_bundle
    from cli.local import open_reader
    from verifier.errors import MalformedInput
    from verifier.fullaudit.run import default_workers
    from verifier.proof_bundle import Selection

    try:
        selection = Selection(
            region=None
            if args.region is None
            else region_arg(args.region, "--region") or None,
            subjects=tuple(args.subject or ()),
            schemas=tuple(args.schema or ()),
            signer=args.signer,
            since=args.since,
            until=args.until,
            start=getattr(args, "from"),
            end=args.to,
        )
    except MalformedInput as e:
        raise CommandError(
            str(e).removeprefix("bundle: "),
            "see saksi export bundle --help",
            EXIT_USAGE,
        ) from e
    policy = witness_policy(args)
    if selection == Selection():
        raise CommandError(
            "no selection given",
            "name one: --region, --subject, --schema, --signer, --since/--until, "
            "--from/--to (saksi-verify bundle exports the whole log)",
            EXIT_USAGE,
        )
    checkpoint = (
        None if args.checkpoint is None else _read(args.checkpoint, "--checkpoint")
    )
    pins = [_read(path, "--pin") for path in args.pin or ()]
    if not args.out.parent.is_dir():
        raise CommandError(
            f"no directory {args.out.parent} for --out", "create it first"
        )
    log = open_reader(args.dir, args.db)
    try:

        def progress(selected: int, context: int) -> None:
            if not args.json:
                print(
                    f"  {selected:,} selected, {context:,} registry records written",
                    file=sys.stderr,
                    flush=True,
                )

        try:
            result = export_bundle(
                log,
                selection,
                args.out,
                checkpoint=checkpoint,
                pins=pins,
                policy=policy,
                progress=progress,
                workers=default_workers(),
            )
        except ExportError as e:
            raise CommandError(
                str(e),
                "pass a checkpoint of this log (its /log/checkpoint), or run "
                "'saksi check' on it",
                EXIT_FAILED,
            ) from e
        except OSError as e:
            raise CommandError(
                f"cannot write {args.out}: {e}", "check the path", EXIT_IO
            ) from e
    finally:
        log.close()
    report = result.report
    emit(
        args,
        {
            "ok": True,
            "bundle": str(result.path),
            "bytes": result.bytes,
            "tree_size": result.tree_size,
            "entries": result.entries,
            "selected": result.selected,
            "context": result.context,
            "cosigned_by": report["cosigned_by"],
            "verified": report["passed"],
        },
        f"saksi: wrote {result.path} ({result.bytes:,} bytes): {result.selected:,} "
        f"selected entries and {result.context:,} registry records, proven in the "
        f"checkpoint of size {result.tree_size:,}; checked with the verifier: "
        "VERIFIED",
    )
    return EXIT_OK


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``saksi export`` and its ``bundle`` command."""
    export = sub.add_parser("export", help="evidence for auditors")
    commands = export.add_subparsers(
        dest="export_command", required=True, metavar="WHAT"
    )
    bundle = commands.add_parser(
        "bundle",
        help="a selection of the log, with its proofs, in one file (checked offline "
        "by saksi-verify check-bundle)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bundle.add_argument("--dir", type=Path, required=True, help="the log's directory")
    bundle.add_argument("--db", help="SQLAlchemy URL (default: sqlite:///DIR/saksi.db)")
    bundle.add_argument(
        "--out", type=Path, required=True, help="the bundle file to write"
    )
    bundle.add_argument(
        "--region", help="a region code: its records and everything below it"
    )
    bundle.add_argument("--subject", action="append", help="a subject; repeat")
    bundle.add_argument("--schema", action="append", help="a record schema; repeat")
    bundle.add_argument("--signer", metavar="KEYID", help="records signed by this key")
    bundle.add_argument("--since", metavar="TIME", help="logged at or after (RFC 3339)")
    bundle.add_argument("--until", metavar="TIME", help="logged before (RFC 3339)")
    bundle.add_argument("--from", type=int, metavar="INDEX", help="first entry index")
    bundle.add_argument(
        "--to", type=int, metavar="INDEX", help="entries before this index"
    )
    bundle.add_argument(
        "--checkpoint",
        type=Path,
        help="the signed checkpoint to prove against (default: the log's latest; "
        "the service's /log/checkpoint carries the witnesses' cosignatures)",
    )
    bundle.add_argument(
        "--pin",
        action="append",
        type=Path,
        metavar="CHECKPOINT",
        help="an earlier checkpoint to prove consistency with; repeat",
    )
    bundle.add_argument(
        "--witness",
        action="append",
        metavar="VKEY",
        help="a witness's cosigner key (or file) the check asks for; repeat",
    )
    bundle.add_argument(
        "--min-witnesses",
        type=int,
        metavar="K",
        help="cosignatures the check asks for (default: every --witness)",
    )
    bundle.add_argument("--json", action="store_true", help="print JSON")
    bundle.set_defaults(func=cmd_export_bundle)
