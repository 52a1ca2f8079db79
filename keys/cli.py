"""``saksi keys new|show|export|import|grant|revoke|list`` and ``saksi submit``.

Local key work (new, show, export, import) needs only key files. Registry changes
(grant, revoke) and submissions are signed here and sent to a running log with
``saksi_client``, which checks every receipt against the pinned log key before
anything is printed as done. Passphrases come from ``SAKSI_KEY_PASSPHRASE`` (or a
file); they never appear in output.
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
from saksi_client import Receipt, Refused, SaksiClient, TransportError
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
    "emit",
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


def _passphrase(args: argparse.Namespace) -> bytes:
    try:
        return read_passphrase(getattr(args, "passphrase_file", None))
    except KeyLoadError as e:
        raise CommandError(str(e), "export SAKSI_KEY_PASSPHRASE=...") from e


def _load(path: Path, passphrase: bytes) -> Ed25519Signer:
    try:
        return load_key_file(path, passphrase)
    except KeyLoadError as e:
        raise CommandError(str(e), "check the key file and its passphrase") from e


def _describe(public: bytes, name: str) -> dict[str, Any]:
    return {
        "keyid": key_id(public),
        "public_key": base64.b64encode(public).decode(),
        "verifier_key": str(VerifierKey.from_public_key(name, public)),
    }


def cmd_new(args: argparse.Namespace) -> int:
    """Generate a key and write it encrypted (Argon2id + secretbox, 0600)."""
    signer = Ed25519Signer.generate(args.name)
    try:
        write_key_file(
            args.out, signer, _passphrase(args), KdfProfile[args.kdf.upper()]
        )
    except KeyLoadError as e:
        raise CommandError(str(e), "choose a new --out path", 1) from e
    info = _describe(signer.public_key, signer.name) | {"file": str(args.out)}
    emit(args, info, f"wrote {args.out}\nkey id: {info['keyid']}")
    return EXIT_OK


def _public_of(args: argparse.Namespace) -> tuple[bytes, str]:
    if args.key is not None:
        signer = _load(args.key, _passphrase(args))
        return signer.public_key, signer.name
    try:
        data = args.pem.read_bytes()
        return public_key_from_pem(data), args.name
    except (OSError, KeyLoadError) as e:
        raise CommandError(f"cannot read {args.pem}: {e}", "pass a PEM file") from e


def cmd_show(args: argparse.Namespace) -> int:
    """Key ID, public key and signed-note verifier key string of a key."""
    public, name = _public_of(args)
    info = _describe(public, name)
    emit(
        args,
        info,
        f"key id: {info['keyid']}\npublic key: {info['public_key']}\n"
        f"verifier key: {info['verifier_key']}",
    )
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """Write a key file's public key (SPKI PEM) and, if asked, private (PKCS#8)."""
    passphrase = _passphrase(args)
    signer = _load(args.key, passphrase)
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
    passphrase = _passphrase(args)
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


def _client(args: argparse.Namespace) -> SaksiClient:
    text = args.log_key
    path = Path(text)
    if path.exists():
        text = path.read_text(encoding="utf-8").strip()
    try:
        return SaksiClient(args.log, text)
    except VerificationError as e:
        raise CommandError(
            f"bad --log-key: {e}", "pass log.vkey or its verifier key string", 2
        ) from e


def _receipt_out(args: argparse.Namespace, receipt: Receipt, what: str) -> int:
    result = {
        "index": receipt.index,
        "leaf_hash": receipt.leaf_hash.hex(),
        "tree_size": receipt.tree_size,
        "duplicate": receipt.duplicate,
        "logged_at": receipt.logged_at,
        "checkpoint": receipt.checkpoint.decode(),
        "verified": True,
    }
    emit(
        args,
        result,
        f"{what}: entry {receipt.index} (tree size {receipt.tree_size}), "
        "inclusion proof verified against the signed checkpoint"
        + (" (already logged)" if receipt.duplicate else ""),
    )
    return EXIT_OK


