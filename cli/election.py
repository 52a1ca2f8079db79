"""``saksi regions`` and ``saksi results``: election data into a log, and out.

``regions load`` and ``results import`` (``cli.importing``) sign records
here and send them to a running ``saksi serve`` through the same HTTP interface
any election application uses (``saksi_client``), in batches, and check every
receipt against the pinned log key. A subject already in the log is skipped, so
an interrupted run can simply be run again. ``results recap`` signs the recaps
that are missing or stale (and fails, naming the key files, when it has no key
for one); ``results show`` reads a region's results back.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cli import importing
from cli.args import common_flags, passphrase_of, region_arg
from cli.connect import client_errors, open_log, write_flags
from cli.inputs import (
    WILAYAH_HINT,
    data_file,
    data_help,
    input_errors,
    kawalpemilu_input,
    refusals,
    run_submit,
    tail,
    unmatched,
)
from cli.run import (
    EXIT_FAILED,
    EXIT_IO,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    emit,
    key_error,
)
from domains.kawalpemilu import Matching
from domains.kawalpemilu import district_bodies as kawal_districts
from domains.recaps import build_recaps
from domains.regions import TPS_FILE, WILAYAH_COLUMNS, WILAYAH_FILE, district_bodies
from keys.errors import KeyLoadError
from keys.keyfile import KeyFileBatch
from keys.signer import Ed25519Signer
from saksi_client import SaksiClient

__all__ = ["add_commands"]


def cmd_regions_load(args: argparse.Namespace) -> int:
    """Log the commission's region table (one record per district)."""
    matching: Matching | None = None
    bodies: Iterable[tuple[str, dict[str, Any]]]
    if args.format == "kawalpemilu2019":
        if args.path is None:
            raise CommandError(
                "--format kawalpemilu2019 needs the extract",
                "pass --path kawalpemilu2019_*.jsonl.gz",
                EXIT_USAGE,
            )
        bodies, matching = kawalpemilu_input(args, kawal_districts)
    else:
        wilayah = data_file(args.wilayah, WILAYAH_FILE, "--wilayah", "the region table")
        tps = data_file(args.tps, TPS_FILE, "--tps", "the polling-station table")
        with input_errors(
            {
                wilayah: (
                    "the region table",
                    WILAYAH_HINT.format(columns=", ".join(WILAYAH_COLUMNS)),
                ),
                tps: (
                    "the polling-station table",
                    "pass --tps FILE, the commission's polling-station table: a CSV "
                    "(gzip or not) with the column kode (sirekap_tps_ppwp.csv.gz)",
                ),
            }
        ):
            bodies = list(district_bodies(wilayah, tps, args.prefix))
    records = [
        (f"regions/{code}", body)
        for code, body in bodies
        if code.startswith(args.prefix) or args.prefix.startswith(code)
    ]
    if not records:
        raise CommandError(
            f"no districts under prefix {args.prefix!r}", "check --prefix", EXIT_USAGE
        )
    receipts, refused, skipped = run_submit(
        args, "regions.registry/v1", records, "districts"
    )
    stations = sum(
        len(v["tps"]) for _, body in records for v in body["villages"].values()
    )
    result = {
        "districts": len(records),
        "stations": stations,
        "logged": len(receipts),
        "already_logged": len(skipped),
        "refused": refusals(refused),
        "unmatched": unmatched(matching),
    }
    emit(
        args,
        result,
        f"{len(records):,} districts ({stations:,} polling stations): "
        f"{len(receipts):,} logged, {len(skipped):,} already in the log, "
        f"{len(refused):,} refused" + tail(matching, refused),
    )
    return EXIT_OK if not refused else 1


_LEVEL_OF = {0: "national", 2: "province", 4: "regency", 6: "district", 10: "village"}


def _missing_keys(keys: Path, regions: list[str]) -> dict[str, list[str]]:
    """The key files that were not there, by level (village first)."""
    missing: dict[str, list[str]] = {}
    for region in regions:
        code = "" if region == "national" else region
        level = _LEVEL_OF.get(len(code), "region")
        missing.setdefault(level, []).append(str(keys / f"{region}.key"))
    return missing


def _fail(message: str, hint: str) -> int:
    """Say on stderr what went wrong (the report is already out); exit 1."""
    print(f"saksi: error: {message}\nsaksi: hint: {hint}", file=sys.stderr)
    return EXIT_FAILED


def _open_key(batch: KeyFileBatch, path: Path) -> Ed25519Signer:
    try:
        return batch.load(path)
    except KeyLoadError as e:
        raise key_error(e, "check the key file and its passphrase") from e


