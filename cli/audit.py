"""``saksi audit``: an audit sample nobody could choose (``plan``, then ``sample``).

``saksi audit plan`` signs and logs a sampling plan (``audit.plan/v1``)
with an auditor's key: the region and ballot, the unit (polling stations, or
the count forms logged), the strata, the size (``--size N``, or
``--risk-limit`` for the Aslam-Popa-Rivest detection size) and the seed: the
root of the log's tree once it is ``--seed-after`` entries longer than it is
now, which nobody knows when the plan is logged. ``saksi audit sample`` draws
the plan's sample from the log's database once the log has passed its seed,
through the verifier's own code (every entry before the seed audited and
proven against the signed checkpoint); ``saksi-verify sample --check FILE``
draws it again anywhere and compares.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from cli.args import (
    common_flags,
    load_signer,
    passphrase_of,
    region_arg,
    witness_policy,
)
from cli.connect import head_of, open_log, receipt_out, send, write_flags
from cli.run import EXIT_FAILED, EXIT_IO, EXIT_OK, EXIT_USAGE, CommandError, emit
from verifier.commands.sample import MAX_SAMPLE_FILE

__all__ = ["add_commands"]

SEED_AFTER = 64  # entries the log grows past the plan before its seed tree


def cmd_plan(args: argparse.Namespace) -> int:
    """Sign and log a sampling plan whose seed tree is still to come."""
    from audit.sample import check_plan, plan_body
    from verifier.errors import VerificationError
    from verifier.record import format_timestamp, record_payload

    region = region_arg(args.region, "--region") if args.region else ""
    subject = f"audits/{region or 'national'}/{args.name}"
    if args.seed_after < 1:
        raise CommandError(
            "--seed-after must be at least 1",
            "the seed is a tree the log has not reached: pass --seed-after 1 or more",
            EXIT_USAGE,
        )
    signer = load_signer(args.key, passphrase_of(args))
    with open_log(args, writes=True) as client:
        size = client.check_identity().size
        body = plan_body(
            purpose=args.purpose,
            ballot=args.ballot,
            unit=args.unit,
            strata=len(region) if args.strata is None else args.strata,
            seed_size=size + 1 + args.seed_after,
            size=args.size,
            risk_limit=None if args.size is not None else args.risk_limit,
            max_shift=None if args.size is not None else args.max_shift,
            min_per_stratum=args.min_per_stratum,
        )
        try:
            check_plan(subject, body)
            head = head_of(client, subject)
            payload = record_payload(
                schema="audit.plan/v1",
                subject=subject,
                revision=0 if head is None else head[0] + 1,
                prev=None if head is None else head[1],
                issued_at=format_timestamp(dt.datetime.now(dt.UTC)),
                body=body,
                reason=None if head is None else args.reason,
            )
        except VerificationError as e:
            raise CommandError(
                f"not a plan a sample can use: {e}",
                "see saksi audit plan --help",
                EXIT_USAGE,
            ) from e
        receipt = send(client, client.sign(payload, [signer]))
    if receipt.index >= body["seed_size"]:
        raise CommandError(
            f"the log grew past the plan's seed ({body['seed_size']:,} entries) "
            f"before the plan was logged (entry {receipt.index:,}): its seed was "
            "known, so no sample can be drawn from it",
            "log a new plan with a larger --seed-after",
            EXIT_FAILED,
        )
    if not args.json:
        print(
            f"saksi: the sample is seeded by the root of the first "
            f"{body['seed_size']:,} entries: draw it with 'saksi audit sample "
            f"--plan {receipt.index}' once the log has that many",
            file=sys.stderr,
        )
    return receipt_out(args, receipt, f"logged the sampling plan {subject}")


def cmd_sample(args: argparse.Namespace) -> int:
    """Draw a logged plan's sample from the database, through the verifier."""
    from audit.sample import sample_local
    from cli.local import open_reader
    from verifier.errors import VerificationError
    from verifier.fullaudit.run import default_workers
    from verifier.sample_check import SeedNotYet
    from verifier.tile_client import FetchError

    policy = witness_policy(args)
    if args.out is not None and not args.out.parent.is_dir():
        raise CommandError(f"no directory {args.out.parent} for --out", "create it")
    log = open_reader(args.dir, args.db)
    shown = {"at": 0}

    def progress(done: int, total: int) -> None:
        if not args.json and (done - shown["at"] >= 65536 or done == total):
            shown["at"] = done
            print(f"  audited {done:,}/{total:,} entries", file=sys.stderr, flush=True)

    try:
        sample = sample_local(
            log,
            args.plan,
            policy=policy,
            workers=default_workers() if args.workers is None else args.workers,
            progress=progress,
        )
    except SeedNotYet as e:
        raise CommandError(
            str(e), "run again once the log has grown", EXIT_FAILED
        ) from e
    except VerificationError as e:
        raise CommandError(
            f"no sample: {e}", "see saksi-verify sample", EXIT_FAILED
        ) from e
    except FetchError as e:
        raise CommandError(
            f"cannot read the log: {e}",
            "check --dir and --db, and that the database is reachable",
            EXIT_IO,
        ) from e
    finally:
        log.close()
    text = json.dumps(sample, indent=1, sort_keys=True) + "\n"
    if args.out is not None:
        try:
            args.out.write_text(text)
        except OSError as e:
            raise CommandError(
                f"cannot write {args.out}: {e}",
                "pass an --out in a directory you can write",
                EXIT_IO,
            ) from e
    size = sample["size"]
    emit(
        args,
        {
            "ok": True,
            "out": None if args.out is None else str(args.out),
            "plan": sample["plan"]["index"],
            "seed_size": sample["seed"]["tree_size"],
            "seed": sample["seed"]["seed"],
            "population": sample["population"]["units"],
            "drawn": size["drawn"],
            "units": [u["unit"] for u in sample["units"]],
        },
        f"saksi: drew {size['drawn']:,} of {sample['population']['units']:,} units "
        f"for plan {sample['plan']['subject']} (entry {sample['plan']['index']}), "
        f"seeded by the root of the first {sample['seed']['tree_size']:,} entries"
        + (f"; wrote {args.out}" if args.out else "")
        + "\n"
        + "\n".join(f"  {u['unit']}" for u in sample["units"]),
    )
    return EXIT_OK


