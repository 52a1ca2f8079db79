"""What the election commands share: their input files, submitting, reporting.

Input files: the default data files (``SAKSI_DATA_DIR`` or the checkout's
``../shared/data``, never the current directory) and the errors of reading
them (a malformed file is a usage error, exit 2, naming the file, the line and
what was expected; an unreadable one exit 3). Submitting: what the log does not
hold yet, signed and sent in batches (``domains.submit``), every receipt
verified, its failures as CLI errors. Reporting: the summaries' common lines.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from cli.args import load_signer, passphrase_of
from cli.connect import client_errors, head_of, open_log
from cli.run import EXIT_IO, EXIT_USAGE, CommandError
from domains.inputs import DATA_DIR_VARIABLE, MalformedInput, OnBad, data_dir
from domains.kawalpemilu import Matching, match_regions, read_nodes
from domains.regions import WILAYAH_FILE
from domains.submit import submit_new
from saksi_client import Receipt, Refused

__all__ = [
    "EXTRACT_HINT",
    "SIREKAP_HINT",
    "WILAYAH_HINT",
    "data_file",
    "data_help",
    "input_errors",
    "kawalpemilu_input",
    "listed",
    "progress",
    "refusals",
    "run_submit",
    "tail",
    "unmatched",
]

_T = TypeVar("_T")


def progress(label: str) -> Callable[[int, int], None]:
    """A ``(done, total)`` progress line on stderr (the last one only if piped)."""

    def show(done: int, total: int) -> None:
        if sys.stderr.isatty() or done == total:
            print(f"\r{label}: {done:,}/{total:,}", end="", file=sys.stderr)
            if done == total:
                print(file=sys.stderr)

    return show


def run_submit(
    args: argparse.Namespace,
    schema: str,
    records: list[tuple[str, dict[str, Any]]],
    label: str,
) -> tuple[list[tuple[str, Receipt]], list[tuple[str, Refused]], list[str]]:
    """``submit_new`` with ``--key`` to the log of ``--url``/``--db`` (CLI errors)."""
    signer = load_signer(args.key, passphrase_of(args))
    with open_log(args) as client, client_errors("check the batch limits of the log"):
        return submit_new(
            client,
            signer,
            schema,
            records,
            progress(label),
            functools.partial(head_of, client),
        )


def data_file(given: Path | None, relative: str, flag: str, what: str) -> Path:
    """The file passed as ``flag``, else the default data file ``relative``.

    The default is under ``SAKSI_DATA_DIR``, else the checkout's
    ``../shared/data`` (never the current directory).

    Raises:
        CommandError: the file is not there (exit 3), naming the path tried and
            the flag to pass.
    """
    if given is not None:
        path, default = given, ""
    else:
        directory, source = data_dir()
        path = directory / relative
        default = f" (the default {relative} under {directory}, from {source})"
    if not path.is_file():
        state = "is a directory" if path.is_dir() else "not found"
        hint = f"check the path given to {flag}"
        if given is None:
            hint = f"pass {flag} FILE"
            hint += (
                f", or set {DATA_DIR_VARIABLE} to the folder that holds "
                f"{relative.split('/', 1)[0]}/"
            )
        raise CommandError(f"{what} {path}: {state}{default}", hint, EXIT_IO)
    return path


@contextlib.contextmanager
def input_errors(files: Mapping[Path, tuple[str, str]]) -> Iterator[None]:
    """Turn a malformed input file (exit 2) or an unreadable one (3) into errors.

    ``files`` maps each input file to what it is ("the 2019 extract") and the
    hint for it; a file it does not name (one in a directory) gets the hint of
    the first.

    Raises:
        CommandError: for a ``MalformedInput`` or an ``OSError`` in the block.
    """
    default = ("", next(iter(files.values()))[1])
    try:
        yield
    except MalformedInput as e:
        what, hint = files.get(e.bad.path, default)
        raise CommandError(
            f"cannot read {what + ' ' if what else ''}{e.bad}", hint, EXIT_USAGE
        ) from e
    except OSError as e:
        path = Path(e.filename) if isinstance(e.filename, str) else None
        what, hint = files.get(path, default) if path else default
        where = e.filename or ", ".join(str(p) for p in files)
        raise CommandError(
            f"cannot read {what + ' ' if what else ''}{where}: {e.strerror or e}",
            hint,
            EXIT_IO,
        ) from e


SIREKAP_HINT = (
    "pass a JSONL file (gzip or not) of one {kode_tps, data} object per line, "
    "or a directory of <13-digit station code>.json files"
)
WILAYAH_HINT = (
    "pass --wilayah FILE, the commission's region table: a CSV (gzip or not) with "
    "the columns {columns} (sirekap_wilayah_ppwp.csv)"
)


def listed(lines: list[str], shown: int = 20) -> str:
    """Indented lines for a summary, the first ``shown`` of them."""
    more = len(lines) - shown
    return "".join(f"\n  {line}" for line in lines[:shown]) + (
        f"\n  … and {more:,} more (--json lists all)" if more > 0 else ""
    )


def tail(matching: Matching | None, refused: list[tuple[str, Refused]]) -> str:
    """The end of a human summary: unmatched regions, then the refusals."""
    count = len(matching.unmatched) if matching else 0
    note = f"; {count} regions of the extract not matched" if count else ""
    return note + listed(
        [f"{s}: {r.cause}: {r.problem.get('detail')}" for s, r in refused]
    )


def refusals(refused: list[tuple[str, Refused]]) -> list[dict[str, Any]]:
    """The refusals as JSON: subject, cause, detail."""
    return [
        {"subject": s, "cause": r.cause, "detail": r.problem.get("detail")}
        for s, r in refused
    ]


EXTRACT_HINT = (
    "pass the KawalPemilu extract: JSONL (gzip or not), one node document per line"
)


def kawalpemilu_input(
    args: argparse.Namespace,
    build: Callable[[dict[int, Any], Matching], Iterable[_T]],
    on_bad: OnBad = None,
    hint: str = EXTRACT_HINT,
) -> tuple[list[_T], Matching]:
    """Read and match the extract, and build from it, all under one guard."""
    wilayah = data_file(args.wilayah, WILAYAH_FILE, "--wilayah", "the region table")
    with input_errors(
        {
            args.path: ("the 2019 extract", hint),
            wilayah: (
                "the region table",
                WILAYAH_HINT.format(columns="kode, parent, nama"),
            ),
        }
    ):
        nodes = read_nodes(args.path, on_bad)
        matching = match_regions(nodes, wilayah)
        return list(build(nodes, matching)), matching


def unmatched(matching: Matching | None) -> list[dict[str, Any]]:
    """The regions of the extract left unmatched, as JSON."""
    if matching is None:
        return []
    return [{"node": n, "where": w} for n, w in matching.unmatched]


def data_help(what: str, relative: str) -> str:
    """Help for a data-file flag: what it is and the default file, resolved."""
    directory, source = data_dir()
    return f"{what} (default: {directory / relative}, from {source})"