def cmd_results_recap(args: argparse.Namespace) -> int:
    """Build, sign and submit every missing or stale recap under a region."""
    root = region_arg(args.region, "--region")
    if not args.keys.is_dir():
        absent = not args.keys.exists()
        raise CommandError(
            f"--keys {args.keys}: " + ("not found" if absent else "not a directory"),
            "pass the directory of recap keys named <region code>.key "
            "(national.key for the national recap)",
            EXIT_IO if absent else EXIT_USAGE,
        )
    # One Argon2id derivation per salt, not per file: the files 'saksi keys
    # provision' writes in one run share theirs (a country has ~91,000).
    batch = KeyFileBatch(passphrase_of(args))
    cache: dict[str, Ed25519Signer | None] = {}

    def signer_for(region: str) -> Ed25519Signer | None:
        if region not in cache:
            path = args.keys / f"{region or 'national'}.key"
            cache[region] = _open_key(batch, path) if path.exists() else None
        return cache[region]

    with open_log(args) as client, client_errors("check --region and --read-from"):
        reader = None
        if args.read_from:
            reader = SaksiClient(args.read_from, client.log_key)
            reader.check_identity()  # the same log, or WrongLog
        report = build_recaps(
            client, args.ballot, root, signer_for, _level_progress(), reader=reader
        )
    missing = _missing_keys(args.keys, report.no_key)
    result = {
        "signed": report.signed,
        "up_to_date": report.current,
        "empty": report.empty,
        "no_key": report.no_key,
        "missing_keys": missing,
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
    if missing:
        return _fail(
            f"{len(report.no_key):,} recaps need signing but have no key in "
            f"{args.keys}: "
            + "; ".join(
                f"{level} ({len(files):,}): {', '.join(files[:5])}"
                + (f" and {len(files) - 5:,} more" if len(files) > 5 else "")
                for level, files in missing.items()
            ),
            f"put each region's recap key, granted for that region, in {args.keys} "
            "as <region code>.key (national.key for the national recap); "
            "then run this again",
        )
    return EXIT_OK if not report.refused else EXIT_FAILED


def _level_progress() -> Callable[[str, int, int], None]:
    def show(level: str, done: int, total: int) -> None:
        if sys.stderr.isatty() or done == total:
            print(f"\r{level} recaps: {done:,}/{total:,}", end="", file=sys.stderr)
            if done == total:
                print(file=sys.stderr)

    return show


def cmd_results_show(args: argparse.Namespace) -> int:
    """A region's results with provenance (JSON)."""
    region = region_arg(args.region, "--region")
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


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    """Register ``saksi regions`` and ``saksi results``."""
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
    load.add_argument(
        "--wilayah",
        type=Path,
        metavar="FILE",
        help=data_help(
            "the commission's region table (CSV, gzip or not)", WILAYAH_FILE
        ),
    )
    load.add_argument(
        "--tps",
        type=Path,
        metavar="FILE",
        help=data_help(
            "sirekap: the commission's polling-station table (CSV, gzip or not)",
            TPS_FILE,
        ),
    )
    load.add_argument(
        "--prefix", default="", help="only regions under this code (e.g. 31)"
    )
    common_flags(load)
    load.set_defaults(func=cmd_regions_load)

    results = sub.add_parser("results", help="election results in the log")
    ressub = results.add_subparsers(
        dest="results_command", required=True, metavar="ACTION"
    )
    importing.add_command(ressub)

    recap = ressub.add_parser("recap", help="build and sign recaps bottom-up")
    write_flags(recap, db=False)
    recap.add_argument(
        "--keys",
        type=Path,
        required=True,
        help="directory of recap keys named <region code>.key (national.key)",
    )
    recap.add_argument("--region", default="national", help="national or a code")
    recap.add_argument(
        "--read-from",
        metavar="URL",
        help="read the regions from this read-only server of the same log (the "
        "reads are most of the work); each level is read there once it holds "
        "the recaps of the level below. Default: the log written to",
    )
    recap.add_argument(
        "--ballot",
        default="ppwp",
        choices=["ppwp"],
        help="the ballot to recap (ppwp: president, the default)",
    )
    common_flags(recap)
    recap.set_defaults(func=cmd_results_recap)

    show = ressub.add_parser("show", help="a region's results with provenance")
    write_flags(show, db=False)
    show.add_argument("--region", default="national", help="national or a code")
    show.add_argument(
        "--ballot",
        default="ppwp",
        choices=["ppwp", "pdpr", "pdpd", "pdprdp", "pdprdk"],
        help="the ballot: ppwp (president, the default), pdpr (DPR), pdpd (DPD), "
        "pdprdp (provincial council), pdprdk (regency council)",
    )
    show.add_argument(
        "--corrections",
        action="store_true",
        help="every correction in the region, in log order, with what it changed",
    )
    common_flags(show)
    show.set_defaults(func=cmd_results_show)
