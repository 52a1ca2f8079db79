"""``saksi backup`` and ``saksi restore`` as an operator runs them.

SQLite: a backup taken while the log is served and written to verifies
(``saksi check`` on the copy); restoring an older copy is refused unless
``--rollback`` says so, and then ``saksi check --trusted-checkpoint`` and an
observer with state both name the rollback (the witnesses' refusal of a
restored copy is ``tests/faults/test_writer_tamper.py::
test_restored_backup_is_refused_by_a_witness_that_saw_more``). A copy of
another log, or of a fork, is refused. PostgreSQL: ``pg_dump`` and
``pg_restore`` into an empty database, checked the same way.
"""

from __future__ import annotations

import itertools
import json
import shutil
import threading

import httpx
import pytest

from keys import Ed25519Signer, load_key_file
from saksi_client import SaksiClient
from tests.helpers import (
    cli_env,
    grant_over_http,
    init_log,
    run_saksi,
    run_verify,
    serving,
)
from verifier.note import VerifierKey

PASS = "backup-restore-passphrase"
ORIGIN = "backup.saksi.example/log"
COUNTER = itertools.count()


def saksi(*args: str):
    return run_saksi(*args, passphrase=PASS, timeout=600)


def _grant(url, directory, count: int) -> None:
    admin = load_key_file(directory / "admin.key", PASS.encode())
    key = VerifierKey.parse((directory / "log.vkey").read_text().strip())
    client = SaksiClient(url, key)
    for _ in range(count):
        n = next(COUNTER)
        grant_over_http(
            client, admin, Ed25519Signer(f"k{n}", bytes([n % 256]) * 32), "tps", "3171"
        )


def _checkpoint(url: str) -> str:
    return httpx.get(f"{url}/log/checkpoint", timeout=30).text


