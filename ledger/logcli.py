"""``saksi keys grant|revoke|list`` and ``saksi submit``: signed writes to a log.

(``saksi keys provision``, keys and grants for every region at a level, is in
``ledger.provisioncli``, on the same ``open_log``.)

Each command reaches the log one of two ways:

* ``--url URL``: a running ``saksi serve``, through ``saksi_client`` (retries are
  safe: the same envelope is never logged twice);
* ``--db URL``: the log's database, opened in this process (``ledger.local``), for
  a log that is not being served. If it is being served from the same directory
  (``saksi serve`` leaves its address in ``DIR/serve.url``), the command writes
  through that server instead.

Either way the record is signed here. Before anything is sent, the writing
commands check that the log's checkpoint is signed by the pinned log key
(``--log-key``, or ``DIR/log.vkey`` next to the database): a wrong key or another
log's URL fails with exit 1 and nothing logged. The receipt is checked against
the same key before anything is printed as done. Passphrases come from
``SAKSI_KEY_PASSPHRASE`` (or a file); they never appear in output.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from keys.cli import (
    EXIT_FAILED,
    EXIT_IO,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    common_flags,
    emit,
    load_signer,
    passphrase_of,
    public_key_of,
)
from keys.signer import Ed25519Signer
from ledger.local import LocalLog
from ledger.recordlog import RecordLog
from saksi_client import (
    Receipt,
    Refused,
    SaksiClient,
    TransportError,
    WrongLog,
    grant_body,
)
from verifier.checkpoint import verify_checkpoint
from verifier.dsse import key_id
from verifier.errors import VerificationError
from verifier.note import VerifierKey
from verifier.record import format_timestamp, record_payload

__all__ = [
    "SERVE_URL_FILE",
    "add_log_commands",
    "client_errors",
    "head_of",
    "open_log",
    "send",
    "write_flags",
]

SERVE_URL_FILE = "serve.url"
VKEY_FILE = "log.vkey"
SCOPE_ALL = "all"


def write_flags(parser: argparse.ArgumentParser, *, db: bool = True) -> None:
    """The flags that say where the log is and which key it must sign with."""
    parser.add_argument(
        "--url",
        "--log",
        dest="url",
        help="a running 'saksi serve', e.g. http://127.0.0.1:8080",
    )
    if db:
        parser.add_argument(
            "--db",
            help="the log's database (SQLAlchemy URL), opened here; "
            "e.g. sqlite:///srv/saksi/saksi.db",
        )
        parser.add_argument(
            "--dir",
            type=Path,
            help="the log's directory (log.key, log.vkey); "
            "default: the SQLite file's directory",
        )
    parser.add_argument(
        "--log-key",
        help="log.vkey file or verifier key string to pin "
        "(default: DIR/log.vkey with --db; with --url, the server's, not pinned)",
    )


def _read_vkey(text: str) -> VerifierKey:
    path = Path(text)
    if path.exists():
        text = path.read_text(encoding="utf-8").strip()
    try:
        return VerifierKey.parse(text)
    except VerificationError as e:
        raise CommandError(
            f"bad log key: {e}", "pass log.vkey or its verifier key string", EXIT_USAGE
        ) from e


def _log_dir(args: argparse.Namespace) -> Path:
    """Where log.key and log.vkey are.

    ``--dir``, else the first of these that holds a log.key: the SQLite file's
    directory, the admin key's ('saksi init' writes them all to one directory).
    """
    if args.dir is not None:
        return Path(args.dir)
    candidates = [Path(key).parent for key in getattr(args, "admin_key", None) or ()]
    prefix = "sqlite:///"
    if args.db.startswith(prefix) and len(args.db) > len(prefix):
        candidates.insert(0, Path(args.db[len(prefix) :]).parent)
    for directory in candidates:
        if (directory / "log.key").exists():
            return directory
    raise CommandError(
        "cannot find this log's log.key",
        "pass --dir, the directory 'saksi init' wrote log.key and log.vkey to",
        EXIT_USAGE,
    )


def _remote(url: str, pinned: str | None) -> SaksiClient:
    if pinned is not None:
        return SaksiClient(url, _read_vkey(pinned))
    # Trust on first use: say so, and how to pin.
    if not url.startswith(("http://", "https://")):
        raise CommandError(
            f"not an http(s) URL: {url[:80]}", "e.g. http://127.0.0.1:8080", EXIT_USAGE
        )
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/v1/log", timeout=30) as r:  # noqa: S310 - scheme checked
            info = json.loads(r.read())
        key = _read_vkey(str(info["verifier_key"]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CommandError(
            f"cannot read the log key from {url}: {e}",
            "is 'saksi serve' running at --url? Or pass --log-key log.vkey",
        ) from e
    print(
        f"saksi: note: log key taken from the server ({key}); "
        "pin it with --log-key log.vkey",
        file=sys.stderr,
    )
    return SaksiClient(url, key)


def _local_identity(service: RecordLog, key: VerifierKey, directory: Path) -> None:
    """``SaksiClient.check_identity`` for a log opened here: its checkpoint."""
    try:
        verify_checkpoint(service.reader.checkpoint(), key, key.name)
    except VerificationError as e:
        raise CommandError(
            f"the log in {directory} is not signed by the pinned key {key} ({e})",
            f"nothing was written. Compare --log-key with {directory / VKEY_FILE} "
            "(the default with --db) and with the key the log's operator announced",
            EXIT_FAILED,
        ) from e


@contextlib.contextmanager
def open_log(
    args: argparse.Namespace, *, writes: bool = False
) -> Iterator[SaksiClient]:
    """The log named by ``--url`` or ``--db``, as a client (closed on exit).

    With ``writes``, the log's identity is checked first (its checkpoint signed
    by the pinned key), before any other request: a command that writes sends
    nothing to a log the pinned key does not sign for.

    Raises:
        CommandError: neither given, a bad key, a log that cannot be opened, or
            (``writes``) one that is not signed by the pinned key.
    """
    if getattr(args, "db", None):
        from ledger.cli import LogBusy, open_service

        directory = _log_dir(args)
        pinned = args.log_key or str(directory / VKEY_FILE)
        try:
            service = open_service(directory, args.db, args.passphrase_file)
        except LogBusy:
            served = directory / SERVE_URL_FILE
            if not served.exists():
                raise
            url = served.read_text(encoding="utf-8").strip()
            print(
                f"saksi: note: the log is being served: writing through {url}",
                file=sys.stderr,
            )
        else:
            try:
                key = _read_vkey(pinned)
                if writes:
                    _local_identity(service, key, directory)
                yield LocalLog(service, key)
            finally:
                service.close()
            return
    elif args.url:
        url, pinned = args.url, args.log_key
    else:
        raise CommandError(
            "where is the log?",
            "pass --url http://HOST:PORT (a running 'saksi serve') or --db URL",
            EXIT_USAGE,
        )
    client = _remote(url, pinned)
    if writes:
        with client_errors():
            client.check_identity()
    yield client


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


@contextlib.contextmanager
def client_errors(
    refused_hint: str = "fix the record; the problem type names the cause",
) -> Iterator[None]:
    """Turn the client's failures into CLI errors with what to do next.

    Refused (exit 1, with ``refused_hint``), unreachable (exit 3), or an answer
    that does not verify (exit 1, with the advice to keep the evidence).
    """
    try:
        yield
    except WrongLog as e:
        raise CommandError(
            str(e),
            "nothing was sent. Compare the pinned key (--log-key) with the "
            "verifier_key that GET /v1/log on this log shows and with the key its "
            "operator announced; pin the announced one",
            EXIT_FAILED,
        ) from e
    except Refused as e:
        status = f"{e.status} " if e.status else ""
        raise CommandError(
            f"refused ({status}{e.cause}): {e.problem.get('detail')}",
            refused_hint,
            EXIT_FAILED,
        ) from e
    except TransportError as e:
        raise CommandError(str(e), "is 'saksi serve' running at --url?") from e
    except VerificationError as e:
        raise CommandError(
            f"the log's answer does not verify: {e}",
            "do not trust this log; keep the output as evidence",
            EXIT_FAILED,
        ) from e


def send(client: SaksiClient, envelope: dict[str, Any]) -> Receipt:
    """Submit ``envelope`` and return its verified receipt (CLI errors)."""
    with client_errors():
        return client.submit(envelope)


def head_of(client: SaksiClient, subject: str) -> tuple[int, str] | None:
    """The subject's head, as ``SaksiClient.head``, with CLI errors."""
    with client_errors("check the subject"):
        return client.head(subject)


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
    return _receipt_out(args, receipt, f"granted {keyid} ({args.role})")


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
    return _receipt_out(args, receipt, f"revoked {args.key_id}")


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


