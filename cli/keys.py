"""``saksi keys new|show|export|import``: local work on key files.

Local key work needs only key files. The commands that write to a log (``keys
grant|revoke|list``, ``submit``) are in ``cli.grants`` and ``cli.submit``;
``keys provision`` is in ``cli.provision``. Passphrases come from
``SAKSI_KEY_PASSPHRASE`` (or a file); they never appear in output. Exit codes:
the table in ``cli.run``.
"""

from __future__ import annotations

import argparse
import base64
from pathlib import Path
from typing import Any

from cli.args import common_flags, load_signer, passphrase_of, public_key_of, read_pem
from cli.run import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CommandError, emit, key_error
from keys.errors import KeyLoadError
from keys.keyfile import KdfProfile, write_key_file
from keys.pem import private_key_to_pem, public_key_to_pem, signer_from_pem
from keys.signer import Ed25519Signer
from verifier.dsse import key_id
from verifier.note import VerifierKey

__all__ = ["add_commands"]


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
    data = read_pem(args.pem)
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


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Register ``keys new|show|export|import``; return the ``keys`` subparsers.

    The commands that write to a log (grant, revoke, list) and ``provision``
    are added by ``cli.grants`` and ``cli.provision``, which may open a log's
    database.
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
