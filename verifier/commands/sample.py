"""``saksi-verify sample``: recompute an audit sample from the log, and check one.

The plan (``--plan INDEX``, an ``audit.plan/v1`` record) fixed its
population, strata and size method before its seed existed; its seed is the
root of the log's tree of ``seed_size`` entries. This command reads the log
(``--log``, or a whole-log ``--bundle``), verifies its checkpoint (and the
witnesses' cosignatures with ``--witness``), audits every entry before the
seed size, proves their root is a tree the checkpoint extends, and draws the
sample (``verifier.sample``). With ``--check FILE`` it compares a sample file
(e.g. the operator's ``saksi audit sample``) with the one it drew: exit 1 when
they differ. A plan logged at or after its seed is refused.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

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
)
from verifier.commands.audit import bundle_source
from verifier.errors import VerificationError
from verifier.fullaudit.run import default_workers
from verifier.sample import compare_samples
from verifier.sample_check import SeedNotYet, recompute_sample
from verifier.tile_client import FetchError

__all__ = ["MAX_SAMPLE_FILE", "register", "run", "summary"]

MAX_SAMPLE_FILE = 256 * 1024 * 1024  # a national sample of every station fits
SHOWN = 20  # units listed in the human summary (--json and --out list all)


def _claimed(path: Path) -> Any:  # noqa: ANN401
    try:
        with path.open("rb") as f:
            data = f.read(MAX_SAMPLE_FILE + 1)
    except OSError as e:
        raise Exit(EXIT_IO, f"cannot read {path}: {e.strerror}", "check it") from e
    if len(data) > MAX_SAMPLE_FILE:
        raise Exit(EXIT_FAILED, f"{path} is larger than any sample file can be")
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError) as e:
        raise Exit(EXIT_FAILED, f"{path} is not a sample file (not JSON): {e}") from e


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Draw the plan's sample from the log; compare it with ``--check``."""
    key = log_key(args)
    pinned = origin(args, key)
    witnesses = policy(args)
    claimed = None if args.check is None else _claimed(args.check)
    if args.bundle is not None:
        log, note, source = bundle_source(args.bundle)
    elif args.log is not None:
        log, note, source = open_log(args.log)
    else:
        raise Exit(EXIT_USAGE, "pass --log URL or --bundle FILE")
    shown: dict[str, Any] = {}

    def show(done: int, total: int) -> None:
        if "bar" not in shown:
            shown["bar"] = progress("entries before the seed", total)
        shown["bar"](done)

    try:
        sample = recompute_sample(
            log,
            note,
            key,
            pinned,
            args.plan,
            policy=witnesses,
            workers=default_workers() if args.workers is None else args.workers,
            progress=None if args.json else show,
        )
    except SeedNotYet as e:
        raise Exit(EXIT_FAILED, str(e), "run again once the log has grown") from e
    except VerificationError as e:
        raise Exit(EXIT_FAILED, f"no sample: {e}") from e
    except FetchError as e:
        raise io(e) from e
    if args.out is not None:
        try:
            args.out.write_text(json.dumps(sample, indent=1, sort_keys=True) + "\n")
        except OSError as e:
            raise Exit(EXIT_IO, f"cannot write {args.out}: {e.strerror}") from e
    report = {**sample, "log": source, "verified": True}
    if claimed is not None:
        differences = compare_samples(claimed, sample)
        report["check"] = {"file": str(args.check), "differences": differences}
        report["verified"] = not differences
    return report


def summary(report: dict[str, Any]) -> str:
    """The human summary of ``run``'s report."""
    plan, seed, size = report["plan"], report["seed"], report["size"]
    witnessed = (
        "cosigned by " + ", ".join(seed["witnesses"])
        if seed["witnesses"]
        else "not witnessed: pass --witness to ask for cosignatures"
    )
    lines = [
        f"plan: entry {plan['index']:,}, {plan['subject']} "
        f"({plan['body']['ballot']}, by {plan['body']['unit']})",
        f"seed: the root {seed['root'][:16]}… of the first {seed['tree_size']:,} "
        f"entries, all audited, in the checkpoint of size "
        f"{seed['checkpoint_size']:,} ({witnessed})",
    ]
    if size["method"] == "fixed":
        lines.append(f"size: fixed at {size['n']:,}")
    else:
        margin = size["margin"]
        lines.append(
            f"size: {size['n']:,} by {size['method']} (risk limit "
            f"{size['risk_limit']}, at most {size['max_shift']} of a station's votes "
            f"moved; margin {margin['votes']:,} votes, "
            f"{size['stations_to_change_outcome']} stations to change the outcome)"
        )
    lines.append(
        f"drew {size['drawn']:,} of {report['population']['units']:,} units in "
        f"{len(report['strata']):,} strata"
    )
    for unit in report["units"][:SHOWN]:
        lines.append(f"  {unit['unit']}")
    if len(report["units"]) > SHOWN:
        lines.append(f"  … and {len(report['units']) - SHOWN:,} more (--json, --out)")
    if plan["other_revisions"]:
        lines.append(
            f"note: the plan's subject has other revisions before the seed, at "
            f"entries {plan['other_revisions']}"
        )
    if "check" in report:
        differences = report["check"]["differences"]
        for difference in differences:
            lines.append(f"  {report['check']['file']}: {difference}")
        lines.append(
            f"{report['check']['file']}: "
            + ("MATCHES the sample drawn here" if not differences else "DIFFERS")
        )
    lines.append("VERIFIED" if report["verified"] else "FAILED")
    return "\n".join(lines)


def register(sub: Subparsers) -> None:
    """Add the ``sample`` command."""
    parser = sub.add_parser(
        "sample", help="recompute an audit sample from its logged plan; check one"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--log", help="the log's tiles prefix or Saksi base URL")
    source.add_argument(
        "--bundle", type=Path, help="a whole-log bundle (saksi-verify bundle)"
    )
    add_common(parser, log=False)
    parser.add_argument(
        "--plan", type=int, required=True, metavar="INDEX", help="the plan's entry"
    )
    parser.add_argument(
        "--check", type=Path, metavar="FILE", help="a sample file to compare"
    )
    parser.add_argument("--out", type=Path, metavar="FILE", help="write the sample")
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes that examine entries (default: one per core)",
    )
    parser.set_defaults(func=run, summary=summary)
