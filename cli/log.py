"""``saksi init`` and ``saksi check``: a new log, and a full check of one.

``saksi init --db URL --origin ORIGIN --dir DIR`` creates the log, its encrypted key
(``DIR/log.key``) and its public verifier key (``DIR/log.vkey``).
``saksi check --db URL --dir DIR`` recomputes the whole tree and exits 1 on any
difference. Exit codes: the table in ``cli.run`` (0 ok, 1 failed or refused, 2
usage, 3 I/O).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cli.local import (
    KEY_FILE,
    VKEY_FILE,
    default_db,
    load_vkey,
    meta_of,
    open_storage,
    trusted_checkpoint,
)
from cli.run import (
    EXIT_FAILED,
    EXIT_IO,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    emit,
    key_error,
)
from keys import Ed25519Signer, KdfProfile, KeyLoadError, load_key_file, read_passphrase
from keys.keyfile import write_key_file
from keys.policy import DEFAULT_POLICY
from ledger.errors import LedgerError
from ledger.fullcheck import check_log
from ledger.ledger import AppendReceipt
from ledger.publisher import CheckpointPublisher
from ledger.recordlog import RecordLog
from ledger.storage.rows import Head, LogMeta
from ledger.storage.sql import SqlStorage
from verifier.dsse import envelope_to_json, sign_envelope
from verifier.errors import VerificationError
from verifier.record import RECORD_PAYLOAD_TYPE, format_timestamp, record_payload
from verifier.rfc6962 import EMPTY_ROOT

__all__ = ["add_commands"]


def _admin_signers(
    args: argparse.Namespace, directory: Path, passphrase: bytes
) -> tuple[list[Ed25519Signer], list[Path]]:
    """The genesis admins: given key files, or new ones written to DIR."""
    if args.admin_key:
        try:
            return [load_key_file(p, passphrase) for p in args.admin_key], []
        except KeyLoadError as e:
            raise key_error(
                e, "admin key files must open with SAKSI_KEY_PASSPHRASE"
            ) from e
    signers, paths = [], []
    for number in range(1, args.admins + 1):
        # admin.key, then admin-2.key, admin-3.key, ...
        path = directory / ("admin.key" if number == 1 else f"admin-{number}.key")
        signer = Ed25519Signer.generate(f"admin-{number}")
        try:
            write_key_file(path, signer, passphrase, KdfProfile[args.kdf.upper()])
        except KeyLoadError as e:
            raise key_error(e, "use a longer passphrase or an empty --dir") from e
        signers.append(signer)
        paths.append(path)
    return signers, paths


def _policy(args: argparse.Namespace) -> dict[str, Any]:
    if args.policy is None:
        return DEFAULT_POLICY
    try:
        text = args.policy.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise CommandError(
            f"cannot read policy {args.policy}: {reason}",
            "check the --policy path",
            EXIT_IO if isinstance(e, OSError) else EXIT_USAGE,
        ) from e
    try:
        policy: dict[str, Any] = json.loads(text)
    except ValueError as e:
        raise CommandError(
            f"policy {args.policy}: not JSON: {e}",
            "pass a JSON policy file",
            EXIT_USAGE,
        ) from e
    return policy


def cmd_init(args: argparse.Namespace) -> int:
    """Create a new log: schema, log key, verifier key, and the genesis record.

    Entry 0 names the origin, the log key, the first admin keys, the admin
    threshold and the policy, signed by the threshold of those admins.
    """
    directory: Path = args.dir
    origin: str = args.origin
    if not origin or any(ch.isspace() for ch in origin) or "+" in origin:
        raise CommandError(
            f"invalid origin {origin!r}",
            "use a schema-less URL such as example.go.id/saksi",
            2,
        )
    try:
        passphrase = read_passphrase(args.passphrase_file)
    except KeyLoadError as e:
        raise key_error(
            e,
            "export SAKSI_KEY_PASSPHRASE=... (8+ bytes), or pass a readable "
            "--passphrase-file",
        ) from e
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_path, vkey_path = directory / KEY_FILE, directory / VKEY_FILE
    if key_path.exists() or vkey_path.exists():
        raise CommandError(
            f"{directory} already holds a log key",
            "choose an empty --dir; never overwrite a log key",
            EXIT_USAGE,
        )
    count = len(args.admin_key) if args.admin_key else args.admins
    threshold = args.threshold or (count // 2 + 1)
    if not 1 <= threshold <= count:
        raise CommandError(
            f"threshold {threshold} with {count} admin keys",
            "the threshold must be between 1 and the number of admins",
            2,
        )
    policy = _policy(args)
    url = args.db or default_db(directory)
    storage = open_storage(url)
    try:
        storage.migrate()
        if storage.is_initialized():
            raise CommandError(
                "this database already holds a log",
                "use a new database, or 'saksi check' this one",
                EXIT_USAGE,
            )
        # The admin keys first: one that does not open leaves no log.key behind
        # (which would make the next 'saksi init' in this --dir refuse).
        admins, admin_paths = _admin_signers(args, directory, passphrase)
        signer = Ed25519Signer.generate(origin)
        try:
            write_key_file(key_path, signer, passphrase, KdfProfile[args.kdf.upper()])
        except KeyLoadError as e:
            raise key_error(e, "use a longer passphrase or an empty --dir") from e
        vkey = signer.verifier_key
        note = CheckpointPublisher(origin, signer, vkey).sign(0, EMPTY_ROOT)
        try:
            storage.initialize(
                LogMeta(origin, str(vkey)),
                Head(0, EMPTY_ROOT, note, int(time.time() * 1000)),
            )
        except LedgerError:
            key_path.unlink()  # never used: let the operator retry cleanly
            raise
        vkey_path.write_text(f"{vkey}\n", encoding="utf-8")
        genesis = _write_genesis(storage, signer, origin, admins, threshold, policy)
    except LedgerError as e:
        raise CommandError(str(e), "check the database URL and permissions") from e
    finally:
        storage.close()
    emit(
        args,
        {
            "origin": origin,
            "verifier_key": str(vkey),
            "db": _redact(url),
            "key_file": str(key_path),
            "vkey_file": str(vkey_path),
            "admin_keys": [a.keyid for a in admins],
            "admin_key_files": [str(p) for p in admin_paths],
            "threshold": threshold,
            "genesis_leaf_hash": genesis.leaf_hash.hex(),
        },
        f"created log {origin}\nverifier key: {vkey}\nkey file: {key_path}\n"
        f"genesis: entry 0 with {count} admin key(s), threshold {threshold}"
        + "".join(f"\nadmin key file: {p}" for p in admin_paths),
    )
    return EXIT_OK


def _write_genesis(
    storage: SqlStorage,
    signer: Ed25519Signer,
    origin: str,
    admins: list[Ed25519Signer],
    threshold: int,
    policy: dict[str, Any],
) -> AppendReceipt:
    """Log entry 0, the genesis record, through the normal write path."""
    body = {
        "origin": origin,
        "log_key": str(signer.verifier_key),
        "admins": [
            {
                "keyid": a.keyid,
                "public_key": base64.b64encode(a.public_key).decode(),
                "holder": a.name,
            }
            for a in admins
        ],
        "threshold": threshold,
        "policy": policy,
    }
    try:
        payload = record_payload(
            schema="log.genesis/v1",
            subject="log/genesis",
            revision=0,
            prev=None,
            issued_at=format_timestamp(dt.datetime.now(dt.UTC)),
            body=body,
        )
        envelope = sign_envelope(RECORD_PAYLOAD_TYPE, payload, admins[:threshold])
        service = RecordLog(
            storage, signer, signer.verifier_key, origin, clock=time.time
        )
        service.start()
        try:
            return service.ledger.submit(
                service.writer.prepare(envelope_to_json(envelope))
            )
        finally:
            service.ledger.close()
    except VerificationError as e:
        raise CommandError(f"genesis refused: {e}", "fix the policy file", 2) from e


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _progress(enabled: bool) -> Callable[[int, int], None]:
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if enabled and (now - last[0] > 0.5 or done == total):
            last[0] = now
            pct = 100.0 * done / total if total else 100.0
            print(
                f"\rchecked {done:,}/{total:,} entries ({pct:.0f}%)",
                end="",
                file=sys.stderr,
                flush=True,
            )
            if done == total:
                print(file=sys.stderr)

    return show


def cmd_check(args: argparse.Namespace) -> int:
    """Recompute the tree from the entries; compare tiles, checkpoints and head."""
    directory: Path = args.dir
    vkey = load_vkey(directory)
    storage = open_storage(args.db or default_db(directory))
    try:
        meta = meta_of(storage, vkey, directory)
        pinned = [
            trusted_checkpoint(path, vkey, meta.origin)
            for path in args.trusted_checkpoint or ()
        ]
        report = check_log(
            storage,
            vkey,
            meta.origin,
            _progress(args.progress or sys.stderr.isatty()),
            trusted=pinned,
        )
    except LedgerError as e:
        raise CommandError(str(e), "check that the database is reachable") from e
    finally:
        storage.close()
    result: dict[str, Any] = {
        "ok": report.ok,
        "size": report.size,
        "entries_checked": report.entries_checked,
        "tiles_checked": report.tiles_checked,
        "checkpoints_checked": report.checkpoints_checked,
        "problems": [
            {"kind": p.kind, "index": p.index, "tile": p.tile, "message": p.message}
            for p in report.problems
        ],
    }
    if report.ok:
        text = (
            f"OK: {report.size} entries, {report.tiles_checked} tiles, "
            f"{report.checkpoints_checked} checkpoints match"
        )
    else:
        text = "\n".join(
            f"FAILED: {p.message}"
            + (f" (index {p.index})" if p.index is not None else "")
            for p in report.problems
        )
    emit(args, result, text)
    return EXIT_OK if report.ok else EXIT_FAILED


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register init and check on the ``saksi`` subparsers."""
    init = sub.add_parser("init", help="create a new log and its key")
    init.add_argument("--db", help="SQLAlchemy URL (default: sqlite:///DIR/saksi.db)")
    init.add_argument(
        "--origin", required=True, help="log origin, e.g. example.go.id/saksi"
    )
    init.add_argument(
        "--dir", type=Path, required=True, help="where log.key and log.vkey go"
    )
    init.add_argument(
        "--kdf",
        choices=["interactive", "moderate", "sensitive"],
        default="moderate",
        help="Argon2id cost of the key file",
    )
    init.add_argument(
        "--passphrase-file", type=Path, help="read the key passphrase from this file"
    )
    init.add_argument(
        "--admin-key",
        type=Path,
        action="append",
        help="an existing admin key file (repeat); default: new keys in DIR",
    )
    init.add_argument(
        "--admins", type=int, default=1, help="how many admin keys to create"
    )
    init.add_argument(
        "--threshold",
        type=int,
        help="admin signatures needed for admin changes (default: a majority)",
    )
    init.add_argument(
        "--policy", type=Path, help="JSON policy for genesis (default: built in)"
    )
    init.add_argument("--json", action="store_true", help="print JSON")
    init.set_defaults(func=cmd_init)

    check = sub.add_parser("check", help="recompute the tree and compare with storage")
    check.add_argument("--db", help="SQLAlchemy URL (default: sqlite:///DIR/saksi.db)")
    check.add_argument(
        "--dir", type=Path, required=True, help="directory with log.vkey"
    )
    check.add_argument("--json", action="store_true", help="print JSON")
    check.add_argument(
        "--progress", action="store_true", help="show progress on stderr"
    )
    check.add_argument(
        "--trusted-checkpoint",
        type=Path,
        action="append",
        metavar="FILE",
        help="a checkpoint of this log kept outside its database (an observer's "
        "checkpoint file, a saved /log/checkpoint or a witness's state file): "
        "the stored log must extend it (repeat)",
    )
    check.set_defaults(func=cmd_check)
