"""``saksi demo``: the election demo (``domains.demo``) against a running log.

This module is the command: its flags, the key, log key and data files it
reads, and its failures as CLI errors (exit codes: ``cli.run``). What the demo
writes and checks, step by step, is ``domains.demo``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cli.args import load_signer, passphrase_of
from cli.connect import client_errors, head_of
from cli.inputs import SIREKAP_HINT, WILAYAH_HINT, data_file, data_help, input_errors
from cli.run import EXIT_FAILED, EXIT_IO, EXIT_USAGE, CommandError, emit
from domains.demo import CANDIDATES, DATA_FILE, DemoFailed, fresh, run
from domains.inputs import DATA_DIR_VARIABLE, data_dir
from domains.regions import TPS_FILE, WILAYAH_COLUMNS, WILAYAH_FILE, district_bodies
from domains.sirekap import read_stations
from saksi_client import SaksiClient
from verifier.errors import VerificationError
from verifier.note import VerifierKey

__all__ = ["add_command"]


@contextlib.contextmanager
def _demo_errors() -> Iterator[None]:
    """What the demo found wrong, as a CLI error (exit 1)."""
    try:
        yield
    except DemoFailed as e:
        raise CommandError(str(e), e.hint, EXIT_FAILED) from e


def _candidates() -> dict[str, Any]:
    try:
        candidates = json.loads(CANDIDATES.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CommandError(
            f"cannot read the candidate list {CANDIDATES}: {e}",
            "reinstall saksi: the file ships with it",
        ) from e
    fields = ("schema", "subject", "body")
    if not isinstance(candidates, dict) or any(f not in candidates for f in fields):
        raise CommandError(
            f"{CANDIDATES}: expected a record file with {', '.join(fields)}",
            "reinstall saksi: the file ships with it",
        )
    return candidates


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the election demo against ``--url`` (the steps: ``domains.demo``)."""
    if args.count < 2:
        raise CommandError(
            f"--count {args.count}: the demo needs at least 2 polling stations",
            "pass --count 2 or more (default 1000)",
            EXIT_USAGE,
        )
    passphrase = passphrase_of(args)
    admin = load_signer(args.admin_key or args.dir / "admin.key", passphrase)
    vkey = args.dir / "log.vkey"
    try:
        key = VerifierKey.parse(vkey.read_text().strip())
    except OSError as e:
        raise CommandError(
            f"cannot read {vkey}: {e.strerror}",
            "pass the --dir that 'saksi init' wrote",
            EXIT_IO,
        ) from e
    except VerificationError as e:
        raise CommandError(
            f"{vkey}: {e}", "restore log.vkey from your records", EXIT_USAGE
        ) from e
    data = data_file(args.data, DATA_FILE, "--data", "the results sample")
    wilayah = data_file(args.wilayah, WILAYAH_FILE, "--wilayah", "the region table")
    tps = data_file(args.tps, TPS_FILE, "--tps", "the polling-station table")
    candidates = _candidates()
    client = SaksiClient(args.url, key)
    with client_errors("report this bug"), _demo_errors():
        start_note, start = fresh(client)
    with input_errors(
        {
            data: ("the results sample", "pass --data FILE: " + SIREKAP_HINT),
            wilayah: (
                "the region table",
                WILAYAH_HINT.format(columns=", ".join(WILAYAH_COLUMNS)),
            ),
            tps: ("the polling-station table", "pass --tps FILE"),
        }
    ):
        stations = list(read_stations(data))[: args.count]
        districts = list(district_bodies(wilayah, tps, "31"))
    with client_errors("report this bug"), _demo_errors():
        result, text = run(
            client,
            admin,
            (start_note, start),
            stations,
            districts,
            candidates,
            functools.partial(head_of, client),
        )
    emit(args, result, text)
    return 0


def add_command(sub: argparse._SubParsersAction[Any]) -> None:
    """Register ``saksi demo``."""
    directory, source = data_dir()
    demo = sub.add_parser(
        "demo",
        help="a demo: a real slice of the 2024 election into a fresh log, verified",
        description="A demonstration, not an election tool. Into a fresh log "
        "(one 'saksi init' just made: nothing but its genesis record; any other "
        "log is refused before anything is written) it writes, through a running "
        "'saksi serve': key grants for --count real 2024 polling stations, the "
        "recap committee of every region above them, the commission's reading "
        "system and the candidate-list keeper (1,019 grants for the default "
        "1,000 stations), the region table "
        "of DKI Jakarta (44 districts), the 2024 presidential candidates, the "
        "stations' published results, a correction and the recaps; then it "
        "traces one number from the national total down to its form, every "
        "receipt verified. The data comes from the shared data folder "
        f"({directory}, from {source}; set {DATA_DIR_VARIABLE} to move it).",
    )
    demo.add_argument(
        "--url",
        "--log",
        dest="url",
        required=True,
        help="a running 'saksi serve' on a fresh log, e.g. http://127.0.0.1:8080",
    )
    demo.add_argument(
        "--dir",
        type=Path,
        required=True,
        help="the fresh log's directory, as 'saksi init' wrote it (log.vkey, "
        "admin.key)",
    )
    demo.add_argument(
        "--data",
        type=Path,
        metavar="FILE",
        help=data_help("JSONL of published per-TPS results in DKI Jakarta", DATA_FILE),
    )
    demo.add_argument(
        "--wilayah",
        type=Path,
        metavar="FILE",
        help=data_help("the commission's region table", WILAYAH_FILE),
    )
    demo.add_argument(
        "--tps",
        type=Path,
        metavar="FILE",
        help=data_help("the commission's polling-station table", TPS_FILE),
    )
    demo.add_argument(
        "--count",
        type=int,
        default=1000,
        help="how many polling stations of --data to use (default 1000)",
    )
    demo.add_argument(
        "--admin-key", type=Path, help="admin key file (default: DIR/admin.key)"
    )
    demo.add_argument(
        "--passphrase-file",
        type=Path,
        help="key passphrase file (default: SAKSI_KEY_PASSPHRASE)",
    )
    demo.add_argument("--json", action="store_true", help="print JSON")
    demo.set_defaults(func=cmd_demo)
