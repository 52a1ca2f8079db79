"""A throwaway PostgreSQL cluster for tests: initdb + pg_ctl on a unix socket.

Runs the server as a non-root user (``postgres`` when the tests run as root), with
fsync and synchronous_commit on, listening on no TCP port at all. Stopped and
deleted by the fixture that started it.

``PgReplica`` is a hot standby of such a cluster (made with
``replication=True``): ``pg_basebackup -R`` into a directory of its own,
streaming the primary's WAL over the primary's socket, with its replay paused,
resumed, waited for, or the standby promoted, as a test needs.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def find_pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


class PgCluster:
    def __init__(
        self, bindir: Path, root: Path | None = None, *, replication: bool = False
    ) -> None:
        """A cluster under ``root`` (a new temporary directory by default; an
        existing cluster there is started again, not initialized).

        With ``replication``, it streams its WAL to standbys (``PgReplica``):
        ``wal_level=replica``, WAL senders, and replication connections on its
        socket trusted in ``pg_hba.conf``.
        """
        self.bindir = bindir
        self.replication = replication
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)
        self.root = root or Path(tempfile.mkdtemp(prefix="saksi-pg-"))
        self.data = self.root / "data"
        self.sock = self.root / "sock"
        self.port = 5432
        self.user: str | None = None
        self._counter = 0
        if os.geteuid() == 0:
            self.user = "postgres"
            try:
                pw = pwd.getpwnam(self.user)
            except KeyError:
                subprocess.run(
                    ["useradd", "--system", "--no-create-home", self.user], check=True
                )
                pw = pwd.getpwnam(self.user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.sock.mkdir(exist_ok=True)
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(self.sock, pw.pw_uid, pw.pw_gid)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            check=True,
            capture_output=True,
            text=True,
            user=self.user,
            cwd=self.root,
        )

    def start(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        self._pg_ctl_start()

    def _initdb(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        if self.replication:
            self._allow_replication()

    def _allow_replication(self) -> None:
        """Trust replication connections on the socket (initdb's trust default
        has the line; write it where it is missing)."""
        hba = self.data / "pg_hba.conf"
        lines = hba.read_text().splitlines()
        if not any(line.split()[:2] == ["local", "replication"] for line in lines):
            with hba.open("a") as out:
                out.write("local replication all trust\n")

    def _options(self) -> str:
        opts = (
            f"-k {self.sock} -c listen_addresses='' -p {self.port} "
            "-c fsync=on -c synchronous_commit=on -c max_connections=200 "
            "-c shared_buffers=128MB"
        )
        if self.replication:
            opts += " -c wal_level=replica -c max_wal_senders=10 -c hot_standby=on"
        return opts

    def _pg_ctl_start(self) -> None:
        status = subprocess.run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
            user=self.user,
            cwd=self.root,
            check=False,
        )
        if status.returncode == 0:
            return  # left running by a stopped benchmark: use it as it is
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            self._options(),
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, keep: bool = False) -> None:
        """Stop the cluster; remove it unless ``keep`` (a fast shutdown then)."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "fast" if keep else "immediate",
                "-w",
                "stop",
            )
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.sock}&port={self.port}"

    def query(self, sql: str, *params: object) -> Any:
        """The first column of the first row of ``sql``, on database ``postgres``
        (autocommit: a standby runs it too, if it only reads)."""
        import psycopg

        with psycopg.connect(
            host=str(self.sock),
            port=self.port,
            user="postgres",
            dbname="postgres",
            autocommit=True,
        ) as conn:
            row = conn.execute(sql, params or None).fetchone()
        return None if row is None else row[0]

    def new_database(self) -> str:
        import sqlalchemy as sa

        self._counter += 1
        name = f"saksi_test_{os.getpid()}_{self._counter}"
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return self.url(name)


class PgReplica(PgCluster):
    """A hot standby of ``primary``: its own directory, socket and server.

    ``start`` takes a base backup of the running primary (``pg_basebackup -R``,
    which writes ``standby.signal`` and the ``primary_conninfo`` that points
    at the primary's socket), then starts the standby as the same non-root
    user. It serves reads only, until ``promote``. ``stop`` stops and deletes
    it, as for any ``PgCluster``.
    """

    def __init__(self, primary: PgCluster) -> None:
        if not primary.replication:
            raise ValueError("the primary must be made with replication=True")
        super().__init__(primary.bindir, replication=True)
        self.primary = primary

    def start(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            self._run(
                str(self.bindir / "pg_basebackup"),
                "-D",
                str(self.data),
                "-h",
                str(self.primary.sock),
                "-p",
                str(self.primary.port),
                "-U",
                "postgres",
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            )
        self._pg_ctl_start()

    def same_database(self, url: str) -> str:
        """This standby's URL for the primary's database ``url``."""
        import sqlalchemy as sa

        return self.url(str(sa.make_url(url).database))

    def in_recovery(self) -> bool:
        """True while it is a standby (before ``promote``)."""
        return bool(self.query("SELECT pg_is_in_recovery()"))

    def pause_replay(self, timeout: float = 30) -> None:
        """Stop applying the primary's WAL (it is still received), once paused."""
        self.query("SELECT pg_wal_replay_pause()")
        self._until(
            lambda: self.query("SELECT pg_get_wal_replay_pause_state()") == "paused",
            timeout,
            "WAL replay to pause",
        )

    def resume_replay(self) -> None:
        """Apply the primary's WAL again."""
        self.query("SELECT pg_wal_replay_resume()")

    def wait_caught_up(self, timeout: float = 30) -> str:
        """Wait until it has replayed the primary's current WAL position; that LSN."""
        target = str(self.primary.query("SELECT pg_current_wal_lsn()"))
        self._until(
            lambda: bool(
                self.query("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", target)
            ),
            timeout,
            f"the standby to replay up to {target}",
        )
        return target

    def promote(self) -> None:
        """End recovery: it becomes a primary of its own, on a new timeline."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "promote")
        self._until(lambda: not self.in_recovery(), 30, "the promotion")

    @staticmethod
    def _until(done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:g} s for {what}")
            time.sleep(0.05)