def _send(
    args: argparse.Namespace, client: SaksiClient, envelope: dict[str, Any], what: str
) -> int:
    try:
        receipt = client.submit(envelope)
    except Refused as e:
        raise CommandError(
            f"refused ({e.status} {e.cause}): {e.problem.get('detail')}",
            "fix the record; the problem type names the cause",
            EXIT_FAILED,
        ) from e
    except TransportError as e:
        raise CommandError(str(e), "is 'saksi serve' running at --log?") from e
    except VerificationError as e:
        raise CommandError(
            f"the log's receipt does not verify: {e}",
            "do not trust this log; keep the output as evidence",
            EXIT_FAILED,
        ) from e
    return _receipt_out(args, receipt, what)


def _admins(args: argparse.Namespace) -> list[Ed25519Signer]:
    passphrase = _passphrase(args)
    return [_load(p, passphrase) for p in args.admin_key]


def _head(client: SaksiClient, subject: str) -> tuple[int, str] | None:
    try:
        return client.head(subject)
    except TransportError as e:
        raise CommandError(str(e), "is 'saksi serve' running at --log?") from e


def cmd_grant(args: argparse.Namespace) -> int:
    """Sign a keys.grant/v1 record with the admin keys and submit it."""
    client = _client(args)
    public, _ = _public_of(args)
    keyid = key_id(public)
    body: dict[str, Any] = {
        "keyid": keyid,
        "public_key": base64.b64encode(public).decode(),
        "role": args.role,
        "scope": args.scope,
        "holder": args.holder,
    }
    if args.expires_at:
        body["expires_at"] = args.expires_at
    if args.replaces:
        body["replaces"] = args.replaces
    subject = f"keys/{keyid}"
    head = _head(client, subject)
    reason = args.reason or ("grant changed" if head else None)
    payload = client.record("keys.grant/v1", subject, body, reason=reason, after=head)
    return _send(args, client, client.sign(payload, _admins(args)), f"granted {keyid}")


def cmd_revoke(args: argparse.Namespace) -> int:
    """Sign a keys.revoke/v1 record and submit it."""
    client = _client(args)
    subject = f"keys/{args.keyid}"
    head = _head(client, subject)
    if head is None:
        raise CommandError(f"key {args.keyid} was never granted", "check the key id", 1)
    payload = client.record(
        "keys.revoke/v1",
        subject,
        {"keyid": args.keyid, "reason_code": args.reason_code},
        reason=args.reason or f"revoked: {args.reason_code}",
        after=head,
    )
    return _send(
        args, client, client.sign(payload, _admins(args)), f"revoked {args.keyid}"
    )


def cmd_list(args: argparse.Namespace) -> int:
    """The key registry as of a tree size (default: now)."""
    client = _client(args)
    try:
        body = client.keys(args.size)
    except TransportError as e:
        raise CommandError(str(e), "is 'saksi serve' running at --log?") from e
    except Refused as e:
        raise CommandError(str(e), "check --size", EXIT_FAILED) from e
    lines = []
    for k in body["keys"]:
        state = "active" if k["revoked_at"] is None else f"REVOKED at {k['revoked_at']}"
        scope = k["scope"] or "(national)"
        role = k["role"]
        lines.append(
            f"{k['keyid'][:16]}  {role:<15} scope {scope:<13} {state}  {k['holder']}"
        )
    emit(
        args,
        body,
        f"{len(body['keys'])} keys at tree size {body['tree_size']}\n"
        + "\n".join(lines),
    )
    return EXIT_OK