def _audit_report(args: argparse.Namespace) -> dict[str, Any]:
    """The audit to report on: a saved ``saksi-verify audit --json``, or run now."""
    import heapq

    from verifier.commands import build_parser as verifier_parser
    from verifier.commands._common import Exit
    from verifier.commands.audit import run as run_audit

    if args.audit is not None:
        try:
            audit = json.loads(_bounded(args.audit, MAX_AUDIT_FILE))
        except OSError as e:
            raise CommandError(
                f"cannot read {args.audit}: {e}",
                "check the --audit path",
                EXIT_IO,
            ) from e
        except ValueError as e:
            raise CommandError(
                f"{args.audit} is not the JSON of saksi-verify audit: {e}",
                "make it with saksi-verify audit --json > FILE",
                EXIT_USAGE,
            ) from e
        needed = {"checks", "origin", "tree_size", "root", "passed"}
        if not isinstance(audit, dict) or not needed <= set(audit):
            raise CommandError(
                f"{args.audit} is not the JSON of saksi-verify audit",
                "make it with saksi-verify audit --json > FILE",
                EXIT_USAGE,
            )
        return audit
    if args.key is None:
        raise CommandError("--log and --bundle need --key", "pass the log's key", 2)
    argv = ["audit", "--key", args.key, "--json"]
    argv += ["--log", args.log] if args.log else ["--bundle", str(args.bundle)]
    for witness in args.witness or ():
        argv += ["--witness", witness]
    if args.min_witnesses is not None:
        argv += ["--min-witnesses", str(args.min_witnesses)]
    if args.workers is not None:
        argv += ["--workers", str(args.workers)]
    if args.state is not None:
        argv += ["--state", str(args.state)]
    try:
        audit = run_audit(verifier_parser().parse_args(argv))
        # Failures first, then notices; the JSON report of the audit lists all.
        audit["findings"] = heapq.nsmallest(
            1000,
            audit["findings"],
            key=lambda f: (f["check"] in ("arithmetic", "stale-recaps"), f["index"]),
        )
    except Exit as e:
        raise CommandError(e.message, e.hint or "", e.code) from e
    return audit


