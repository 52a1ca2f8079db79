"""What ``saksi`` prints and exits with when a command fails unexpectedly.

``run_command`` (``cli.run``, which knows the ledger's and the client's errors
too) turns every failure into one ``saksi: error:`` line, a hint and an exit
code of the table in ``cli.run``; a traceback only with ``-v``.
"""

from __future__ import annotations

import argparse
import json

import pytest

from cli.run import EXIT_FAILED, EXIT_IO, EXIT_USAGE, CommandError, run_command
from ledger.errors import (
    EntryRejected,
    IntegrityFailure,
    Pushback,
    StorageUnavailable,
    WriterLockHeld,
)
from saksi_client import Refused, TransportError
from verifier.errors import ProofInvalid, VerificationError


def _args(error: BaseException, verbose: int = 0, json_out: bool = False):
    def fail(_args: argparse.Namespace) -> int:
        raise error

    return argparse.Namespace(func=fail, verbose=verbose, json=json_out)


def test_an_unexpected_error_is_one_line_that_says_it_is_a_bug(capsys):
    code = run_command(_args(TypeError("'NoneType' object is not subscriptable")))
    err = capsys.readouterr().err
    assert code == EXIT_FAILED
    assert "Traceback" not in err
    lines = err.splitlines()
    assert lines[0] == (
        "saksi: error: internal error (TypeError): "
        "'NoneType' object is not subscriptable"
    )
    assert lines[1].startswith("saksi: hint: this is a bug")
    assert "saksi -v" in lines[1]
    assert len(lines) == 2


def test_verbose_shows_the_traceback_of_an_unexpected_error(capsys):
    code = run_command(_args(KeyError("region"), verbose=1))
    err = capsys.readouterr().err
    assert code == EXIT_FAILED
    assert "Traceback (most recent call last)" in err
    assert "saksi: error: internal error (KeyError): 'region'" in err


def test_an_unexpected_error_with_json_is_json_too(capsys):
    code = run_command(_args(ValueError("bad"), json_out=True))
    out = capsys.readouterr().out
    assert code == EXIT_FAILED
    answer = json.loads(out)
    assert answer["ok"] is False
    assert answer["error"] == "internal error (ValueError): bad"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (IntegrityFailure("stored tree head does not match"), EXIT_FAILED),
        (EntryRejected("bad record"), EXIT_FAILED),
        (StorageUnavailable("database is locked"), EXIT_IO),
        (WriterLockHeld("another writer"), EXIT_IO),
        (Pushback("busy"), EXIT_IO),
        (VerificationError("bad signature"), EXIT_FAILED),
        (ProofInvalid("root mismatch"), EXIT_FAILED),
        (Refused(403, {"type": "/problems/forbidden", "detail": "no"}), EXIT_FAILED),
        (TransportError("connection refused"), EXIT_IO),
        (FileNotFoundError(2, "No such file or directory", "x.json"), EXIT_IO),
        (FileExistsError(17, "File exists", "k.key"), EXIT_USAGE),
        (CommandError("nope", "do this", EXIT_USAGE), EXIT_USAGE),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_errors_that_escape_a_command_get_their_exit_code(capsys, error, code):
    assert run_command(_args(error)) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "internal error" not in err
    assert err.startswith("saksi: error: ")
    assert "\nsaksi: hint: " in err


def test_interrupted_is_exit_3_without_a_traceback(capsys):
    assert run_command(_args(KeyboardInterrupt())) == EXIT_IO
    assert capsys.readouterr().err == "saksi: interrupted\n"


def test_a_missing_module_is_not_hidden():
    # The launcher (cli.__main__) names a missing server package; any other
    # missing module is a broken install and must show as it is.
    with pytest.raises(ModuleNotFoundError):
        run_command(_args(ModuleNotFoundError("No module named 'x'", name="x")))
