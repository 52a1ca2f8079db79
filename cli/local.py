"""A log opened in this process: its key unlocked, its writer started.

``open_service`` unlocks the log key in a log's directory and starts its record
log (``saksi serve``, and the writing commands with ``--db``); ``open_reader``
opens its read side alone, with the public key only (``saksi serve
--read-only``). ``LocalLog`` puts
that log behind the same interface as the HTTP client: ``saksi keys grant --db
URL`` and the other writing commands work on a log that is not being served by
opening it here. The record goes through the same checks and the same writer as
a request would, and the receipt is checked exactly as a remote client checks
one (``SaksiClient.verify_receipt``), against the log key the caller pinned.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from cli.run import EXIT_FAILED, EXIT_IO, EXIT_USAGE, CommandError, key_error
from keys import Ed25519Signer, KeyLoadError, load_key_file, read_passphrase
from ledger.admission import DEFAULT_SKEW
from ledger.cluster import ClusterLog
from ledger.cosigning import WitnessEndpoint
from ledger.errors import IntegrityFailure, LedgerError, WriterLockHeld
from ledger.read.registry import keys_listing
from ledger.recordlog import ReadOnlyLog, RecordLog
from ledger.sequencer import SequencerConfig
from ledger.storage.rows import LogMeta
from ledger.storage.sql import SqlStorage
from ledger.trusted import load_trusted
from results import ResultsIndex, ResultsReader
from saksi_client import Receipt, Refused, SaksiClient, WrongLog
from verifier.checkpoint import Checkpoint, verify_checkpoint
from verifier.errors import MalformedInput, VerificationError
from verifier.note import VerifierKey

__all__ = [
    "DB_FILE",
    "KEY_FILE",
    "VKEY_FILE",
    "LocalLog",
    "LogBusy",
    "default_db",
    "load_vkey",
    "meta_of",
    "open_cluster",
    "open_reader",
    "open_service",
    "open_storage",
    "trusted_checkpoint",
]

KEY_FILE, VKEY_FILE, DB_FILE = "log.key", "log.vkey", "saksi.db"


def default_db(directory: Path) -> str:
    """The embedded default: SQLite in the log directory."""
    return f"sqlite:///{directory.resolve() / DB_FILE}"


def open_storage(url: str) -> SqlStorage:
    """The log's database at ``url``.

    Raises:
        CommandError: not a URL it can open (exit 2), or unreachable (3).
    """
    try:
        return SqlStorage.open(url)
    except ValueError as e:
        raise CommandError(str(e), "use a sqlite:/// or postgresql:// URL", 2) from e
    except LedgerError as e:
        raise CommandError(
            str(e), "check that the database is running and reachable"
        ) from e


class LogBusy(CommandError):
    """The log's database already has a writer (a running ``saksi serve``)."""


@contextlib.contextmanager
def _closed_on_failure(storage: SqlStorage, hint: str) -> Iterator[None]:
    """Close ``storage`` if opening a log on it fails, and say why as a command.

    An integrity failure exits 1 (``saksi check`` finds what differs); another
    storage error exits 3 with ``hint``; a busy writer's lock is ``LogBusy``.
    """
    try:
        yield
    except WriterLockHeld as e:
        storage.close()
        raise LogBusy(
            str(e), "the log is being served: write through its --url instead"
        ) from e
    except CommandError:
        storage.close()
        raise
    except LedgerError as e:
        storage.close()
        failed = isinstance(e, IntegrityFailure)
        raise CommandError(
            str(e),
            "run 'saksi check' to find what differs" if failed else hint,
            EXIT_FAILED if failed else EXIT_IO,
        ) from e


def _log_signer(directory: Path, passphrase_file: Path | None) -> Ed25519Signer:
    """The log key of ``directory``, unlocked.

    Raises:
        CommandError: the key file cannot be read or unlocked.
    """
    try:
        return load_key_file(directory / KEY_FILE, read_passphrase(passphrase_file))
    except KeyLoadError as e:
        raise key_error(e, "check SAKSI_KEY_PASSPHRASE and --dir") from e


