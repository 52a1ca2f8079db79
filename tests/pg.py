"""A throwaway PostgreSQL cluster for tests: initdb + pg_ctl on a unix socket.

Runs the server as a non-root user (``postgres`` when the tests run as root), with
fsync and synchronous_commit on, listening on no TCP port at all. Stopped and
deleted by the fixture that started it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path


def find_pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


class PgCluster:
    def __init__(self, bindir: Path, root: Path | None = None) -> None:
        """A cluster under ``root`` (a new temporary directory by default; an
        existing cluster there is started again, not initialized)."""
        self.bindir = bindir
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
        opts = (
            f"-k {self.sock} -c listen_addresses='' -p {self.port} "
            "-c fsync=on -c synchronous_commit=on -c max_connections=200 "
            "-c shared_buffers=128MB"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
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

    def new_database(self) -> str:
        import sqlalchemy as sa

        self._counter += 1
        name = f"saksi_test_{os.getpid()}_{self._counter}"
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return self.url(name)
