"""How every ``saksi`` command runs: the exit-code table, errors and output.

Exit codes, the one table for every ``saksi`` command (``saksi-verify`` keeps
the same four; ``run_command`` turns every failure into one of them):

====  =====================================================================
0     done: what was asked is done, or the check passed
1     failed or refused: a check found a difference or a bad signature, the
      log refused the record, a pinned key does not match, a key does not
      open with the passphrase given; also an internal error (a bug, said so
      in the message), as Python exits on an uncaught exception
2     usage: the command cannot work as given: a missing, unknown or
      conflicting flag, a bad value, a malformed input file, no passphrase
      set, a target that already holds a key or a log (never overwritten)
3     I/O: a file named cannot be read or written, the network or the
      database cannot be reached, the port is busy, or the command was
      interrupted (Ctrl-C); running it again may work
====  =====================================================================

Every failure prints ``saksi: error: ...`` and ``saksi: hint: ...`` on
standard error (and ``{"ok": false, ...}`` on standard output with
``--json``); a traceback only with ``saksi -v``.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from typing import Any

import nacl.exceptions

from keys.errors import KeyLoadError
from ledger.errors import EntryRejected, IntegrityFailure, LedgerError, OutOfRange
from saksi_client import Refused, TransportError
from verifier.errors import VerificationError

__all__ = [
    "EXIT_FAILED",
    "EXIT_IO",
    "EXIT_OK",
    "EXIT_USAGE",
    "CommandError",
    "emit",
    "key_error",
    "run_command",
]

# The meaning of each code: the table in the module docstring.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_IO = 0, 1, 2, 3

_REPORT = "this is a bug: please report it with the command you ran"


class CommandError(Exception):
    """A failure the user can fix; ``hint`` says how, ``code`` is its exit code."""

    def __init__(self, message: str, hint: str, code: int = EXIT_IO) -> None:
        super().__init__(message)
        self.hint = hint
        self.code = code


def emit(args: argparse.Namespace, result: dict[str, Any], text: str) -> None:
    """Print one result: JSON with --json, else the human line."""
    if getattr(args, "json", False):
        print(json.dumps(result, sort_keys=True))
    else:
        print(text)


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed subcommand; every failure becomes one message and exit code.

    The ledger's and the client's errors, and those every command can meet,
    get their own message and code. An ``ImportError`` is raised on: the
    ``saksi`` launcher (``cli.__main__``) names the missing extra, and a module
    of ours that is missing is shown. Anything else unexpected is an internal
    error: one line, exit 1, and the traceback only with ``-v``.
    """
    try:
        code: int = args.func(args)
        return code
    except ImportError:
        raise
    except KeyboardInterrupt:
        print("saksi: interrupted", file=sys.stderr)
        return EXIT_IO
    except Exception as e:  # every failure gets one clean line
        verbose = getattr(args, "verbose", 0)
        error = _ledger_error(e) or _known(e)
        if error is None:
            if verbose:
                traceback.print_exc()
            error = CommandError(
                f"internal error ({type(e).__name__}): {str(e)[:300]}",
                _REPORT + ("" if verbose else " ('saksi -v ...' shows where)"),
                EXIT_FAILED,
            )
        elif verbose >= 2:
            traceback.print_exc()  # what lies under an expected failure
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "error": str(error), "hint": error.hint}))
        print(f"saksi: error: {error}\nsaksi: hint: {error.hint}", file=sys.stderr)
        return error.code


def _ledger_error(e: Exception) -> CommandError | None:
    """A ledger or client error that escaped a command, with its exit code."""
    if isinstance(e, IntegrityFailure):
        return CommandError(
            f"the log's storage does not match its signed tree: {e}",
            "run 'saksi check' to find what differs; write nothing to it until "
            "it is explained",
            EXIT_FAILED,
        )
    if isinstance(e, EntryRejected | OutOfRange):
        return CommandError(f"refused ({e.cause}): {e}", "fix the request", EXIT_FAILED)
    if isinstance(e, LedgerError):
        return CommandError(
            f"{e.cause}: {e}", "check that the database is reachable and writable"
        )
    if isinstance(e, Refused):
        return CommandError(str(e), "the problem type names the cause", EXIT_FAILED)
    if isinstance(e, TransportError):
        return CommandError(str(e), "is the log at --url up? Try again later")
    return None


def _known(e: Exception) -> CommandError | None:
    """The failures every command can meet, as a ``CommandError`` (or None)."""
    if isinstance(e, CommandError):
        return e
    if isinstance(e, KeyLoadError):
        return key_error(e, "check the key file and its passphrase")
    if isinstance(e, VerificationError):
        return CommandError(
            f"does not verify: {e}",
            "do not trust what failed; keep the output as evidence",
            EXIT_FAILED,
        )
    if isinstance(e, FileExistsError):
        return CommandError(
            f"{e.filename}: already exists",
            "never overwritten: pick a new path",
            EXIT_USAGE,
        )
    if isinstance(e, OSError):
        where = f"{e.filename}: " if e.filename else ""
        return CommandError(
            f"{where}{e.strerror or e}", "check the path, the network and try again"
        )
    return None


def key_error(e: KeyLoadError, hint: str) -> CommandError:
    """A key that could not be read, opened or written, with its exit code.

    The cause decides: a file that is not there or cannot be read is I/O (3);
    a key that does not open with the passphrase is refused (1); a key file or
    passphrase that is not usable (malformed, too short, none set) and a key
    file that already exists are usage errors (2).
    """
    cause = e.__cause__
    code = EXIT_USAGE
    if isinstance(cause, OSError) and not isinstance(cause, FileExistsError):
        code = EXIT_IO
    elif isinstance(cause, nacl.exceptions.CryptoError):
        code = EXIT_FAILED
    return CommandError(str(e), hint, code)