def _writer_start(
    storage: SqlStorage, signer: Ed25519Signer, directory: Path, trusted: Sequence[Path]
) -> tuple[LogMeta, SequencerConfig]:
    """Bring the schema up to date; the log's meta and the writer's settings.

    Raises:
        CommandError: another log's database, or a trusted checkpoint problem.
        LedgerError: the database cannot be read or migrated.
    """
    storage.migrate()  # a log made by an earlier version gets its new tables
    meta = meta_of(storage, signer.verifier_key, directory)
    pinned = tuple(
        trusted_checkpoint(path, signer.verifier_key, meta.origin) for path in trusted
    )
    return meta, SequencerConfig(trusted=pinned)


def open_service(
    directory: Path,
    db: str | None,
    passphrase_file: Path | None,
    *,
    skew: dt.timedelta = DEFAULT_SKEW,
    max_age: dt.timedelta | None = None,
    trusted: Sequence[Path] = (),
    wait_for_lease: bool = False,
) -> RecordLog:
    """Unlock the log key and start the record log in ``directory``.

    ``trusted`` are checkpoint files kept outside the database: the stored log
    must extend each of them (``ledger.trusted``). ``wait_for_lease``: on
    PostgreSQL, wait for a lease left by a writer that died to run out.

    Raises:
        CommandError: key or database problems, with a hint.
    """
    signer = _log_signer(directory, passphrase_file)
    storage = open_storage(db or default_db(directory))
    if wait_for_lease:
        # A writer killed a moment ago (PostgreSQL) leaves its lease behind
        # until it runs out: a restarted service waits that long, no more.
        storage.lease_wait = 2 * storage.lease_ttl
    with _closed_on_failure(storage, "run 'saksi check' to find what differs"):
        meta, pinned = _writer_start(storage, signer, directory, trusted)
        service = RecordLog(
            storage,
            signer,
            signer.verifier_key,
            meta.origin,
            clock=time.time,
            skew=skew,
            max_age=max_age,
            config=pinned,
        )
        service.start()
    return service


def open_cluster(
    directory: Path,
    db: str,
    passphrase_file: Path | None,
    *,
    skew: dt.timedelta = DEFAULT_SKEW,
    max_age: dt.timedelta | None = None,
    trusted: Sequence[Path] = (),
    witnesses: Sequence[WitnessEndpoint] = (),
) -> ClusterLog:
    """Join the cluster of ``saksi serve`` processes on the PostgreSQL ``db``.

    The process serves at once; it sequences whenever it holds the lease
    (``ledger.cluster``), and then asks ``witnesses`` to cosign.

    Raises:
        CommandError: key or database problems, with a hint.
    """
    signer = _log_signer(directory, passphrase_file)
    storage = open_storage(db)
    with _closed_on_failure(storage, "run 'saksi check' to find what differs"):
        meta, pinned = _writer_start(storage, signer, directory, trusted)
        service = ClusterLog(
            storage,
            signer,
            signer.verifier_key,
            meta.origin,
            clock=time.time,
            skew=skew,
            max_age=max_age,
            config=pinned,
            witnesses=witnesses,
        )
        service.start()
    return service


def load_vkey(directory: Path) -> VerifierKey:
    """The log's verifier key, from ``DIR/log.vkey`` (what ``saksi init`` wrote).

    Raises:
        CommandError: unreadable (exit 3), or not a verifier key (2).
    """
    path = directory / VKEY_FILE
    try:
        return VerifierKey.parse(path.read_text(encoding="utf-8").strip())
    except OSError as e:
        raise CommandError(
            f"cannot read {path}: {e.strerror}",
            "pass the --dir that 'saksi init' wrote",
        ) from e
    except MalformedInput as e:
        raise CommandError(
            f"{path}: {e}", "restore log.vkey from your records", EXIT_USAGE
        ) from e


