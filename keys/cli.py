"""``saksi keys new|show|export|import``, and what every saksi command shares.

Local key work needs only key files. The commands that write to a log (``keys
grant|revoke|list``, ``submit``) are in ``ledger.logcli``. Passphrases come from
``SAKSI_KEY_PASSPHRASE`` (or a file); they never appear in output.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any

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
    "load_signer",
    "passphrase_of",
    "public_key_of",
    "run_command",
]

# What every saksi subcommand shares lives here, the lowest package with a CLI
# (``ledger.cli`` imports it; ``keys`` may not import ``ledger``).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_IO = 0, 1, 2, 3


class CommandError(Exception):
    """A failure the user can fix; ``hint`` says how."""

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
    """Run a parsed subcommand; turn expected failures into a message and exit code."""
    try:
        code: int = args.func(args)
        return code
    except CommandError as e:
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "error": str(e), "hint": e.hint}))
        print(f"saksi: error: {e}\nsaksi: hint: {e.hint}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        print(f"saksi: error: {e.strerror or e}", file=sys.stderr)
        return EXIT_IO


def passphrase_of(args: argparse.Namespace) -> bytes:
    """The key passphrase (``--passphrase-file`` or SAKSI_KEY_PASSPHRASE)."""
    try:
        return read_passphrase(getattr(args, "passphrase_file", None))
    except KeyLoadError as e:
        raise CommandError(str(e), "export SAKSI_KEY_PASSPHRASE=...") from e


def load_signer(path: Path, passphrase: bytes) -> Ed25519Signer:
    """Open an encrypted key file, or fail with a hint."""
    try:
        return load_key_file(path, passphrase)
    except KeyLoadError as e:
        raise CommandError(str(e), "check the key file and its passphrase") from e


def _describe(public: bytes, name: str) -> dict[str, Any]:
    return {
        "keyid": key_id(public),
        "public_key": base64.b64encode(public).decode(),
        "public_key_hex": public.hex(),
        "verifier_key": str(VerifierKey.from_public_key(name, public)),
    }


def cmd_new(args: argparse.Namespace) -> int:
    """Generate a key and write it encrypted (Argon2id + secretbox, 0600)."""
    signer = Ed25519Signer.generate(args.name)
    try:
        write_key_file(
            args.out, signer, passphrase_of(args), KdfProfile[args.kdf.upper()]
        )
    except KeyLoadError as e:
        raise CommandError(str(e), "choose a new --out path", 1) from e
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
        return public_key_from_pem(data), args.name
    except (OSError, KeyLoadError) as e:
        raise CommandError(f"cannot read {args.pem}: {e}", "pass a PEM file") from e


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
    if not written:
        raise CommandError("nothing to export", "pass --public-pem or --private-pem", 2)
    emit(
        args, {"written": written, "keyid": signer.keyid}, "wrote " + ", ".join(written)
    )
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    """Turn a PKCS#8 PEM into a Saksi key file."""
    passphrase = passphrase_of(args)
    try:
        pem_secret = None if args.unencrypted else passphrase
        signer = signer_from_pem(args.pem.read_bytes(), pem_secret, args.name)
        write_key_file(args.out, signer, passphrase, KdfProfile[args.kdf.upper()])
    except OSError as e:
        raise CommandError(
            f"cannot read {args.pem}: {e.strerror}", "check the path"
        ) from e
    except KeyLoadError as e:
        raise CommandError(str(e), "check the PEM, its passphrase and --out", 1) from e
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
            f"{path} exists", "never overwrite keys: pick a new path", 1
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
    kdf = {"choices": ["interactive", "moderate", "sensitive"], "default": "moderate"}

    new = ksub.add_parser("new", help="generate a key file")
    new.add_argument("--out", type=Path, required=True)
    new.add_argument("--name", default="saksi-key", help="key name (for notes)")
    new.add_argument("--kdf", **kdf)  # type: ignore[arg-type]
    common_flags(new)
    new.set_defaults(func=cmd_new)

    show = ksub.add_parser("show", help="key id, public key, verifier key string")
    group = show.add_mutually_exclusive_group(required=True)
    group.add_argument("--key", type=Path, help="a Saksi key file")
    group.add_argument("--pem", type=Path, help="a public or private PEM")
    show.add_argument("--name", default="saksi-key")
    common_flags(show)
    show.set_defaults(func=cmd_show)

    export = ksub.add_parser("export", help="write PEM files from a key file")
    export.add_argument("--key", type=Path, required=True)
    export.add_argument("--public-pem", type=Path)
    export.add_argument("--private-pem", type=Path)
    export.add_argument(
        "--unencrypted", action="store_true", help="private PEM in clear"
    )
    common_flags(export)
    export.set_defaults(func=cmd_export)

    imp = ksub.add_parser("import", help="make a key file from a PKCS#8 PEM")
    imp.add_argument("--pem", type=Path, required=True)
    imp.add_argument("--out", type=Path, required=True)
    imp.add_argument("--name", default="saksi-key")
    imp.add_argument("--unencrypted", action="store_true", help="the PEM is in clear")
    imp.add_argument("--kdf", **kdf)  # type: ignore[arg-type]
    common_flags(imp)
    imp.set_defaults(func=cmd_import)
    return ksub
