"""``saksi results import``: published per-station results as signed tallies.

Reads the commission's Sirekap documents or the 2019 KawalPemilu extract (gzip
or not, told by the bytes), strictly: a malformed line stops the import with
its file, line and reason, or with ``--skip-bad`` is counted and listed. Every
station read is reported as imported, pending, incomplete (a reading without
all the numbers a tally needs, listed with what it lacks), with no data,
already logged or refused; reading no station at all is a failure (exit 1).
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cli.args import common_flags
from cli.connect import write_flags
from cli.inputs import (
    EXTRACT_HINT,
    SIREKAP_HINT,
    data_help,
    input_errors,
    kawalpemilu_input,
    listed,
    refusals,
    run_submit,
    tail,
    unmatched,
)
from cli.run import EXIT_FAILED, EXIT_OK, CommandError, emit
from domains.inputs import BadLine, OnBad, Reading
from domains.kawalpemilu import SOURCES, Matching
from domains.kawalpemilu import tally_bodies as kawal_tallies
from domains.regions import WILAYAH_FILE
from domains.sirekap import read_stations, tally_body
from verifier.election import tally_subject
from verifier.rules import tally_flags

__all__ = ["add_command", "cmd_results_import"]


_SKIP_HINT = "; or --skip-bad to skip bad lines and list them"


def _sirekap_tallies(args: argparse.Namespace, on_bad: OnBad) -> list[Reading]:
    hint = SIREKAP_HINT + ("" if args.skip_bad else _SKIP_HINT)
    with input_errors({args.path: ("", hint)}):
        return [tally_body(station) for station in read_stations(args.path, on_bad)]


def _incomplete_line(item: Mapping[str, Any]) -> str:
    found = ", ".join(f"{k} {v}" for k, v in item["found"].items()) or "no numbers"
    return (
        f"incomplete {item['station']}: no {', '.join(item['missing'])} (has {found})"
    )


def _nothing_read(
    args: argparse.Namespace, readings: list[Reading], bad: list[BadLine]
) -> CommandError:
    where = f"{args.path}"
    stations = len({reading.station for reading in readings})
    if args.prefix:
        where += f" under prefix {args.prefix} ({stations:,} in the file)"
    skipped = f"; {len(bad):,} bad line(s) skipped, the first: {bad[0]}" if bad else ""
    return CommandError(
        f"no polling stations read from {where}{skipped}",
        "check --prefix" if stations else f"check the file and --format {args.format}",
        EXIT_FAILED,
    )


def cmd_results_import(args: argparse.Namespace) -> int:
    """Sign every complete published station reading as a machine-reading tally."""
    matching: Matching | None = None
    readings: list[Reading]
    bad: list[BadLine] = []
    on_bad = bad.append if args.skip_bad else None
    if args.format == "kawalpemilu2019":
        readings, matching = kawalpemilu_input(
            args,
            lambda nodes, found: kawal_tallies(nodes, found, args.source),
            on_bad,
            EXTRACT_HINT + ("" if args.skip_bad else _SKIP_HINT),
        )
    else:
        readings = _sirekap_tallies(args, on_bad)
    skipped: Counter[str] = Counter()
    incomplete: list[dict[str, Any]] = []
    records: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for code, body, why, detail in readings:
        if code in seen or not code.startswith(args.prefix):
            continue
        seen.add(code)
        if body is None:
            skipped[why] += 1
            if why == "incomplete":
                incomplete.append({"station": code, **(detail or {})})
        else:
            records.append((tally_subject(args.ballot, code), body))
    if not seen:
        raise _nothing_read(args, readings, bad)
    receipts, refused, logged = run_submit(args, "results.tally/v1", records, "tallies")
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
            "incomplete": skipped["incomplete"],
            "no_data": skipped["no data"],
            "bad_lines": len(bad),
            "already_logged": len(logged),
        },
        "incomplete": incomplete,
        "bad_lines": [line.as_json() for line in bad],
        "refused": refusals(refused),
        "unmatched": unmatched(matching),
        "flags": flagged,
        "first_index": min((r.index for _, r in receipts), default=None),
        "last_index": max((r.index for _, r in receipts), default=None),
    }
    emit(
        args,
        result,
        f"{len(seen):,} polling stations read: {len(receipts):,} imported "
        f"({len(flagged):,} flagged by the arithmetic rules), skipped "
        f"{skipped['pending']:,} pending, {skipped['incomplete']:,} incomplete "
        f"and {skipped['no data']:,} with no data, "
        f"{len(logged):,} already in the log, {len(refused):,} refused"
        + (f"; {len(bad):,} bad line(s) skipped" if bad else "")
        + tail(matching, refused)
        + listed([_incomplete_line(item) for item in incomplete])
        + listed([f"bad line: {line}" for line in bad]),
    )
    return EXIT_OK if not refused else EXIT_FAILED


def add_command(ressub: argparse._SubParsersAction[Any]) -> None:
    """Register ``saksi results import``."""
    imp = ressub.add_parser("import", help="sign published per-TPS results as tallies")
    write_flags(imp, db=False)
    imp.add_argument(
        "--key", type=Path, required=True, help="a tps key covering the region"
    )
    imp.add_argument(
        "--format",
        required=True,
        choices=["sirekap", "kawalpemilu2019"],
        help="sirekap: the commission's 2024 per-TPS JSON; kawalpemilu2019: "
        "the 2019 KawalPemilu extract",
    )
    imp.add_argument(
        "--ballot",
        default="ppwp",
        choices=["ppwp"],
        help="the ballot the results are for (ppwp: president, the default)",
    )
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
        metavar="FILE",
        help=data_help(
            "kawalpemilu2019: the commission's region table, to name regions",
            WILAYAH_FILE,
        ),
    )
    imp.add_argument("--prefix", default="", help="only stations under this code")
    imp.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip lines of PATH that are not in the format (each is counted and "
        "listed); without it the first one stops the import",
    )
    imp.add_argument(
        "path",
        type=Path,
        metavar="PATH",
        help="sirekap: JSONL of {kode_tps, data} or a directory; "
        "kawalpemilu2019: the extract's JSONL (gzip or not)",
    )
    common_flags(imp)
    imp.set_defaults(func=cmd_results_import)
