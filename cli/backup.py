"""``saksi backup`` and ``saksi restore``: a copy of the log's database, checked.

A backup is only as good as what it holds, so both commands open the copy as a
log with the log's public key (``DIR/log.vkey``) and run the start-up checks
of a reader on it (``ReadOnlyLog.start``: the signed head verifies, the tree
the database holds is the one it signed) before they say it is done.

SQLite (the embedded default): ``backup`` copies the database with SQLite's
online backup API while the log is served (one read snapshot in WAL mode: the
writer goes on, and the copy is of one moment), to ``OUT.partial``, checks it,
then renames it. ``restore`` checks the copy, then compares it with the
database it replaces: a copy that is the same log at the same or a later
size is put in place; an older copy (a tree the current one extends) rolls the
log back, which every witness refuses and every observer with state detects,
so it needs ``--rollback``; a copy that is no prefix of the current log is
refused. The database it replaces is kept beside it, never deleted.

PostgreSQL: ``backup`` runs ``pg_dump`` (custom format: one consistent
snapshot), and ``restore`` runs ``pg_restore`` into an empty database given
by ``--db``, then checks it as above. A physical copy (``pg_basebackup``) is
the other way, documented in the README.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy.exc import ArgumentError

from cli.connect import SERVE_URL_FILE
from cli.local import default_db, load_vkey, open_reader
from cli.run import EXIT_FAILED, EXIT_IO, EXIT_OK, EXIT_USAGE, CommandError, emit
from ledger.errors import LedgerError
from ledger.storage.engine import normalize_url
from verifier.checkpoint import Checkpoint, verify_checkpoint
from verifier.errors import VerificationError
from verifier.proof_check import verify_consistency

__all__ = ["add_commands", "cmd_backup", "cmd_restore"]


def _sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL."""
    try:
        parsed = normalize_url(url)
    except (ValueError, ArgumentError) as e:
        raise CommandError(
            str(e), "use a sqlite:/// or postgresql:// URL", EXIT_USAGE
        ) from e
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise CommandError(
            "an in-memory database has nothing to back up",
            "pass the --db of a log's database file",
            EXIT_USAGE,
        )
    return Path(parsed.database)


def _libpq(url: str) -> str:
    """A PostgreSQL URL as ``pg_dump`` and ``pg_restore`` take it (no driver)."""
    parsed = normalize_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def _checked(directory: Path, url: str) -> dict[str, Any]:
    """Open ``url`` as the log of ``DIR/log.vkey`` and run a reader's checks.

    Returns its signed size, root and checkpoint note.

    Raises:
        CommandError: not this log, or a copy that fails its checks (exit 1),
            or one that cannot be read (3).
    """
    log = open_reader(directory, url)
    try:
        note = log.reader.current().note
        checkpoint, _ = verify_checkpoint(note, log.verifier_key, log.origin)
        return {
            "size": checkpoint.size,
            "root": checkpoint.root_hash.hex(),
            "checkpoint": note.decode("utf-8"),
            "origin": log.origin,
        }
    finally:
        log.storage.close()


def _progress(path: Path, total: int, enabled: bool) -> threading.Event:
    """Show how much of ``total`` bytes ``path`` holds, every second, until set."""
    done = threading.Event()

    def show() -> None:
        while not done.wait(1.0):
            try:
                size = path.stat().st_size
            except OSError:
                size = 0
            pct = 100.0 * size / total if total else 100.0
            print(
                f"\rcopied {size / 2**20:,.0f} of {total / 2**20:,.0f} MiB "
                f"({min(pct, 100.0):.0f}%)",
                end="",
                file=sys.stderr,
                flush=True,
            )
        print(file=sys.stderr)

    if enabled:
        threading.Thread(target=show, name="backup-progress", daemon=True).start()
    return done


def _fsync(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_sqlite(source: Path, target: Path, show: bool) -> None:
    """SQLite's online backup of ``source`` into the new file ``target``.

    One step (``pages=-1``): the copy reads one snapshot, so a writer that
    commits meanwhile neither waits nor restarts it.
    """
    if not source.exists():
        raise CommandError(
            f"no database at {source}",
            "pass the --dir of a log (or its --db URL); 'saksi init' makes one",
        )
    total = source.stat().st_size
    done = _progress(target, total, show)
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst, pages=-1)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as e:
        raise CommandError(
            f"the copy of {source} failed: {e}",
            "check the disk's room and that the database is readable",
            EXIT_IO,
        ) from e
    finally:
        done.set()
    _fsync(target)


