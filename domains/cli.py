"""``saksi regions load`` and ``saksi results import``: election data into a log.

Both sign records here and send them to a running ``saksi serve`` through the same
HTTP interface any election application uses (``saksi_client``), in batches, and
check every receipt against the pinned log key. A subject already in the log is
skipped, so an interrupted run can simply be run again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from domains.kawalpemilu import SOURCES, Matching, match_regions, read_nodes
from domains.kawalpemilu import district_bodies as kawal_districts
from domains.kawalpemilu import tally_bodies as kawal_tallies
from domains.recaps import build_recaps
from domains.regions import DEFAULT_TPS, DEFAULT_WILAYAH, district_bodies
from domains.sirekap import read_stations, tally_body
from keys.cli import (
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    common_flags,
    emit,
    load_signer,
    passphrase_of,
)
from keys.signer import Ed25519Signer
from ledger.logcli import client_errors, head_of, open_log, write_flags
from saksi_client import Receipt, Refused, SaksiClient
from verifier.election import tally_subject
from verifier.rules import tally_flags

__all__ = ["add_domain_commands", "submit_new"]

_T = TypeVar("_T")

BATCH = 200


def _progress(label: str) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        if sys.stderr.isatty() or done == total:
            print(f"\r{label}: {done:,}/{total:,}", end="", file=sys.stderr)
            if done == total:
                print(file=sys.stderr)

    return show


def submit_new(
    client: SaksiClient,
    signer: Ed25519Signer,
    schema: str,
    records: Iterable[tuple[str, dict[str, Any]]],
    progress: Callable[[int, int], None],
) -> tuple[list[tuple[str, Receipt]], list[tuple[str, Refused]], list[str]]:
    """Sign and submit each (subject, body) not yet in the log, in batches.

    Returns the receipts (all verified), the refusals, and the subjects skipped
    because they are already logged.

    Raises:
        TransportError, VerificationError: see ``SaksiClient.submit_many``.
    """
    pending: list[tuple[str, dict[str, Any]]] = []
    skipped: list[str] = []
    items = list(records)
    for subject, body in items:
        if head_of(client, subject) is None:
            pending.append((subject, body))
        else:
            skipped.append(subject)
    now = dt.datetime.now(dt.UTC)
    receipts: list[tuple[str, Receipt]] = []
    refused: list[tuple[str, Refused]] = []
    progress(0, len(pending))
    for start in range(0, len(pending), BATCH):
        chunk = pending[start : start + BATCH]
        envelopes = [
            client.sign(client.record(schema, subject, body, now=now), [signer])
            for subject, body in chunk
        ]
        for (subject, _), outcome in zip(
            chunk, client.submit_many(envelopes), strict=True
        ):
            if isinstance(outcome, Refused):
                refused.append((subject, outcome))
            else:
                receipts.append((subject, outcome))
        progress(min(start + BATCH, len(pending)), len(pending))
    return receipts, refused, skipped


def _run(
    args: argparse.Namespace,
    schema: str,
    records: list[tuple[str, dict[str, Any]]],
    label: str,
) -> tuple[list[tuple[str, Receipt]], list[tuple[str, Refused]], list[str]]:
    signer = load_signer(args.key, passphrase_of(args))
    with open_log(args) as client, client_errors("check the batch limits of the log"):
        return submit_new(client, signer, schema, records, _progress(label))


def _tail(matching: Matching | None, refused: list[tuple[str, Refused]]) -> str:
    """The end of a human summary: unmatched regions, then the refusals."""
    unmatched = len(matching.unmatched) if matching else 0
    note = f"; {unmatched} regions of the extract not matched" if unmatched else ""
    return note + _refusal_lines(refused)


def _refusal_lines(refused: list[tuple[str, Refused]], shown: int = 20) -> str:
    lines = [f"\n  {s}: {r.cause}: {r.problem.get('detail')}" for s, r in refused]
    more = len(lines) - shown
    return "".join(lines[:shown]) + (
        f"\n  … and {more:,} more (--json lists all)" if more > 0 else ""
    )


def _refusals(refused: list[tuple[str, Refused]]) -> list[dict[str, Any]]:
    return [
        {"subject": s, "cause": r.cause, "detail": r.problem.get("detail")}
        for s, r in refused
    ]


def _kawalpemilu(
    args: argparse.Namespace,
    build: Callable[[dict[int, Any], Matching], Iterable[_T]],
) -> tuple[list[_T], Matching]:
    """Read and match the extract, and build from it, all under one guard."""
    try:
        nodes = read_nodes(args.path)
        matching = match_regions(nodes, args.wilayah)
        return list(build(nodes, matching)), matching
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        raise CommandError(
            f"cannot read the 2019 extract or the region table: {e}",
            "pass the KawalPemilu JSONL(.gz) and --wilayah sirekap_wilayah_ppwp.csv",
            EXIT_USAGE,
        ) from e


def _unmatched(matching: Matching | None) -> list[dict[str, Any]]:
    if matching is None:
        return []
    return [{"node": n, "where": w} for n, w in matching.unmatched]


def cmd_regions_load(args: argparse.Namespace) -> int:
    """Log the commission's region table (one record per district)."""
    matching: Matching | None = None
    bodies: Iterable[tuple[str, dict[str, Any]]]
    try:
        if args.format == "kawalpemilu2019":
            if args.path is None:
                raise CommandError(
                    "--format kawalpemilu2019 needs the extract",
                    "pass --path kawalpemilu2019_*.jsonl.gz",
                    EXIT_USAGE,
                )
            bodies, matching = _kawalpemilu(args, kawal_districts)
        else:
            bodies = district_bodies(args.wilayah, args.tps, args.prefix)
        records = [
            (f"regions/{code}", body)
            for code, body in bodies
            if code.startswith(args.prefix) or args.prefix.startswith(code)
        ]
    except (OSError, ValueError, KeyError) as e:
        raise CommandError(
            f"cannot read the region tables: {e}",
            "pass --wilayah sirekap_wilayah_ppwp.csv and --tps sirekap_tps_ppwp.csv.gz",
            EXIT_USAGE,
        ) from e
    if not records:
        raise CommandError(
            f"no districts under prefix {args.prefix!r}", "check --prefix", EXIT_USAGE
        )
    receipts, refused, skipped = _run(args, "regions.registry/v1", records, "districts")
    stations = sum(
        len(v["tps"]) for _, body in records for v in body["villages"].values()
    )
    result = {
        "districts": len(records),
        "stations": stations,
        "logged": len(receipts),
        "already_logged": len(skipped),
        "refused": _refusals(refused),
        "unmatched": _unmatched(matching),
    }
    emit(
        args,
        result,
        f"{len(records):,} districts ({stations:,} polling stations): "
        f"{len(receipts):,} logged, {len(skipped):,} already in the log, "
        f"{len(refused):,} refused" + _tail(matching, refused),
    )
    return EXIT_OK if not refused else 1


