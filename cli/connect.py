"""Where the log is (``--url`` or ``--db``), and its answers as CLI errors.

Each command reaches the log one of two ways:

* ``--url URL``: a running ``saksi serve``, through ``saksi_client`` (retries are
  safe: the same envelope is never logged twice);
* ``--db URL``: the log's database, opened in this process (``cli.local``), for
  a log that is not being served. If it is being served from the same directory
  (``saksi serve`` leaves its address in ``DIR/serve.url``), the command writes
  through that server instead.

Either way the record is signed here. Before anything is sent, the writing
commands check that the log's checkpoint is signed by the pinned log key
(``--log-key``, or ``DIR/log.vkey`` next to the database): a wrong key or another
log's URL fails with exit 1 and nothing logged. The receipt is checked against
the same key before anything is printed as done.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cli.local import VKEY_FILE, LocalLog, LogBusy, open_service
from cli.run import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CommandError, emit
from ledger.recordlog import RecordLog
from saksi_client import Receipt, Refused, SaksiClient, TransportError, WrongLog
from verifier.checkpoint import verify_checkpoint
from verifier.errors import VerificationError
from verifier.note import VerifierKey

__all__ = [
    "SERVE_URL_FILE",
    "client_errors",
    "head_of",
    "open_log",
    "receipt_out",
    "send",
    "write_flags",
]

SERVE_URL_FILE = "serve.url"


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


def receipt_out(args: argparse.Namespace, receipt: Receipt, what: str) -> int:
    """Print a verified receipt (``what``: entry N ...) and return exit 0."""
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