def cmd_submit(args: argparse.Namespace) -> int:
    """Sign a record file (schema, subject, body, ...) and submit it; verify."""
    client = _client(args)
    try:
        spec = json.loads(args.record.read_text(encoding="utf-8"))
        schema, subject, body = spec["schema"], spec["subject"], spec["body"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CommandError(
            f"cannot read record {args.record}: {e}",
            'write {"schema": ..., "subject": ..., "body": {...}}',
            2,
        ) from e
    signer = _load(args.key, _passphrase(args))
    head = _head(client, subject)
    try:
        payload = client.record(
            schema, subject, body, reason=spec.get("reason"), after=head
        )
    except VerificationError as e:
        raise CommandError(f"not a valid record: {e}", "fix the record file", 2) from e
    return _send(args, client, client.sign(payload, [signer]), f"submitted {subject}")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--passphrase-file", type=Path, help="key passphrase file")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _remote(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log", required=True, help="the log's URL, e.g. http://127.0.0.1:8080"
    )
    parser.add_argument(
        "--log-key", required=True, help="log.vkey file or the verifier key string"
    )


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``keys`` (with its subcommands) and ``submit``."""
    keys = sub.add_parser("keys", help="create, inspect, grant and revoke keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    kdf = {"choices": ["interactive", "moderate", "sensitive"], "default": "moderate"}

    new = ksub.add_parser("new", help="generate a key file")
    new.add_argument("--out", type=Path, required=True)
    new.add_argument("--name", default="saksi-key", help="key name (for notes)")
    new.add_argument("--kdf", **kdf)  # type: ignore[arg-type]
    _common(new)
    new.set_defaults(func=cmd_new)

    show = ksub.add_parser("show", help="key id, public key, verifier key string")
    group = show.add_mutually_exclusive_group(required=True)
    group.add_argument("--key", type=Path, help="a Saksi key file")
    group.add_argument("--pem", type=Path, help="a public or private PEM")
    show.add_argument("--name", default="saksi-key")
    _common(show)
    show.set_defaults(func=cmd_show)

    export = ksub.add_parser("export", help="write PEM files from a key file")
    export.add_argument("--key", type=Path, required=True)
    export.add_argument("--public-pem", type=Path)
    export.add_argument("--private-pem", type=Path)
    export.add_argument(
        "--unencrypted", action="store_true", help="private PEM in clear"
    )
    _common(export)
    export.set_defaults(func=cmd_export)

    imp = ksub.add_parser("import", help="make a key file from a PKCS#8 PEM")
    imp.add_argument("--pem", type=Path, required=True)
    imp.add_argument("--out", type=Path, required=True)
    imp.add_argument("--name", default="saksi-key")
    imp.add_argument("--unencrypted", action="store_true", help="the PEM is in clear")
    imp.add_argument("--kdf", **kdf)  # type: ignore[arg-type]
    _common(imp)
    imp.set_defaults(func=cmd_import)

    grant = ksub.add_parser("grant", help="grant a key a role and scope")
    _remote(grant)
    who = grant.add_mutually_exclusive_group(required=True)
    who.add_argument("--key", type=Path, help="the key file to grant")
    who.add_argument("--pem", type=Path, help="the public key (PEM) to grant")
    grant.add_argument("--name", default="saksi-key")
    grant.add_argument("--admin-key", type=Path, action="append", required=True)
    grant.add_argument("--role", required=True)
    grant.add_argument("--scope", default="", help="region code prefix ('' = national)")
    grant.add_argument("--holder", required=True, help="who holds the key")
    grant.add_argument(
        "--expires-at", help="RFC 3339 UTC time, e.g. 2024-03-20T00:00:00.000Z"
    )
    grant.add_argument("--replaces", help="key id this key replaces (it is revoked)")
    grant.add_argument("--reason")
    _common(grant)
    grant.set_defaults(func=cmd_grant)

    revoke = ksub.add_parser("revoke", help="revoke a key from the next entry on")
    _remote(revoke)
    revoke.add_argument("--keyid", required=True)
    revoke.add_argument("--admin-key", type=Path, action="append", required=True)
    revoke.add_argument(
        "--reason-code",
        choices=["compromised", "superseded", "retired", "other"],
        default="retired",
    )
    revoke.add_argument("--reason")
    _common(revoke)
    revoke.set_defaults(func=cmd_revoke)

    listing = ksub.add_parser("list", help="the key registry as of a tree size")
    _remote(listing)
    listing.add_argument("--size", type=int)
    _common(listing)
    listing.set_defaults(func=cmd_list)

    submit = sub.add_parser("submit", help="sign a record file, submit it, verify")
    _remote(submit)
    submit.add_argument("--key", type=Path, required=True, help="the signer's key file")
    submit.add_argument("--record", type=Path, required=True, help="JSON record file")
    _common(submit)
    submit.set_defaults(func=cmd_submit)
