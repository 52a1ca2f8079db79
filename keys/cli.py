"""``saksi keys new|show|export|import``, and what every saksi command shares.

Local key work needs only key files. The commands that write to a log (``keys
grant|revoke|list``, ``submit``) are in ``ledger.logcli``. Passphrases come from
``SAKSI_KEY_PASSPHRASE`` (or a file); they never appear in output.

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
import base64
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nacl.exceptions

from keys.errors import KeyLoadError
from keys.keyfile import KdfProfile, load_key_file, read_passphrase, write_key_file
from keys.pem import (
    private_key_to_pem,
    public_key_from_pem,
    public_key_to_pem,
    signer_from_pem,
)
from keys.signer import Ed25519Signer
from verifier.dsse import key_id
from verifier.errors import VerificationError
from verifier.note import VerifierKey

__all__ = [
    "EXIT_FAILED",
    "EXIT_IO",
    "EXIT_OK",
    "EXIT_USAGE",
    "CommandError",
    "add_commands",
    "common_flags",
    "emit",
    "key_error",
    "load_signer",
    "passphrase_of",
    "public_key_of",
    "run_command",
]

# What every saksi subcommand shares lives here, the lowest package with a CLI
# (``ledger.cli`` imports it; ``keys`` may not import ``ledger``). The meaning
# of each code: the table in the module docstring.
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


Translate = Callable[[Exception], CommandError | None]


def run_command(args: argparse.Namespace, translate: Translate | None = None) -> int:
    """Run a parsed subcommand; every failure becomes one message and exit code.

    ``translate`` turns the errors of a higher layer (``ledger.cli`` passes the
    ledger's and the client's) into a ``CommandError``, or returns None. An
    ``ImportError`` is raised on: the ``saksi`` launcher (``api.__main__``)
    names the missing extra, and a module of ours that is missing is shown.
    Anything else unexpected is an internal error: one line, exit 1, and the
    traceback only with ``-v``.
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
        error = (translate and translate(e)) or _known(e)
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


def passphrase_of(args: argparse.Namespace) -> bytes:
    """The key passphrase (``--passphrase-file`` or SAKSI_KEY_PASSPHRASE).

    Raises:
        CommandError: none is set (exit 2), or its file cannot be read (3).
    """
    try:
        return read_passphrase(getattr(args, "passphrase_file", None))
    except KeyLoadError as e:
        raise key_error(
            e,
            "export SAKSI_KEY_PASSPHRASE=..., or pass --passphrase-file FILE "
            "(SAKSI_KEY_PASSPHRASE_FILE) naming a readable file",
        ) from e


def load_signer(path: Path, passphrase: bytes) -> Ed25519Signer:
    """Open an encrypted key file, or fail with a hint.

    Raises:
        CommandError: see ``key_error`` for the exit codes.
    """
    try:
        return load_key_file(path, passphrase)
    except KeyLoadError as e:
        raise key_error(e, "check the key file and its passphrase") from e


def _describe(public: bytes, name: str) -> dict[str, Any]:
    return {
        "keyid": key_id(public),
        "public_key": base64.b64encode(public).decode(),
        "public_key_hex": public.hex(),
        "verifier_key": str(VerifierKey.from_public_key(name, public)),
    }


def _write_key(
    args: argparse.Namespace, signer: Ed25519Signer, passphrase: bytes
) -> None:
    """Write ``signer`` to ``--out`` at ``--kdf``; never over an existing file.

    Raises:
        CommandError: the file exists (2), or cannot be written (3).
    """
    try:
        write_key_file(args.out, signer, passphrase, KdfProfile[args.kdf.upper()])
    except KeyLoadError as e:
        raise key_error(
            e, "choose a new --out path (keys are never overwritten)"
        ) from e
    except OSError as e:
        raise CommandError(
            f"cannot write {args.out}: {e.strerror or e}", "check the --out path"
        ) from e


def cmd_new(args: argparse.Namespace) -> int:
    """Generate a key and write it encrypted (Argon2id + secretbox, 0600)."""
    signer = Ed25519Signer.generate(args.name)
    _write_key(args, signer, passphrase_of(args))
    info = _describe(signer.public_key, signer.name) | {"file": str(args.out)}
    emit(
        args,
        info,
        f"wrote {args.out}\nkey id: {info['keyid']}\n"
        f"public key: {info['public_key_hex']}\nverifier key: {info['verifier_key']}",
    )
    return EXIT_OK


def public_key_of(args: argparse.Namespace) -> tuple[bytes, str]:
    """The public key and name from ``--key FILE`` or ``--pem FILE``."""
    if args.key is not None:
        signer = load_signer(args.key, passphrase_of(args))
        return signer.public_key, signer.name
    try:
        data = args.pem.read_bytes()
    except OSError as e:
        raise CommandError(
            f"cannot read {args.pem}: {e.strerror or e}", "check the --pem path"
        ) from e
    try:
        return public_key_from_pem(data), args.name
    except KeyLoadError as e:
        raise CommandError(
            f"{args.pem}: {e}", "pass an Ed25519 public or private PEM", EXIT_USAGE
        ) from e


