"""The served log under faults of its storage and of its process (issue 24).

Each test runs ``saksi serve`` on 127.0.0.1 with writer threads submitting
real signed records over HTTP, injects one fault while they write, ends it,
and checks what RELIABILITY.md R2 and R3 ask:

* while the fault lasts, an append is answered with its receipt (it was
  committed before the fault bit) or 503 ``storage-unavailable`` as
  problem+json: never a 500, and no traceback in the server's log;
* when the fault ends, the SAME process accepts appends again by itself;
* afterwards every acknowledged record is in the log at its index with its
  bytes, the indices are contiguous, and the full check passes (no torn entry).

The faults, as an operator meets them:

* disk full: SQLite's database on a small tmpfs, PostgreSQL's database in a
  tablespace on one (its WAL stays on the cluster's disk: PostgreSQL stops
  itself with a PANIC when the WAL cannot grow, which is the crash below);
  the test fills the filesystem, then frees it;
* read-only, PostgreSQL: ``default_transaction_read_only`` set cluster-wide
  and reloaded, which is what a client meets when a provider puts a full
  cluster into read-only mode or when its primary became a standby;
* read-only, SQLite: a read-only remount is refused while the database is
  open for writing (EBUSY), and the kernel's own emergency read-only mode
  (``errors=remount-ro``) ends only with an unmount, i.e. with the service
  stopped. What can start and end under a running service is the database
  losing its write permission: the immutable attribute (``chattr +i``, on
  ext4 in a loop device), which root cannot override and which refuses
  writes to open files as well as read-write opens;
* PostgreSQL stopped with ``pg_ctl stop -m immediate`` under load (a crash
  of the database server) and started again;
* file descriptors exhausted: the server's RLIMIT_NOFILE lowered (prlimit) to
  what it holds, while idle clients keep connecting, then raised again.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import resource
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from keys import load_key_file
from ledger.errors import StorageUnavailable
from ledger.storage.lease import LEASE_TTL
from ledger.storage.sql import SqlStorage
from tests.evidence import FULL, scale
from tests.faults.service_load import (
    Server,
    Writers,
    acks_sent_in,
    check_answers,
    check_stored,
    ext4_image,
    fill,
    recovered_after,
    refusals_in,
    served,
    set_immutable,
    small_tmpfs,
    stop_server,
    summary,
)
from tests.helpers import cli_env, init_log
from tests.pg import PgCluster, find_pg_bin

PASS = "service-faults-passphrase"
ORIGIN = "faults.saksi.example/log"
WRITERS = scale(4, 16)
# Receipts before the fault and after it, and 503s during it, at least.
ACKS = scale(20, 500)
REFUSALS = scale(10, 500)
# How long a fault lasts at least, in seconds.
HOLD = 5.0 if FULL else 1.0
DEADLINE = 90.0


def env() -> dict[str, str]:
    # One address and one admin key write everything: no rate limit may refuse.
    return cli_env(
        PASS,
        SAKSI_CLIENT_RATE="1000000",
        SAKSI_CLIENT_BURST="1000000",
        SAKSI_KEY_RATE="1000000",
        SAKSI_KEY_BURST="1000000",
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    """A cluster of this module's own: its faults must not reach other tests."""
    bindir = find_pg_bin()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL (initdb, pg_ctl) is required in CI")
        pytest.skip("PostgreSQL binaries not installed")
    made = PgCluster(bindir)
    try:
        made.start()
        yield made
    finally:
        made.stop()


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    """Every run of the test; their writers are stopped even if it failed."""
    made: list[Run] = []
    yield made
    for run in made:
        run.writers.halt()