def _sirekap_tallies(
    args: argparse.Namespace,
) -> Iterator[tuple[str, dict[str, Any] | None, str]]:
    try:
        stations = list(read_stations(args.path))
    except OSError as e:
        raise CommandError(
            f"cannot read {args.path}: {e.strerror or e}",
            "pass a JSONL file of {kode_tps, data} lines or a directory of JSON",
            EXIT_USAGE,
        ) from e
    for station in stations:
        body, why = tally_body(station)
        yield station.code, body, why


def cmd_results_import(args: argparse.Namespace) -> int:
    """Sign every complete published station reading as a machine-reading tally."""
    matching: Matching | None = None
    tallies: Iterable[tuple[str, dict[str, Any] | None, str]]
    if args.format == "kawalpemilu2019":
        tallies, matching = _kawalpemilu(
            args, lambda nodes, found: kawal_tallies(nodes, found, args.source)
        )
    else:
        tallies = _sirekap_tallies(args)
    skipped: Counter[str] = Counter()
    records: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for code, body, why in tallies:
        if code in seen or not code.startswith(args.prefix):
            continue
        seen.add(code)
        if body is None:
            skipped[why] += 1
        else:
            records.append((tally_subject(args.ballot, code), body))
    receipts, refused, logged = _run(args, "results.tally/v1", records, "tallies")
    bodies = dict(records)
    flagged = {
        subject: [f.check for f in tally_flags(bodies[subject], args.ballot)]
        for subject, _ in receipts
    }
    flagged = {s: checks for s, checks in flagged.items() if checks}
    result = {
        "stations": len(seen),
        "imported": len(receipts),
        "flagged": len(flagged),
        "skipped": {
            "pending": skipped["pending"],
            "no_data": skipped["no data"],
            "already_logged": len(logged),
        },
        "refused": _refusals(refused),
        "unmatched": _unmatched(matching),
        "flags": flagged,
        "first_index": min((r.index for _, r in receipts), default=None),
        "last_index": max((r.index for _, r in receipts), default=None),
    }
    emit(
        args,
        result,
        f"{len(seen):,} polling stations read: {len(receipts):,} imported "
        f"({len(flagged):,} flagged by the arithmetic rules), skipped "
        f"{skipped['pending']:,} pending and {skipped['no data']:,} with no data, "
        f"{len(logged):,} already in the log, {len(refused):,} refused"
        + _tail(matching, refused),
    )
    return EXIT_OK if not refused else 1