# A national audit's JSON is about 260 MB (BENCHMARKS.md, "audit-report"), and
# reading it takes about ten times that in memory: a larger file is refused
# before it is read, as is a sample file beyond the verifier's own bound.
MAX_AUDIT_FILE = 1 << 30


def _bounded(path: Path, limit: int) -> bytes:
    """The bytes of ``path``, at most ``limit`` of them.

    Raises:
        OSError: it cannot be read.
        ValueError: it is larger than ``limit`` (the message says so).
    """
    with path.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"larger than {limit:,} bytes, more than any can be")
    return data


def cmd_report(args: argparse.Namespace) -> int:
    """Write the audit report's HTML (and PDF) for a log, a bundle or an audit."""
    from audit.fitness import controls
    from audit.pdf import PdfError, print_pdf
    from audit.report import render

    sources = [x for x in (args.audit, args.log, args.bundle) if x is not None]
    if len(sources) != 1:
        raise CommandError(
            "name one audit to report on",
            "pass --audit FILE (saksi-verify audit --json), --log URL or --bundle FILE",
            EXIT_USAGE,
        )
    samples = []
    for path in args.sample or ():
        try:
            sample = json.loads(_bounded(path, MAX_SAMPLE_FILE))
        except OSError as e:
            raise CommandError(
                f"cannot read {path}: {e}", "check the --sample path", EXIT_IO
            ) from e
        except ValueError as e:
            raise CommandError(
                f"{path} is not a sample file: {e}",
                "draw one with saksi-verify sample --out FILE",
                EXIT_USAGE,
            ) from e
        parts = {"format", "plan", "seed", "population", "size", "strata", "units"}
        if (
            not isinstance(sample, dict)
            or not parts <= set(sample)
            or sample["format"] != "saksi-audit-sample/v1"
        ):
            raise CommandError(
                f"{path} is not a sample file (saksi-audit-sample/v1)",
                "draw one with saksi-verify sample --out FILE",
                EXIT_USAGE,
            )
        samples.append(sample)
    security = args.security or Path(__file__).resolve().parent.parent / "SECURITY.md"
    try:
        checklist = controls(security) if security.exists() else []
    except OSError as e:
        raise CommandError(
            f"cannot read {security}: {e}",
            "check the --security path (the project's SECURITY.md)",
            EXIT_IO,
        ) from e
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CommandError(
            f"cannot make {args.out}: {e}",
            "pass an --out directory you can create",
            EXIT_IO,
        ) from e
    audit = _audit_report(args)
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    html = render(
        audit,
        samples=samples,
        checklist=checklist,
        title=args.title,
        generated=generated,
    )
    paths = {"html": args.out / "report.html", "json": args.out / "audit.json"}
    try:
        paths["json"].write_text(json.dumps(audit, indent=1, sort_keys=True) + "\n")
        paths["html"].write_text(html, encoding="utf-8")
        if not args.no_pdf:
            paths["pdf"] = args.out / "report.pdf"
            print_pdf(paths["html"], paths["pdf"])
    except OSError as e:
        raise CommandError(
            f"cannot write in {args.out}: {e}",
            "pass an --out directory you can write, with room",
            EXIT_IO,
        ) from e
    except PdfError as e:
        raise CommandError(
            str(e), "or pass --no-pdf for the HTML alone", EXIT_IO
        ) from e
    passed = bool(audit.get("passed"))
    emit(
        args,
        {"ok": True, "verified": passed, **{k: str(v) for k, v in paths.items()}},
        f"saksi: wrote {', '.join(str(p) for p in paths.values())}: "
        + (
            "the audit VERIFIED the log"
            if passed
            else "the audit FAILED: see the report"
        ),
    )
    return EXIT_OK if passed else EXIT_FAILED


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``saksi audit`` and its ``plan``, ``sample`` and ``report`` commands."""
    audit = sub.add_parser("audit", help="audit samples (and reports) for auditors")
    commands = audit.add_subparsers(dest="audit_command", required=True, metavar="WHAT")
    plan = commands.add_parser(
        "plan",
        help="log a sampling plan, seeded by a tree the log has not reached",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    write_flags(plan)
    plan.add_argument("--key", type=Path, required=True, help="an auditor's key file")
    plan.add_argument(
        "--name", required=True, help="the plan's name (a-z, 0-9, -), e.g. recount-1"
    )
    plan.add_argument("--region", help="the region sampled (default: national)")
    plan.add_argument("--ballot", default="ppwp", help="ballot code (default ppwp)")
    plan.add_argument(
        "--unit",
        choices=("station", "form"),
        default="station",
        help="draw polling stations of the registry, or logged count forms",
    )
    plan.add_argument(
        "--strata",
        type=int,
        metavar="DIGITS",
        help="stratify by region code prefix: 2, 4, 6 or 10 (default: none)",
    )
    plan.add_argument("--size", type=int, help="a fixed sample size")
    plan.add_argument(
        "--risk-limit",
        default="0.05",
        help="without --size: the chance to miss an outcome-changing alteration "
        "(default 0.05)",
    )
    plan.add_argument(
        "--max-shift",
        default="0.2",
        help="without --size: the largest share of a station's votes an alteration "
        "could move unnoticed (default 0.2)",
    )
    plan.add_argument(
        "--min-per-stratum", type=int, default=0, help="at least this many per stratum"
    )
    plan.add_argument(
        "--purpose", default="manual recount", help="what the sample is for"
    )
    plan.add_argument(
        "--reason", default="plan revised", help="why, when the plan has a revision"
    )
    plan.add_argument(
        "--seed-after",
        type=int,
        default=SEED_AFTER,
        metavar="K",
        help=f"the seed is the tree K entries past the plan (default {SEED_AFTER})",
    )
    common_flags(plan)
    plan.set_defaults(func=cmd_plan)

    sample = commands.add_parser(
        "sample",
        help="draw a logged plan's sample (the same as saksi-verify sample)",
    )
    sample.add_argument("--dir", type=Path, required=True, help="the log's directory")
    sample.add_argument("--db", help="SQLAlchemy URL (default: sqlite:///DIR/saksi.db)")
    sample.add_argument(
        "--plan", type=int, required=True, metavar="INDEX", help="the plan's entry"
    )
    sample.add_argument("--out", type=Path, help="write the sample file here")
    sample.add_argument(
        "--witness",
        action="append",
        metavar="VKEY",
        help="a witness's cosigner key (or file) the seed's checkpoint needs; repeat",
    )
    sample.add_argument(
        "--min-witnesses",
        type=int,
        metavar="K",
        help="cosignatures needed (default: every --witness)",
    )
    sample.add_argument(
        "--workers", type=int, metavar="N", help="processes (default: one per core)"
    )
    sample.add_argument("--json", action="store_true", help="print JSON")
    sample.set_defaults(func=cmd_sample)

    report = commands.add_parser(
        "report",
        help="the audit report (HTML and PDF) of a log, a bundle or a saved audit",
    )
    report.add_argument(
        "--audit", type=Path, metavar="FILE", help="saksi-verify audit --json output"
    )
    report.add_argument("--log", help="audit this log now (its base URL)")
    report.add_argument("--bundle", type=Path, help="audit this whole-log bundle now")
    report.add_argument("--key", help="the log's verifier key (with --log, --bundle)")
    report.add_argument(
        "--witness", action="append", metavar="VKEY", help="a witness key; repeat"
    )
    report.add_argument(
        "--min-witnesses",
        type=int,
        metavar="K",
        help="cosignatures needed (default: every --witness)",
    )
    report.add_argument(
        "--state",
        type=Path,
        help="the observer state saksi-verify audit keeps (an audit resumes there)",
    )
    report.add_argument(
        "--sample", action="append", type=Path, metavar="FILE",
        help="a sample file (saksi-verify sample --out) to include; repeat",
    )  # fmt: skip
    report.add_argument(
        "--security", type=Path, help="the SECURITY.md of the checklist"
    )
    report.add_argument(
        "--title", default="Saksi audit report", help="the report's title"
    )
    report.add_argument("--out", type=Path, required=True, help="the directory")
    report.add_argument("--no-pdf", action="store_true", help="the HTML alone")
    report.add_argument(
        "--workers", type=int, metavar="N", help="processes (default: one per core)"
    )
    report.add_argument("--json", action="store_true", help="print JSON")
    report.set_defaults(func=cmd_report)
