"""``saksi keys grant|revoke|list``: the key registry of a log, and signed changes.

A grant or revocation is a ``keys.grant/v1`` or ``keys.revoke/v1`` record signed
here by the admin keys given, and sent to the log named by ``--url`` or ``--db``
(``cli.connect``) after its identity is checked against the pinned log key; the
receipt is verified before anything is printed as done.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.args import common_flags, load_signer, passphrase_of, public_key_of
from cli.connect import client_errors, head_of, open_log, receipt_out, send, write_flags
from cli.run import EXIT_OK, EXIT_USAGE, CommandError, emit
from keys.signer import Ed25519Signer
from saksi_client import grant_body
from verifier.dsse import key_id

__all__ = ["add_commands"]

SCOPE_ALL = "all"


def _admins(args: argparse.Namespace) -> list[Ed25519Signer]:
    passphrase = passphrase_of(args)
    return [load_signer(p, passphrase) for p in args.admin_key]


def _grantee(args: argparse.Namespace) -> bytes:
    if args.public_key is not None:
        try:
            raw = bytes.fromhex(args.public_key)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise CommandError(
                "--public-key must be 64 hex characters (a 32-byte Ed25519 key)",
                "'saksi keys show --key FILE --json' prints it",
                EXIT_USAGE,
            )
        return raw
    return public_key_of(args)[0]


def _scope(text: str) -> str:
    return "" if text == SCOPE_ALL else text


def cmd_grant(args: argparse.Namespace) -> int:
    """Sign a keys.grant/v1 record with the admin keys and submit it."""
    public = _grantee(args)
    keyid = key_id(public)
    body = grant_body(
        public,
        args.role,
        _scope(args.scope),
        args.holder or f"{args.role} {_scope(args.scope) or SCOPE_ALL}",
    )
    if args.expires_at:
        body["expires_at"] = args.expires_at
    if args.replaces:
        body["replaces"] = args.replaces
    subject = f"keys/{keyid}"
    admins = _admins(args)
    with open_log(args, writes=True) as client:
        head = head_of(client, subject)
        reason = args.reason or ("grant changed" if head else None)
        payload = client.record(
            "keys.grant/v1", subject, body, reason=reason, after=head
        )
        receipt = send(client, client.sign(payload, admins))
    return receipt_out(args, receipt, f"granted {keyid} ({args.role})")


def cmd_revoke(args: argparse.Namespace) -> int:
    """Sign a keys.revoke/v1 record and submit it."""
    subject = f"keys/{args.key_id}"
    admins = _admins(args)
    with open_log(args, writes=True) as client:
        head = head_of(client, subject)
        if head is None:
            raise CommandError(
                f"key {args.key_id} was never granted", "check the key id", 1
            )
        payload = client.record(
            "keys.revoke/v1",
            subject,
            {"keyid": args.key_id, "reason_code": args.reason_code},
            reason=args.reason or f"revoked: {args.reason_code}",
            after=head,
        )
        receipt = send(client, client.sign(payload, admins))
    return receipt_out(args, receipt, f"revoked {args.key_id}")


def cmd_list(args: argparse.Namespace) -> int:
    """The key registry as of a tree size (default: now)."""
    with open_log(args) as client, client_errors("check --size"):
        body = client.keys(args.size)
    lines = []
    for k in body["keys"]:
        state = "active" if k["revoked_at"] is None else f"REVOKED at {k['revoked_at']}"
        scope = k["scope"] or SCOPE_ALL
        lines.append(
            f"{k['keyid'][:16]}  {k['role']:<11} scope {scope:<13} {state}  "
            f"{k['holder']}"
        )
    emit(
        args,
        body,
        f"{len(body['keys'])} keys at tree size {body['tree_size']}\n"
        + "\n".join(lines),
    )
    return EXIT_OK


def add_commands(
    keys_sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register ``keys grant|revoke|list`` on the ``keys`` subparsers."""
    grant = keys_sub.add_parser("grant", help="grant a key a role and scope")
    write_flags(grant)
    who = grant.add_mutually_exclusive_group(required=True)
    who.add_argument("--public-key", help="the key to grant: 64 hex characters")
    who.add_argument("--key", type=Path, help="the key file to grant")
    who.add_argument("--pem", type=Path, help="the public key (PEM) to grant")
    grant.add_argument(
        "--name",
        default="saksi-key",
        help="ignored: the grant names the holder with --holder "
        "(accepted for scripts that pass it)",
    )
    grant.add_argument(
        "--admin-key",
        type=Path,
        action="append",
        required=True,
        help="an admin key file (repeat for admin changes, up to the threshold)",
    )
    grant.add_argument(
        "--role",
        required=True,
        help="tps, village, district, regency, province, national, voters, "
        "parties, candidates, admin, auditor or canary (the log's policy "
        "decides)",
    )
    grant.add_argument(
        "--scope",
        default=SCOPE_ALL,
        help="region code prefix (2, 4, 6, 10 or 13 digits) or 'all' (national)",
    )
    grant.add_argument("--holder", help="who holds the key (default: role and scope)")
    grant.add_argument(
        "--expires-at", help="RFC 3339 UTC time, e.g. 2024-03-20T00:00:00.000Z"
    )
    grant.add_argument("--replaces", help="key id this key replaces (it is revoked)")
    grant.add_argument("--reason", help="why (needed when changing a grant)")
    common_flags(grant)
    grant.set_defaults(func=cmd_grant)

    revoke = keys_sub.add_parser("revoke", help="revoke a key from the next entry on")
    write_flags(revoke)
    revoke.add_argument(
        "--key-id",
        "--keyid",
        dest="key_id",
        required=True,
        help="the id of the key to revoke (64 hex characters; "
        "'saksi keys list' shows them)",
    )
    revoke.add_argument(
        "--admin-key",
        type=Path,
        action="append",
        required=True,
        help="an admin key file (repeat for admin keys, up to the threshold)",
    )
    revoke.add_argument(
        "--reason-code",
        choices=["compromised", "superseded", "retired", "other"],
        default="retired",
        help="why, in one word (default: retired)",
    )
    revoke.add_argument(
        "--reason", help="why, in words (default: 'revoked: REASON_CODE')"
    )
    common_flags(revoke)
    revoke.set_defaults(func=cmd_revoke)

    listing = keys_sub.add_parser("list", help="the key registry as of a tree size")
    write_flags(listing)
    listing.add_argument("--size", type=int, help="tree size (default: now)")
    common_flags(listing)
    listing.set_defaults(func=cmd_list)
