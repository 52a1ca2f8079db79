"""What every ``saksi-verify`` command shares: inputs, trust flags, exit codes.

Trust comes only from explicit inputs (``--key``, ``--origin``, ``--witness``),
never from what the log serves. ``Exit`` carries a failure to ``main`` with its
exit code: 0 verified, 1 verification failed, 2 usage, 3 network or I/O.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

from verifier.checkpoint import Checkpoint
from verifier.cosignature import WitnessPolicy, verify_cosigned
from verifier.errors import MalformedInput, VerificationError
from verifier.note import VerifierKey
from verifier.observe import ObserverState, default_state_dir
from verifier.record import RECORD_PAYLOAD_TYPE, parse_log_entry, parse_record
from verifier.tile_client import FetchError, TileLog, http_fetch
from verifier.trusted_log import Fork

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_IO = 0, 1, 2, 3
MAX_INPUT_FILE = 1 << 22  # receipts, entries, proofs, checkpoints, evidence

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class Exit(Exception):
    """A command ends here: its exit code, message, hint and JSON detail."""

    def __init__(
        self,
        code: int,
        message: str,
        hint: str = "",
        detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint
        self.detail = detail or {}


# -- inputs ----------------------------------------------------------------------


def read(path: Path, what: str) -> bytes:
    """The bytes of a file the command line names (bounded)."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_INPUT_FILE + 1)
    except OSError as e:
        # A file the command line names that is not there, or cannot be read, is
        # I/O (3), as for every saksi command.
        raise Exit(EXIT_IO, f"cannot read {what} {path}: {e.strerror}") from e
    if len(data) > MAX_INPUT_FILE:
        raise Exit(EXIT_USAGE, f"{what} {path} is larger than {MAX_INPUT_FILE} bytes")
    return data


def vkey(text: str, what: str) -> VerifierKey:
    """A verifier key given as the key itself or as a file holding it."""
    candidate = text.strip()
    if candidate.count("+") >= 2 and not Path(candidate).exists():
        source = candidate
    else:
        source = read(Path(text), what).decode("utf-8", "replace").strip()
    try:
        return VerifierKey.parse(source)
    except VerificationError as e:
        raise Exit(
            EXIT_USAGE,
            f"{what} {text[:80]}: not a verifier key: {e}",
            "pass the key (name+id+base64) or a file holding it",
        ) from e


def log_key(args: argparse.Namespace) -> VerifierKey:
    """The log's key (``--key``)."""
    return vkey(str(args.key), "--key")


def origin(args: argparse.Namespace, key: VerifierKey) -> str:
    """The pinned origin (``--origin``, else the key's name)."""
    return str(args.origin or key.name)


def policy(args: argparse.Namespace) -> WitnessPolicy:
    """The witness policy (``--witness``, ``--min-witnesses``)."""
    witnesses = tuple(vkey(w, "--witness") for w in args.witness or ())
    quorum = len(witnesses) if args.min_witnesses is None else args.min_witnesses
    try:
        return WitnessPolicy(witnesses, quorum)
    except MalformedInput as e:
        raise Exit(EXIT_USAGE, str(e), "--witness takes a cosigner key") from e


def state(args: argparse.Namespace, key: VerifierKey) -> ObserverState:
    """This observer's state for the log (``--state``)."""
    return ObserverState(args.state or default_state_dir(), key, origin(args, key))


def open_log(url: str) -> tuple[TileLog, bytes, str]:
    """(the tiles reader, the served checkpoint, the tiles prefix) of ``url``.

    The prefix is ``url`` itself, or ``url/log`` for a Saksi service's base URL.
    """
    try:
        first = TileLog(http_fetch(url))
        try:
            return first, first.checkpoint(), url.rstrip("/")
        except FetchError as e:
            if e.status != 404:
                raise
        prefix = url.rstrip("/") + "/log"
        second = TileLog(http_fetch(prefix))
        return second, second.checkpoint(), prefix
    except FetchError as e:
        raise Exit(EXIT_IO, str(e), "check --log and that the log is up") from e


def verify_note(
    note: bytes, key: VerifierKey, origin: str, policy: WitnessPolicy, what: str
) -> tuple[Checkpoint, dict[str, int]]:
    """The checkpoint of ``note`` and its cosigners' timestamps, or exit 1."""
    try:
        checkpoint, _, cosigned = verify_cosigned(note, key, origin, policy)
    except VerificationError as e:
        raise Exit(
            EXIT_FAILED,
            f"{what} does not verify: {e}",
            "check --key, --origin and --witness; if they are right, the log is "
            "not what it claims",
            {"checkpoint": note.decode("utf-8", "replace")},
        ) from e
    return checkpoint, cosigned


def describe(entry: bytes) -> dict[str, Any] | None:
    """Schema, subject and revision when the entry is a Saksi record."""
    try:
        logged = parse_log_entry(entry)
        if logged.envelope.payload_type != RECORD_PAYLOAD_TYPE:
            return None
        record = parse_record(logged.envelope.payload)
    except VerificationError:
        return None
    return {
        "schema": record.schema,
        "subject": record.subject,
        "revision": record.revision,
        "logged_at": logged.logged_at,
    }


# -- failures --------------------------------------------------------------------


def fork(e: Fork, state: ObserverState, key: VerifierKey) -> Exit:
    """Keep the evidence of ``e`` beside the state; exit 1 pointing at it."""
    path = state.record_evidence(e.evidence)
    return Exit(
        EXIT_FAILED,
        str(e),
        f"keep {path} and publish it: anyone can re-check it with "
        f"'saksi-verify consistency --key {key} --evidence {path}'",
        {"evidence": e.evidence, "evidence_file": str(path)},
    )


def io(e: FetchError) -> Exit:
    """The log could not be read: exit 3."""
    return Exit(EXIT_IO, str(e), "the log could not be read: try again later")


# -- output ----------------------------------------------------------------------


def progress(label: str, total: int) -> Callable[[int], None]:
    """Show ``done/total`` on standard error (a terminal; else only at the end)."""
    tty = sys.stderr.isatty()

    def show(done: int) -> None:
        if tty or done == total:
            share = done * 100 // max(total, 1)
            print(f"\r{label}: {done:,}/{total:,} ({share}%)", end="", file=sys.stderr)
            if done == total:
                print(file=sys.stderr)

    return show


# -- the parser ------------------------------------------------------------------


def add_common(
    parser: argparse.ArgumentParser, *, log: bool = True, witnesses: bool = True
) -> None:
    """The flags of the log, its key, this observer's state and ``--json``."""
    if log:
        parser.add_argument(
            "--log", required=True, help="the log's tiles prefix or Saksi base URL"
        )
    parser.add_argument(
        "--key", required=True, help="the log's verifier key, or a file holding it"
    )
    parser.add_argument("--origin", help="the checkpoint origin (default: key name)")
    parser.add_argument(
        "--state",
        type=Path,
        help="where this observer keeps what it trusts "
        "(default $SAKSI_VERIFY_STATE or ~/.local/state/saksi-verify)",
    )
    if witnesses:
        parser.add_argument(
            "--witness",
            action="append",
            metavar="VKEY",
            help="a witness's cosigner key (or file); repeat for each",
        )
        parser.add_argument(
            "--min-witnesses",
            type=int,
            metavar="K",
            help="cosignatures needed (default: every --witness)",
        )
    parser.add_argument("--json", action="store_true", help="print JSON")