def _region_arg(text: str) -> str:
    code = "" if text in ("national", "all", "") else text
    if code and (not code.isdigit() or len(code) not in (2, 4, 6, 10)):
        raise CommandError(
            f"--region {text!r} is not a region code",
            "use national or a 2, 4, 6 or 10-digit code",
            EXIT_USAGE,
        )
    return code


def cmd_results_recap(args: argparse.Namespace) -> int:
    """Build, sign and submit every missing or stale recap under a region."""
    root = _region_arg(args.region)
    passphrase = passphrase_of(args)
    cache: dict[str, Ed25519Signer | None] = {}

    def signer_for(region: str) -> Ed25519Signer | None:
        if region not in cache:
            path = args.keys / f"{region or 'national'}.key"
            cache[region] = load_signer(path, passphrase) if path.exists() else None
        return cache[region]

    with open_log(args) as client, client_errors("check --region"):
        report = build_recaps(client, args.ballot, root, signer_for, _level_progress())
    result = {
        "signed": report.signed,
        "up_to_date": report.current,
        "empty": report.empty,
        "no_key": report.no_key,
        "refused": [{"subject": s, "problem": p} for s, p in report.refused],
    }
    emit(
        args,
        result,
        "recaps signed: "
        + ", ".join(f"{n} {c}" for n, c in report.signed.items())
        + "; up to date: "
        + ", ".join(f"{n} {c}" for n, c in report.current.items())
        + (f"; no key for {len(report.no_key)}" if report.no_key else "")
        + (f"; {len(report.refused)} refused" if report.refused else ""),
    )
    return EXIT_OK if not report.refused else 1


def _level_progress() -> Callable[[str, int, int], None]:
    def show(level: str, done: int, total: int) -> None:
        if sys.stderr.isatty() or done == total:
            print(f"\r{level} recaps: {done:,}/{total:,}", end="", file=sys.stderr)
            if done == total:
                print(file=sys.stderr)

    return show


def cmd_results_show(args: argparse.Namespace) -> int:
    """A region's results with provenance (JSON)."""
    region = _region_arg(args.region)
    path = f"/v1/results/{args.ballot}/{region or 'national'}"
    with open_log(args) as client, client_errors("check --region"):
        body = client.get(path + ("/corrections" if args.corrections else ""))
    if args.corrections:
        emit(
            args,
            body,
            f"{len(body['corrections'])} corrections in {body['region']}"
            + "".join(
                f"\n  entry {c['index']}: {c['subject']} rev {c['revision']} "
                f"({c.get('correction', {}).get('reason_code', 'recap')}): "
                + ", ".join(
                    f"{x['where']} {x['before']} -> {x['after']}" for x in c["changed"]
                )
                for c in body["corrections"]
            ),
        )
        return EXIT_OK
    recap = body["recap"]
    done = body["completeness"]
    lines = [
        f"{body['level']} {body['region']} ({args.ballot}): "
        f"{done['present']}/{done['listed']} children present, "
        f"{done['flagged']} flagged"
    ]
    if recap is not None:
        lines.append(
            f"recap revision {recap['revision']} at entry {recap['index']}"
            + (" STALE" if recap["stale"] else "")
            + f": {recap['totals']}"
        )
    emit(args, body, "\n".join(lines))
    return EXIT_OK