def open_reader(
    directory: Path,
    db: str | None,
    *,
    interval: float = 1.0,
    trusted: Sequence[Path] = (),
) -> ReadOnlyLog:
    """The read side of the log in ``directory``, without its key or its writer.

    Only the public key (``DIR/log.vkey``) is read: the log's signed head in
    the database is checked against it before anything is served
    (``ledger.read.stored``), and looked at again every ``interval`` seconds.

    Raises:
        CommandError: key or database problems, with a hint.
    """
    key = load_vkey(directory)
    if db is None and not (directory / DB_FILE).exists():
        raise CommandError(
            f"no log database in {directory}",
            "pass the --dir of a log (or its --db URL); 'saksi init' makes one",
        )
    storage = open_storage(db or default_db(directory))
    with _closed_on_failure(
        storage,
        "check that the database is reachable and its writer has started once "
        "(it brings the schema up to date)",
    ):
        meta = meta_of(storage, key, directory)
        pinned = tuple(trusted_checkpoint(path, key, meta.origin) for path in trusted)
        log = ReadOnlyLog(storage, key, meta.origin, interval=interval, trusted=pinned)
        log.start()
    return log


def meta_of(storage: SqlStorage, key: VerifierKey, directory: Path) -> LogMeta:
    """The database's log, which must be the one of ``DIR/log.vkey``.

    Raises:
        CommandError: another log's database (exit 1).
        LedgerError: the database cannot be read.
    """
    meta = storage.meta()
    if meta.verifier_key != str(key):
        raise CommandError(
            f"the database's log key differs from {directory / VKEY_FILE}",
            "point --dir and --db at the same log",
            EXIT_FAILED,
        )
    return meta


def trusted_checkpoint(path: Path, key: VerifierKey, origin: str) -> Checkpoint:
    """A checkpoint file kept outside the database, verified (``--trusted-...``).

    Raises:
        CommandError: unreadable (exit 3), or not signed by this log (1).
    """
    try:
        return load_trusted(path, key, origin)
    except OSError as e:
        raise CommandError(
            f"cannot read {path}: {e.strerror}", "pass a checkpoint file", 3
        ) from e
    except ValueError as e:
        raise CommandError(
            str(e),
            "pass a checkpoint this log signed (an observer's checkpoint file, "
            "a saved /log/checkpoint, or a witness's state file)",
            1,
        ) from e


def _refused(error: Exception) -> Refused:
    cause = getattr(error, "cause", "internal-error")
    return Refused(0, {"type": f"/problems/{cause}", "detail": str(error)[:1000]})


class LocalLog(SaksiClient):
    """``SaksiClient`` over a ``RecordLog`` of this process (no HTTP)."""

    def __init__(self, service: RecordLog, log_key: VerifierKey) -> None:
        super().__init__("local:", log_key, retries=0)
        self.service = service
        self._results_index: ResultsIndex | None = None

    def results(self) -> ResultsReader:
        """The results as the route reads them, on the log opened here."""
        if self._results_index is None:
            self._results_index = ResultsIndex(self.service.entries)
        log = self.service
        return ResultsReader(log.entries, log.registry.election(), self._results_index)

    def check_identity(self) -> Checkpoint:
        """The log opened here is the pinned one: its checkpoint, verified.

        Raises:
            WrongLog: its checkpoint is not signed by the pinned key and origin.
        """
        if self._identity is None:
            try:
                self._identity, _ = verify_checkpoint(
                    self.service.reader.checkpoint(), self.log_key, self.origin
                )
            except VerificationError as e:
                raise WrongLog(
                    f"the log opened here is not signed by the pinned key "
                    f"{self.log_key} ({e})"
                ) from e
        return self._identity

    def head(self, subject: str) -> tuple[int, str] | None:
        """The subject's latest (revision, payload hash), or None."""
        return self.service.entries.head_of(subject)

    def keys(self, size: int | None = None) -> dict[str, Any]:
        """The key registry as of ``size`` (default: now).

        Raises:
            Refused: a size beyond the log.
        """
        try:
            tree_size = self.service.reader.size if size is None else size
            return keys_listing(self.service.registry.registry_at(tree_size), tree_size)
        except LedgerError as e:
            raise _refused(e) from e

    def submit(self, envelope: dict[str, Any]) -> Receipt:
        """Check, append and commit ``envelope``; verify its receipt.

        Raises:
            Refused: the log refused it (``cause`` says why).
            VerificationError: the receipt does not prove what was submitted.
        """
        self.check_identity()
        try:
            submission = self.service.writer.prepare(envelope)
            receipt = self.service.ledger.submit(submission)
        except (VerificationError, LedgerError) as e:
            raise _refused(e) from e
        return self.verify_receipt(receipt.to_json(), submission.record.payload)
