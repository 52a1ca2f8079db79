"""What many ``saksi`` commands take: common flags, key files, region codes.

Passphrases come from ``SAKSI_KEY_PASSPHRASE`` (or a file); they never appear
in output. Where the log is (``--url``, ``--db``) is ``cli.connect``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from cli.run import EXIT_USAGE, CommandError, key_error
from keys.errors import KeyLoadError
from keys.keyfile import load_key_file, read_passphrase
from keys.pem import public_key_from_pem
from keys.signer import Ed25519Signer
from verifier.cosignature import WitnessPolicy
from verifier.errors import MalformedInput
from verifier.note import VerifierKey

__all__ = [
    "common_flags",
    "explorer_pins",
    "load_signer",
    "passphrase_of",
    "public_key_of",
    "read_pem",
    "region_arg",
    "witness_policy",
]


def common_flags(parser: argparse.ArgumentParser) -> None:
    """``--passphrase-file`` and ``--json``, which every command takes."""
    parser.add_argument("--passphrase-file", type=Path, help="key passphrase file")
    parser.add_argument("--json", action="store_true", help="print JSON")


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


def read_pem(path: Path) -> bytes:
    """The bytes of the ``--pem`` file.

    Raises:
        CommandError: it cannot be read (exit 3).
    """
    try:
        return path.read_bytes()
    except OSError as e:
        raise CommandError(
            f"cannot read {path}: {e.strerror or e}", "check the --pem path"
        ) from e


def public_key_of(args: argparse.Namespace) -> tuple[bytes, str]:
    """The public key and name from ``--key FILE`` or ``--pem FILE``."""
    if args.key is not None:
        signer = load_signer(args.key, passphrase_of(args))
        return signer.public_key, signer.name
    data = read_pem(args.pem)
    try:
        return public_key_from_pem(data), args.name
    except KeyLoadError as e:
        raise CommandError(
            f"{args.pem}: {e}", "pass an Ed25519 public or private PEM", EXIT_USAGE
        ) from e


def region_arg(text: str, flag: str) -> str:
    """A region code given on the command line ("" for national, or "all").

    Raises:
        CommandError: not national, all, or a 2, 4, 6 or 10-digit code (exit 2).
    """
    code = "" if text in ("national", "all", "") else text
    if code and (not code.isdigit() or len(code) not in (2, 4, 6, 10)):
        raise CommandError(
            f"{flag} {text[:40]!r} is not a region code",
            "use national or a 2, 4, 6 or 10-digit code, e.g. 3171",
            EXIT_USAGE,
        )
    return code


def witness_policy(args: argparse.Namespace) -> WitnessPolicy:
    """The witness policy of ``--witness`` (keys or files) and ``--min-witnesses``.

    Raises:
        CommandError: a key that does not parse, or an impossible quorum (2).
    """
    try:
        witnesses = [
            VerifierKey.parse(Path(w).read_text().strip() if Path(w).is_file() else w)
            for w in args.witness or ()
        ]
        quorum = len(witnesses) if args.min_witnesses is None else args.min_witnesses
        return WitnessPolicy(tuple(witnesses), quorum)
    except MalformedInput as e:
        raise CommandError(str(e), "--witness takes a cosigner key", EXIT_USAGE) from e


def explorer_pins(
    texts: Sequence[str] | None,
    quorum: int | None,
    given: Sequence[VerifierKey] = (),
) -> list[VerifierKey]:
    """``--explorer-witness`` keys after ``given`` ones, checked with the quorum.

    The keys the results explorer's ``trust.json`` pins (``saksi serve``,
    ``saksi publish --explorer``); ``explorer.trust_policy`` decides.

    Raises:
        CommandError: a key that does not parse or is not a cosigner's, or a
            quorum out of range (2).
    """
    from explorer import trust_policy

    try:
        pinned = [*given, *(VerifierKey.parse(text) for text in texts or ())]
        trust_policy(pinned, quorum)
    except (MalformedInput, ValueError) as e:
        raise CommandError(
            f"--explorer-witness/--explorer-quorum: {e}",
            "pin witnesses' cosigner keys (name+id+key, type 0x04) and a quorum "
            "from 0 to their number",
            EXIT_USAGE,
        ) from e
    return pinned