def add_domain_commands(sub: argparse._SubParsersAction[Any]) -> None:
    """Register ``saksi regions``, ``saksi results`` and ``saksi demo``."""
    from domains.demo import add_demo_command

    add_demo_command(sub)
    regions = sub.add_parser("regions", help="the region registry in the log")
    rsub = regions.add_subparsers(
        dest="regions_command", required=True, metavar="ACTION"
    )
    load = rsub.add_parser("load", help="log the commission's region table")
    write_flags(load, db=False)
    load.add_argument("--key", type=Path, required=True, help="an admin key file")
    load.add_argument(
        "--format",
        default="sirekap",
        choices=["sirekap", "kawalpemilu2019"],
        help="the commission's 2024 tables (default), or the 2019 stations of a "
        "KawalPemilu extract named by the commission's codes",
    )
    load.add_argument("--path", type=Path, help="the extract (kawalpemilu2019)")
    load.add_argument("--wilayah", type=Path, default=DEFAULT_WILAYAH)
    load.add_argument("--tps", type=Path, default=DEFAULT_TPS)
    load.add_argument(
        "--prefix", default="", help="only regions under this code (e.g. 31)"
    )
    common_flags(load)
    load.set_defaults(func=cmd_regions_load)

    results = sub.add_parser("results", help="election results in the log")
    ressub = results.add_subparsers(
        dest="results_command", required=True, metavar="ACTION"
    )
    imp = ressub.add_parser("import", help="sign published per-TPS results as tallies")
    write_flags(imp, db=False)
    imp.add_argument(
        "--key", type=Path, required=True, help="a tps key covering the region"
    )
    imp.add_argument("--format", required=True, choices=["sirekap", "kawalpemilu2019"])
    imp.add_argument("--ballot", default="ppwp", choices=["ppwp"])
    imp.add_argument(
        "--source",
        default="kpu",
        choices=sorted(SOURCES),
        help="kawalpemilu2019: the commission's Situng numbers (kpu, default) or "
        "the crowd's reading of the form photos (kawalpemilu)",
    )
    imp.add_argument(
        "--wilayah",
        type=Path,
        default=DEFAULT_WILAYAH,
        help="kawalpemilu2019: the commission's region table, to name regions",
    )
    imp.add_argument("--prefix", default="", help="only stations under this code")
    imp.add_argument(
        "path",
        type=Path,
        metavar="PATH",
        help="sirekap: JSONL of {kode_tps, data} or a directory; "
        "kawalpemilu2019: the extract's JSONL(.gz)",
    )
    common_flags(imp)
    imp.set_defaults(func=cmd_results_import)

    recap = ressub.add_parser("recap", help="build and sign recaps bottom-up")
    write_flags(recap, db=False)
    recap.add_argument(
        "--keys",
        type=Path,
        required=True,
        help="directory of recap keys named <region code>.key (national.key)",
    )
    recap.add_argument("--region", default="national", help="national or a code")
    recap.add_argument("--ballot", default="ppwp", choices=["ppwp"])
    common_flags(recap)
    recap.set_defaults(func=cmd_results_recap)

    show = ressub.add_parser("show", help="a region's results with provenance")
    write_flags(show, db=False)
    show.add_argument("--region", default="national", help="national or a code")
    show.add_argument(
        "--ballot", default="ppwp", choices=["ppwp", "pdpr", "pdpd", "pdprdp", "pdprdk"]
    )
    show.add_argument(
        "--corrections",
        action="store_true",
        help="every correction in the region, in log order, with what it changed",
    )
    common_flags(show)
    show.set_defaults(func=cmd_results_show)