def cmd_backup(args: argparse.Namespace) -> int:
    """Copy the log's database to ``--out``, and check the copy as a log."""
    directory: Path = args.dir
    load_vkey(directory)  # before any copying: the key the copy is checked with
    url = args.db or default_db(directory)
    out: Path = args.out
    if out.exists():
        raise CommandError(
            f"{out} exists", "pass a new --out: a backup never overwrites", EXIT_USAGE
        )
    started = time.monotonic()
    partial = out.with_name(f".{out.name}.partial")
    source = _sqlite_path(url)
    try:
        if source is not None:
            partial.unlink(missing_ok=True)
            _copy_sqlite(source, partial, not args.json and sys.stderr.isatty())
            checked = _checked(directory, f"sqlite:///{partial.resolve()}")
            method = "sqlite-online-backup"
        else:
            checked = _checked(directory, url)  # the live log: its key, its checks
            _pg_dump(url, partial)
            method = "pg_dump"
        partial.replace(out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    result = {
        "ok": True,
        "backup": str(out),
        "method": method,
        "bytes": out.stat().st_size,
        "seconds": round(time.monotonic() - started, 3),
        **checked,
    }
    if source is None:
        result["note"] = (
            "the checkpoint is the database's as the dump began or after; "
            "saksi restore checks the restored copy"
        )
    emit(
        args,
        result,
        f"saksi: backed up {checked['origin']} ({checked['size']:,} entries, "
        f"root {checked['root'][:16]}...) to {out} ({result['bytes']:,} bytes, "
        f"{method}); the copy verifies",
    )
    return EXIT_OK


def _pg_tool(name: str) -> str:
    """The path of PostgreSQL's client tool ``name``.

    Raises:
        CommandError: it is not installed (exit 3).
    """
    tool = shutil.which(name)
    if tool is None:
        raise CommandError(
            f"{name} is not installed",
            "install PostgreSQL's client tools (Debian: postgresql-client-15)",
        )
    return tool


def _pg_dump(url: str, out: Path) -> None:
    tool = _pg_tool("pg_dump")
    done = subprocess.run(  # noqa: S603 - the tool found on PATH, our arguments
        [tool, "--format=custom", "--no-owner", "--file", str(out), _libpq(url)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise CommandError(
            f"pg_dump failed: {done.stderr.strip().splitlines()[-1:] or ['?']}",
            "check that the database is reachable with these credentials",
        )
    _fsync(out)


def _extends(older: dict[str, Any], newer_url: str, directory: Path) -> bool:
    """Does the log at ``newer_url`` extend ``older``'s signed tree?

    Raises:
        CommandError: the log at ``newer_url`` cannot be read.
    """
    log = open_reader(directory, newer_url)
    try:
        if log.reader.size < older["size"]:
            return False
        proof = (
            log.reader.consistency_proof(older["size"])
            if 0 < older["size"] < log.reader.size
            else []
        )
        newer = log.reader.current().note
        new_checkpoint: Checkpoint = verify_checkpoint(
            newer, log.verifier_key, log.origin
        )[0]
        if older["size"] == 0:
            return True
        if older["size"] == log.reader.size:
            return bool(new_checkpoint.root_hash.hex() == older["root"])
        try:
            verify_consistency(
                older["size"],
                new_checkpoint.size,
                bytes.fromhex(older["root"]),
                new_checkpoint.root_hash,
                proof,
            )
        except VerificationError:
            return False
        return True
    except LedgerError as e:
        raise CommandError(str(e), "run 'saksi check' on the database") from e
    finally:
        log.storage.close()


def cmd_restore(args: argparse.Namespace) -> int:
    """Check a backup, compare it with the database, and put it in place."""
    directory: Path = args.dir
    load_vkey(directory)
    backup: Path = args.backup
    if not backup.is_file():
        raise CommandError(f"no backup at {backup}", "pass the file saksi backup wrote")
    url = args.db or default_db(directory)
    target = _sqlite_path(url)
    if target is None:
        checked = _pg_restore(backup, url, directory)
        emit(
            args,
            {"ok": True, "restored": url.split("@")[-1], **checked},
            f"saksi: restored {backup} into the database ({checked['size']:,} "
            "entries); it verifies",
        )
        return EXIT_OK
    if (directory / SERVE_URL_FILE).exists():
        raise CommandError(
            f"the log in {directory} is being served ({SERVE_URL_FILE} exists)",
            "stop saksi serve first: a database cannot be replaced under it",
            EXIT_USAGE,
        )
    # The backup itself, checked where it lies (a copy: never written to).
    staged = target.with_name(f".{target.name}.restoring")
    staged.unlink(missing_ok=True)
    shutil.copyfile(backup, staged)
    try:
        checked = _checked(directory, f"sqlite:///{staged.resolve()}")
        current = _current(directory, target, args.rollback)
        result: dict[str, Any] = {
            "ok": True,
            "restored": str(target),
            "size": checked["size"],
            "root": checked["root"],
            "checkpoint": checked["checkpoint"],
            "replaced": None,
            "rollback": False,
        }
        if current is not None:
            result["replaced_size"] = current["size"]
            if _extends(current, f"sqlite:///{staged.resolve()}", directory):
                pass  # the same log, as long or longer
            elif _extends(checked, f"sqlite:///{target.resolve()}", directory):
                if not args.rollback:
                    raise CommandError(
                        f"the backup holds {checked['size']:,} entries and the "
                        f"database {current['size']:,}: restoring it rolls the "
                        "log back, which every witness refuses and every observer "
                        "with state detects",
                        "restore a newer backup; or, if the log must go back, pass "
                        "--rollback and tell the witnesses and observers why",
                        EXIT_FAILED,
                    )
                result["rollback"] = True
            else:
                raise CommandError(
                    f"the backup's tree ({checked['size']:,} entries) and the "
                    f"database's ({current['size']:,}) are not one log's: one is "
                    "no prefix of the other",
                    "this is a fork: keep both and find who signed each "
                    "(saksi check, saksi-verify compare)",
                    EXIT_FAILED,
                )
        result["replaced"] = _put_in_place(staged, target)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    emit(
        args,
        result,
        f"saksi: restored {backup} to {target} ({checked['size']:,} entries)"
        + (
            f"; the database it replaced is kept as {result['replaced']}"
            if result["replaced"]
            else ""
        )
        + ("; THE LOG WAS ROLLED BACK" if result["rollback"] else ""),
    )
    return EXIT_OK


def _current(directory: Path, target: Path, force: bool) -> dict[str, Any] | None:
    """The database being replaced, checked; None when there is none.

    One that does not open as this log cannot be compared: it is replaced
    only when ``force`` (``--rollback``) says so.
    """
    if not target.exists():
        return None
    try:
        return _checked(directory, f"sqlite:///{target.resolve()}")
    except CommandError as e:
        if force:
            return None
        raise CommandError(
            f"the database in place does not open as this log ({e}): the backup "
            "cannot be compared with it",
            "run saksi check on it; to replace it anyway (it is kept beside), "
            "pass --rollback",
            EXIT_FAILED,
        ) from e


def _put_in_place(staged: Path, target: Path) -> str | None:
    """Move the database (with its WAL files) aside, then ``staged`` in.

    The old files are kept under one time-stamped name; a stale WAL left
    beside the restored file would be replayed into it, so none is.
    """
    kept = None
    if target.exists():
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        kept = target.with_name(f"{target.name}.replaced-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            old = target.with_name(target.name + suffix)
            if old.exists():
                old.replace(kept.with_name(kept.name + suffix))
    _fsync(staged)
    staged.replace(target)
    _fsync(target)
    return None if kept is None else str(kept)


def _pg_restore(backup: Path, url: str, directory: Path) -> dict[str, Any]:
    tool = _pg_tool("pg_restore")
    done = subprocess.run(  # noqa: S603 - the tool found on PATH, our arguments
        [
            tool,
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            "--dbname",
            _libpq(url),
            str(backup),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or ["?"]
        raise CommandError(
            f"pg_restore failed: {last[0][:300]}",
            "restore into a new, empty database (createdb), reachable with --db",
        )
    return _checked(directory, url)


def add_commands(sub: Any) -> None:  # noqa: ANN401 - argparse's subparsers
    """Register ``backup`` and ``restore``."""
    backup = sub.add_parser(
        "backup", help="copy the log's database while it runs, and check the copy"
    )
    backup.add_argument("--dir", type=Path, required=True, help="the log directory")
    backup.add_argument("--db", help="database URL (default: sqlite:///DIR/saksi.db)")
    backup.add_argument("--out", type=Path, required=True, help="the backup file")
    backup.add_argument("--json", action="store_true", help="print JSON")
    backup.set_defaults(func=cmd_backup)
    restore = sub.add_parser(
        "restore", help="check a backup and put it in place of the log's database"
    )
    restore.add_argument("backup", type=Path, help="a file saksi backup wrote")
    restore.add_argument("--dir", type=Path, required=True, help="the log directory")
    restore.add_argument(
        "--db",
        help="database URL (default: sqlite:///DIR/saksi.db; PostgreSQL: an empty "
        "database to restore into)",
    )
    restore.add_argument(
        "--rollback",
        action="store_true",
        help="put an older copy of the log in place (witnesses and observers "
        "will see the log go back)",
    )
    restore.add_argument("--json", action="store_true", help="print JSON")
    restore.set_defaults(func=cmd_restore)