_RECORD_FIELDS = {
    "schema",
    "subject",
    "revision",
    "prev",
    "issued_at",
    "body",
    "reason",
    "evidence",
}


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


def _record_spec(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise CommandError(
            f"cannot read record {path}: {e.strerror}",
            "check the path of RECORD.json",
            EXIT_IO,
        ) from e
    try:
        spec = json.loads(text)
        if not isinstance(spec, dict):
            raise TypeError("not a JSON object")
        missing = {"schema", "subject", "body"} - set(spec)
        unknown = set(spec) - _RECORD_FIELDS
        if missing or unknown:
            raise KeyError(
                f"missing {sorted(missing)}"
                if missing
                else f"unknown {sorted(unknown)}"
            )
    except (ValueError, KeyError, TypeError) as e:
        raise CommandError(
            f"cannot read record {path}: {e}",
            'write {"schema": ..., "subject": ..., "body": {...}} '
            "(revision, prev, issued_at, reason and evidence are optional)",
            EXIT_USAGE,
        ) from e
    return spec


def cmd_submit(args: argparse.Namespace) -> int:
    """Sign a record file and submit it; verify the receipt."""
    path = args.record_file or args.record
    if path is None:
        raise CommandError(
            "no record file",
            "saksi submit --url URL --key FILE RECORD.json",
            EXIT_USAGE,
        )
    spec = _record_spec(Path(path))
    signer = load_signer(args.key, passphrase_of(args))
    with open_log(args, writes=True) as client:
        if "revision" in spec:
            revision, prev = spec["revision"], spec.get("prev")
        else:
            head = head_of(client, spec["subject"])
            revision, prev = (0, None) if head is None else (head[0] + 1, head[1])
        try:
            payload = record_payload(
                schema=spec["schema"],
                subject=spec["subject"],
                revision=revision,
                prev=prev,
                issued_at=spec.get("issued_at")
                or format_timestamp(dt.datetime.now(dt.UTC)),
                body=spec["body"],
                reason=spec.get("reason"),
                evidence=tuple(spec.get("evidence", ())),
            )
        except (VerificationError, TypeError, ValueError) as e:
            raise CommandError(
                f"not a valid record: {e}", "fix the record file", EXIT_USAGE
            ) from e
        receipt = send(client, client.sign(payload, [signer]))
    args.json = True  # the receipt is what a script keeps: always JSON
    return _receipt_out(args, receipt, f"submitted {spec['subject']}")


def add_log_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    keys_sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register ``keys grant|revoke|list|provision`` and ``submit``."""
    # ``ledger.provisioncli`` builds on this module: imported here, not above.
    from ledger.provisioncli import add_provision_command

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
        "parties, candidates, admin or auditor (the log's policy decides)",
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

    add_provision_command(keys_sub)

    submit = sub.add_parser("submit", help="sign a record file, submit it, verify")
    write_flags(submit)
    submit.add_argument("--key", type=Path, required=True, help="the signer's key file")
    submit.add_argument(
        "record_file",
        nargs="?",
        type=Path,
        metavar="RECORD.json",
        help="the record's fields (schema, subject, body; optional revision, prev, "
        "issued_at, reason, evidence), unsigned",
    )
    submit.add_argument(
        "--record", type=Path, help="the record file (the older form of RECORD.json)"
    )
    common_flags(submit)
    submit.set_defaults(func=cmd_submit)