def test_backup_while_serving_then_a_rollback_refused_and_named(tmp_path, evidence):
    directory = tmp_path / "log"
    db = f"sqlite:///{directory / 'saksi.db'}"
    init_log(directory, db, ORIGIN, PASS)
    backup = tmp_path / "backup.db"
    state = tmp_path / "observer"
    with serving(directory, db, cli_env(PASS)) as url:
        _grant(url, directory, 5)
        # Written to while the copy is made: the copy is of one moment.
        stop = threading.Event()

        def write() -> None:
            while not stop.is_set():
                _grant(url, directory, 1)

        writer = threading.Thread(target=write)
        writer.start()
        try:
            made = saksi(
                "backup", "--dir", str(directory), "--out", str(backup), "--json"
            )
        finally:
            stop.set()
            writer.join()
        assert made.returncode == 0, made.stderr
        copy = json.loads(made.stdout)
        assert copy["ok"] is True
        assert copy["method"] == "sqlite-online-backup"
        assert copy["size"] >= 7  # genesis, the admin's grant, five keys
        _grant(url, directory, 3)
        newer = tmp_path / "newer.checkpoint"
        newer.write_text(_checkpoint(url))
        seen = run_verify(
            "checkpoint", "--log", url, "--key", str(directory / "log.vkey"),
            "--state", str(state), "--json",
        )  # fmt: skip
        assert seen.returncode == 0, seen.stderr
    size = int(newer.read_text().split("\n")[1])
    assert size > copy["size"]

    # The copy verifies as the log, with the log's own check.
    checked = saksi(
        "check", "--dir", str(directory), "--db", f"sqlite:///{backup}", "--json"
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(checked.stdout)["size"] == copy["size"]

    # An older copy is not put in place by accident: the log stays as it was.
    refused = saksi("restore", str(backup), "--dir", str(directory), "--json")
    assert refused.returncode == 1
    assert "rolls the log back" in json.loads(refused.stdout)["error"]
    still = saksi("check", "--dir", str(directory), "--json")
    assert json.loads(still.stdout)["size"] == size

    # Forced, it is; the database it replaced is kept beside it.
    forced = saksi(
        "restore", str(backup), "--dir", str(directory), "--rollback", "--json"
    )
    assert forced.returncode == 0, forced.stderr
    restored = json.loads(forced.stdout)
    assert restored["rollback"] is True
    assert restored["size"] == copy["size"]
    assert restored["replaced_size"] == size
    kept = saksi(
        "check",
        "--dir",
        str(directory),
        "--db",
        f"sqlite:///{restored['replaced']}",
        "--json",
    )
    assert json.loads(kept.stdout)["size"] == size

    # Anyone who kept a later checkpoint names the rollback.
    named = saksi(
        "check", "--dir", str(directory), "--trusted-checkpoint", str(newer), "--json"
    )
    assert named.returncode == 1
    assert "rollback" in named.stdout
    with serving(directory, db, cli_env(PASS)) as url:
        again = run_verify(
            "checkpoint", "--log", url, "--key", str(directory / "log.vkey"),
            "--state", str(state), "--json",
        )  # fmt: skip
    assert again.returncode == 1
    assert "rollback" in (again.stdout + again.stderr).lower()
    # Three ways the older copy is caught: restore refuses it, the check with a
    # kept checkpoint and an observer with state name it.
    caught = [refused.returncode, named.returncode, again.returncode]
    evidence.record(
        "R10",
        attempts=len(caught),
        detected=caught.count(1),
        false_alarms=int(checked.returncode != 0),
        backend="sqlite",
        method=copy["method"],
        backup_size=copy["size"],
        log_size=size,
        backup_verified=checked.returncode == 0,
        written_while_copied=True,
    )


def test_a_copy_of_another_log_or_of_a_fork_is_refused(tmp_path, evidence):
    one, two = tmp_path / "one", tmp_path / "two"
    init_log(one, f"sqlite:///{one / 'saksi.db'}", ORIGIN, PASS)
    init_log(two, f"sqlite:///{two / 'saksi.db'}", "other.saksi.example/log", PASS)
    backup = tmp_path / "one.db"
    assert saksi("backup", "--dir", str(one), "--out", str(backup)).returncode == 0
    other = saksi("restore", str(backup), "--dir", str(two), "--json")
    assert other.returncode == 1
    assert "key differs" in json.loads(other.stdout)["error"]

    # A fork: the copy, served from another directory with the same key,
    # grows one way; the log grows another.
    fork = tmp_path / "fork"
    fork.mkdir()
    for name in ("log.key", "log.vkey", "admin.key"):
        shutil.copy(one / name, fork / name)
    shutil.copy(backup, fork / "saksi.db")
    with serving(fork, f"sqlite:///{fork / 'saksi.db'}", cli_env(PASS)) as url:
        _grant(url, fork, 2)
    with serving(one, f"sqlite:///{one / 'saksi.db'}", cli_env(PASS)) as url:
        _grant(url, one, 3)
    forked = tmp_path / "forked.db"
    assert saksi("backup", "--dir", str(fork), "--out", str(forked)).returncode == 0
    refused = saksi("restore", str(forked), "--dir", str(one), "--rollback", "--json")
    assert refused.returncode == 1
    assert "fork" in json.loads(refused.stdout)["hint"]
    assert json.loads(saksi("check", "--dir", str(one), "--json").stdout)["ok"]
    evidence.record(
        "R10",
        attempts=2,
        detected=[other.returncode, refused.returncode].count(1),
        backend="sqlite",
        refused="a copy of another log; a fork with --rollback",
    )


def test_backup_and_restore_usage_and_io_errors(tmp_path):
    directory = tmp_path / "log"
    init_log(directory, f"sqlite:///{directory / 'saksi.db'}", ORIGIN, PASS)
    out = tmp_path / "b.db"
    assert saksi("backup", "--dir", str(directory), "--out", str(out)).returncode == 0
    again = saksi("backup", "--dir", str(directory), "--out", str(out))
    assert again.returncode == 2
    assert "never overwrites" in again.stderr
    none = saksi(
        "backup", "--dir", str(tmp_path / "none"), "--out", str(tmp_path / "x")
    )
    assert none.returncode == 3
    missing = saksi("restore", str(tmp_path / "none.db"), "--dir", str(directory))
    assert missing.returncode == 3
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    bad = saksi("restore", str(junk), "--dir", str(directory))
    assert bad.returncode in (1, 3)
    assert "Traceback" not in bad.stderr
    assert not list(directory.glob("*.replaced-*"))
    assert not list(directory.glob(".*restoring"))


@pytest.mark.usefixtures("pg_cluster")
def test_postgres_dump_and_restore_into_an_empty_database(
    tmp_path, pg_cluster, evidence
):
    directory = tmp_path / "log"
    db = pg_cluster.new_database()
    init_log(directory, db, ORIGIN, PASS)
    with serving(directory, db, cli_env(PASS)) as url:
        _grant(url, directory, 4)
    dump = tmp_path / "log.dump"
    made = saksi(
        "backup", "--dir", str(directory), "--db", db, "--out", str(dump), "--json"
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["method"] == "pg_dump"
    target = pg_cluster.new_database()
    restored = saksi(
        "restore", str(dump), "--dir", str(directory), "--db", target, "--json"
    )
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["size"] == json.loads(made.stdout)["size"]
    checked = saksi("check", "--dir", str(directory), "--db", target, "--json")
    assert checked.returncode == 0, checked.stdout
    # Into a database that already holds a log: refused, and it is unchanged.
    twice = saksi("restore", str(dump), "--dir", str(directory), "--db", target)
    assert twice.returncode == 3
    assert "empty database" in twice.stderr
    evidence.record(
        "R10",
        attempts=1,
        detected=int(twice.returncode != 0),
        false_alarms=int(checked.returncode != 0),
        backend="postgresql",
        method="pg_dump",
        restored_size=json.loads(restored.stdout)["size"],
        restored_copy_verified=checked.returncode == 0,
    )