def cmd_show(args: argparse.Namespace) -> int:
    """Key ID, public key and signed-note verifier key string of a key."""
    public, name = public_key_of(args)
    info = _describe(public, name)
    emit(
        args,
        info,
        f"key id: {info['keyid']}\npublic key: {info['public_key_hex']}\n"
        f"verifier key: {info['verifier_key']}",
    )
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """Write a key file's public key (SPKI PEM) and, if asked, private (PKCS#8)."""
    if not (args.public_pem or args.private_pem):
        raise CommandError(
            "nothing to export", "pass --public-pem or --private-pem", EXIT_USAGE
        )
    passphrase = passphrase_of(args)
    signer = load_signer(args.key, passphrase)
    written = []
    if args.public_pem:
        _write_new(args.public_pem, public_key_to_pem(signer.public_key))
        written.append(str(args.public_pem))
    if args.private_pem:
        secret = None if args.unencrypted else passphrase
        _write_new(args.private_pem, private_key_to_pem(signer, secret), private=True)
        written.append(str(args.private_pem))
    emit(
        args, {"written": written, "keyid": signer.keyid}, "wrote " + ", ".join(written)
    )
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    """Turn a PKCS#8 PEM into a Saksi key file."""
    passphrase = passphrase_of(args)
    try:
        data = args.pem.read_bytes()
    except OSError as e:
        raise CommandError(
            f"cannot read {args.pem}: {e.strerror or e}", "check the --pem path"
        ) from e
    try:
        signer = signer_from_pem(
            data, None if args.unencrypted else passphrase, args.name
        )
    except KeyLoadError as e:
        # An encrypted PEM that does not open is refused; anything else is
        # not what --pem (and --unencrypted) say it is.
        sealed = b"ENCRYPTED PRIVATE KEY" in data and not args.unencrypted
        raise CommandError(
            f"{args.pem}: {e}",
            "check the PEM's passphrase (SAKSI_KEY_PASSPHRASE)"
            if sealed
            else "pass an Ed25519 PKCS#8 private key PEM (--unencrypted if in clear)",
            EXIT_FAILED if sealed else EXIT_USAGE,
        ) from e
    _write_key(args, signer, passphrase)
    emit(args, {"file": str(args.out), "keyid": signer.keyid}, f"wrote {args.out}")
    return EXIT_OK


def _write_new(path: Path, data: bytes, private: bool = False) -> None:
    try:
        with path.open("xb") as handle:
            if private:
                path.chmod(0o600)
            handle.write(data)
    except FileExistsError as e:
        raise CommandError(
            f"{path} exists", "never overwrite keys: pick a new path", EXIT_USAGE
        ) from e
    except OSError as e:
        raise CommandError(
            f"cannot write {path}: {e.strerror or e}", "check the path"
        ) from e


def common_flags(parser: argparse.ArgumentParser) -> None:
    """``--passphrase-file`` and ``--json``, which every command takes."""
    parser.add_argument("--passphrase-file", type=Path, help="key passphrase file")
    parser.add_argument("--json", action="store_true", help="print JSON")


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Register ``keys new|show|export|import``; return the ``keys`` subparsers.

    The commands that write to a log (grant, revoke, list, and ``submit``) are
    added by ``ledger.logcli``, which may open a log's database.
    """
    keys = sub.add_parser("keys", help="create, inspect, grant and revoke keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    kdf = {
        "choices": ["interactive", "moderate", "sensitive"],
        "default": "moderate",
        "help": "Argon2id cost of the key file (default: moderate)",
    }

    new = ksub.add_parser("new", help="generate a key file")
    new.add_argument(
        "--out",
        type=Path,
        required=True,
        help="the key file to write (mode 0600; an existing file is never overwritten)",
    )
    new.add_argument("--name", default="saksi-key", help="key name (for notes)")
    new.add_argument("--kdf", **kdf)  # type: ignore[arg-type]
    common_flags(new)
    new.set_defaults(func=cmd_new)

    show = ksub.add_parser("show", help="key id, public key, verifier key string")
    group = show.add_mutually_exclusive_group(required=True)
    group.add_argument("--key", type=Path, help="a Saksi key file")
    group.add_argument("--pem", type=Path, help="a public or private PEM")
    show.add_argument(
        "--name",
        default="saksi-key",
        help="with --pem: the key name in the verifier key string (default: "
        "saksi-key; a key file has its own)",
    )
    common_flags(show)
    show.set_defaults(func=cmd_show)

    export = ksub.add_parser("export", help="write PEM files from a key file")
    export.add_argument(
        "--key", type=Path, required=True, help="the Saksi key file to export"
    )
    export.add_argument(
        "--public-pem",
        type=Path,
        help="write the public key here (SubjectPublicKeyInfo PEM; never overwritten)",
    )
    export.add_argument(
        "--private-pem",
        type=Path,
        help="write the private key here (PKCS#8 PEM encrypted with the "
        "passphrase unless --unencrypted; mode 0600, never overwritten)",
    )
    export.add_argument(
        "--unencrypted", action="store_true", help="private PEM in clear"
    )
    common_flags(export)
    export.set_defaults(func=cmd_export)

    imp = ksub.add_parser("import", help="make a key file from a PKCS#8 PEM")
    imp.add_argument(
        "--pem",
        type=Path,
        required=True,
        help="the Ed25519 PKCS#8 private key PEM (encrypted with the passphrase "
        "unless --unencrypted)",
    )
    imp.add_argument(
        "--out",
        type=Path,
        required=True,
        help="the key file to write (mode 0600; an existing file is never overwritten)",
    )
    imp.add_argument(
        "--name", default="saksi-key", help="the key's name (default: saksi-key)"
    )
    imp.add_argument("--unencrypted", action="store_true", help="the PEM is in clear")
    imp.add_argument("--kdf", **kdf)  # type: ignore[arg-type]
    common_flags(imp)
    imp.set_defaults(func=cmd_import)
    return ksub