def _admin_sql(cluster: PgCluster, *statements: str) -> None:
    engine = sa.create_engine(cluster.url(), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def _new_log(directory: Path, db_url: str) -> None:
    init_log(directory, db_url, ORIGIN, PASS)


class Run:
    """One fault under load: the writers, the server, and the fault's timing."""

    def __init__(self, server: Server, directory: Path, runs: list[Run]) -> None:
        admin = load_key_file(directory / "admin.key", PASS.encode())
        self.server = server
        self.writers = Writers(server.url, admin, WRITERS)
        runs.append(self)
        self.began = 0.0
        self.ended = 0.0
        self.recovered_s = 0.0

    def before(self) -> None:
        self.writers.start()
        self.writers.wait_for("receipts before the fault", acks_sent_in("before", ACKS))

    @contextlib.contextmanager
    def fault(self) -> Iterator[None]:
        """The block starts the fault; it ends when the block is left."""
        self.began = self.writers.set_phase("fault")
        yield
        self.ended = self.writers.set_phase("after")

    def refused(self, count: int = REFUSALS) -> None:
        self.writers.wait_for("503s during the fault", refusals_in("fault", count))
        time.sleep(max(0.0, HOLD - (time.monotonic() - self.began)))

    def after(self) -> None:
        """Wait for the same process to write again; stop the writers."""
        self.writers.wait_for(
            "receipts after the fault ended", acks_sent_in("after", ACKS), DEADLINE
        )
        self.writers.stop()
        assert self.server.process.poll() is None, "the server exited"
        self.recovered_s = recovered_after(self.writers.snapshot(), self.ended)


def _finish(
    run: Run, db_url: str, directory: Path, evidence, ident: str, **figures: object
) -> None:
    stop_server(run.server)
    answers = run.writers.snapshot()
    check_answers(answers, run.server.stderr())
    acked = [a for a in answers if a.status in (200, 201)]
    size = check_stored(db_url, directory, ORIGIN, acked)
    during = [a for a in answers if a.answered_phase == "fault"]
    refused = sum(1 for a in during if a.status == 503)
    unknown = sum(1 for a in answers if a.status is None)
    print(
        f"\n{figures}: {summary(answers)}; size {size}; "
        f"recovered after {run.recovered_s:.2f} s"
    )
    durable = sum(1 for a in during if a.status in (200, 201))  # checked stored
    # Handled safely: refused with 503, or acknowledged and found durable.
    evidence.record(
        ident,
        attempts=len(during),
        detected=refused + durable,
        false_alarms=0,
        refused_503=refused,
        acknowledged=len(acked),
        acknowledged_during_fault=durable,
        unknown_outcome=unknown,
        lost=0,
        log_size=size,
        recovered_after_s=round(run.recovered_s, 2),
        **figures,
    )


# -- disk full --------------------------------------------------------------------


def _fill_while_serving(directory: Path, db_url: str, space: Path, runs) -> Run:
    """A new log on ``db_url`` served while ``space`` fills up, then empties."""
    _new_log(directory, db_url)
    with served(directory, db_url, env()) as server:
        run = Run(server, directory, runs)
        run.before()
        with run.fault():
            filler = fill(space)
            run.refused()
            filler.unlink()
        run.after()
    return run


def test_disk_full_sqlite(tmp_path, runs, evidence):
    directory = tmp_path / "log"
    with small_tmpfs(tmp_path / "small", "24m") as small:
        db_url = f"sqlite:///{small / 'saksi.db'}"
        run = _fill_while_serving(directory, db_url, small, runs)
        _finish(
            run, db_url, directory, evidence, "R3", backend="sqlite", fault="disk-full"
        )


@contextlib.contextmanager
def _tablespace_database(cluster: PgCluster, name: str) -> Iterator[tuple[str, Path]]:
    """A database whose tables live on a small tmpfs of their own (a tablespace).

    Mounted under the cluster's directory, which the server's user can reach.
    """
    owner = None
    if cluster.user:
        pw = pwd.getpwnam(cluster.user)
        owner = (pw.pw_uid, pw.pw_gid)
    with small_tmpfs(cluster.root / f"space-{name}", "24m", owner) as space:
        _admin_sql(cluster, f"CREATE TABLESPACE {name} LOCATION '{space}'")
        try:
            _admin_sql(cluster, f'CREATE DATABASE "{name}" TABLESPACE {name}')
            try:
                yield cluster.url(name), space
            finally:
                _admin_sql(cluster, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            _admin_sql(cluster, f"DROP TABLESPACE IF EXISTS {name}")


def test_disk_full_postgres(tmp_path, runs, cluster, evidence):
    directory = tmp_path / "log"
    with _tablespace_database(cluster, "full_disk") as (db_url, space):
        run = _fill_while_serving(directory, db_url, space, runs)
        _finish(
            run,
            db_url,
            directory,
            evidence,
            "R3",
            backend="postgresql",
            fault="disk-full",
        )


# -- read-only --------------------------------------------------------------------


def test_read_only_sqlite(tmp_path, runs, evidence):
    directory = tmp_path / "log"
    with ext4_image(tmp_path / "ext4", 64) as disk:
        db_file = disk / "saksi.db"
        db_url = f"sqlite:///{db_file}"
        _new_log(directory, db_url)
        files = [db_file, db_file.with_name("saksi.db-wal")]
        try:
            with served(directory, db_url, env()) as server:
                run = Run(server, directory, runs)
                run.before()
                with run.fault():
                    set_immutable(files, True)
                    run.refused()
                    set_immutable(files, False)
                run.after()
        finally:
            set_immutable(files, False)
        _finish(
            run, db_url, directory, evidence, "R3", backend="sqlite", fault="read-only"
        )


def test_read_only_postgres(tmp_path, runs, cluster, evidence):
    directory = tmp_path / "log"
    db_url = cluster.new_database()
    _new_log(directory, db_url)
    writable = (
        "SET default_transaction_read_only = off",
        "ALTER SYSTEM RESET default_transaction_read_only",
        "SELECT pg_reload_conf()",
    )
    try:
        with served(directory, db_url, env()) as server:
            run = Run(server, directory, runs)
            run.before()
            with run.fault():
                _admin_sql(
                    cluster,
                    "ALTER SYSTEM SET default_transaction_read_only = on",
                    "SELECT pg_reload_conf()",
                )
                run.refused()
                _admin_sql(cluster, *writable)
            run.after()
    finally:
        _admin_sql(cluster, *writable)
    _finish(
        run, db_url, directory, evidence, "R3", backend="postgresql", fault="read-only"
    )


# -- PostgreSQL crashes -----------------------------------------------------------


def _pg_ctl(cluster: PgCluster, *args: str) -> None:
    subprocess.run(
        [str(cluster.bindir / "pg_ctl"), "-D", str(cluster.data), *args],
        check=True,
        capture_output=True,
        user=cluster.user,
        cwd=cluster.root,
        timeout=120,
    )


# How long PostgreSQL stays down (the fault: unreachable for 30 s).
PG_OUTAGE = scale(2, 30)


def test_postgres_stopped_immediately_and_restarted(tmp_path, runs, cluster, evidence):
    directory = tmp_path / "log"
    db_url = cluster.new_database()
    _new_log(directory, db_url)
    try:
        with served(directory, db_url, env()) as server:
            run = Run(server, directory, runs)
            run.before()
            with run.fault():
                _pg_ctl(cluster, "-m", "immediate", "-w", "stop")
                run.refused()
                time.sleep(PG_OUTAGE)  # unreachable for a while, writes refused
                cluster.start()
            run.after()
            _still_the_sequencer(server, directory, db_url)
    finally:
        cluster.start()  # running again for the tests after this one
    _finish(
        run,
        db_url,
        directory,
        evidence,
        "R2",
        backend="postgresql",
        fault="pg-stop-immediate",
        outage_s=PG_OUTAGE,
    )


def _still_the_sequencer(server: Server, directory: Path, db_url: str) -> None:
    """The recovered writer still holds the log's sequencer lease: a second
    ``saksi serve`` of the same database joins it as a member of the cluster
    and takes no lease from it."""
    from tests.cluster.members import lease

    token, holder, _ = lease(db_url)
    assert holder == server.process.pid
    with served(directory, db_url, env()) as second:
        time.sleep(2 * LEASE_TTL)
        assert lease(db_url)[:2] == (token, server.process.pid)
        assert httpx.get(second.url + "/log/checkpoint").status_code == 200


# -- file descriptors -------------------------------------------------------------


def _nofile(pid: int, soft: int | None = None) -> tuple[int, int]:
    """The process's RLIMIT_NOFILE; with ``soft``, set that first (prlimit)."""
    if soft is not None:
        hard = _nofile(pid)[1]
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
    return resource.prlimit(pid, resource.RLIMIT_NOFILE)


def _can_connect(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_descriptors_exhausted(tmp_path, runs, store, request, evidence):
    directory = tmp_path / "log"
    cluster: PgCluster | None = None
    if store == "sqlite":
        db_url = f"sqlite:///{tmp_path / 'saksi.db'}"
    else:
        cluster = request.getfixturevalue("cluster")
        db_url = cluster.new_database()
    _new_log(directory, db_url)
    idle: list[socket.socket] = []
    with served(directory, db_url, env()) as server:
        run = Run(server, directory, runs)
        run.before()
        original = _nofile(server.pid)
        address = ("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
        try:
            with run.fault():
                # Not one descriptor more: every open, accept and connect fails.
                _nofile(server.pid, server.open_fds())
                for _ in range(64):  # clients that connect and say nothing
                    idle.append(socket.create_connection(address))
                if cluster is not None:
                    # Its database sessions end: they cannot be opened again.
                    _admin_sql(
                        cluster,
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        f"WHERE datname = '{sa.make_url(db_url).database}'",
                    )
                    run.refused()
                    # Sessions that ended gave their descriptors back: none
                    # more than what is open now.
                    _nofile(server.pid, server.open_fds())
                else:
                    run.writers.wait_for(
                        "answers during the fault",
                        lambda answers: (
                            sum(1 for a in answers if a.answered_phase == "fault")
                            >= ACKS
                        ),
                    )
                    time.sleep(HOLD)
                # The fault is real: a new client is turned away.
                refused_connection = not _can_connect(server.url)
                assert refused_connection, "descriptors were not exhausted"
                for sock in idle:
                    sock.close()
                idle.clear()
                _nofile(server.pid, original[0])
            run.after()
            assert _can_connect(server.url)
        finally:
            for sock in idle:
                sock.close()
            if server.process.poll() is None:
                _nofile(server.pid, original[0])
    _finish(
        run,
        db_url,
        directory,
        evidence,
        "R3",
        backend="sqlite" if cluster is None else "postgresql",
        fault="fd-exhaustion",
        new_connection_refused=refused_connection,
    )


def _insert(storage: SqlStorage, value: int) -> None:
    with storage._connect() as conn:
        conn.exec_driver_sql(f"INSERT INTO t VALUES ({value})")
        conn.commit()


def test_sqlite_connection_opened_while_read_only_is_not_kept(tmp_path):
    """SQLite opens a file it cannot write read-only, and such a connection
    stays read-only: the pool must not hand it out again once the file is
    writable, or writes would fail long after the fault ended."""
    with ext4_image(tmp_path / "ext4", 16) as disk:
        db_file = disk / "ro.db"
        storage = SqlStorage.open(f"sqlite:///{db_file}")
        files = [db_file, db_file.with_name("ro.db-wal")]
        try:
            with storage.engine.begin() as conn:
                conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            storage.engine.dispose()  # the next connection is a new one
            set_immutable(files, True)
            with pytest.raises(StorageUnavailable, match="readonly"):
                _insert(storage, 1)
            set_immutable(files, False)
            _insert(storage, 2)  # the same pool, writable again
            with storage.engine.connect() as conn:
                assert conn.exec_driver_sql("SELECT x FROM t").all() == [(2,)]
        finally:
            set_immutable(files, False)
            storage.close()
