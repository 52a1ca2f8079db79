"""A cluster as an operator runs it: three ``saksi serve`` on one PostgreSQL.

Every member takes writes and proves its receipts from the signed tree; one
holds the sequencer lease. Killed (SIGKILL), another takes over within
seconds and nothing acknowledged is lost; paused (SIGSTOP) past its lease,
it commits nothing when it wakes, and the log verifies.
"""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from keys import load_key_file
from saksi_client import Receipt, SaksiClient
from tests.cluster.members import (
    PASS,
    Member,
    grant_envelope,
    init_cluster_log,
    leader,
    lease,
    writer_threads,
)
from tests.evidence import scale
from tests.helpers import run_verify
from verifier.checkpoint import verify_checkpoint
from verifier.note import VerifierKey
from verifier.tile_client import TileLog, http_fetch

ORIGIN = "cluster.saksi.example/log"


@pytest.fixture
def cluster(tmp_path: Path, pg_cluster) -> Iterator[tuple[Path, str, list[Member]]]:
    db = pg_cluster.new_database()
    directory = tmp_path / "log"
    init_cluster_log(directory, db)
    members = [Member(directory, db, f"member{i}") for i in range(3)]
    try:
        for member in members:
            member.start()
        yield directory, db, members
    finally:
        for member in members:
            member.stop()


def _key(directory: Path) -> VerifierKey:
    return VerifierKey.parse((directory / "log.vkey").read_text().strip())


def _converged(members: list[Member], key: VerifierKey, size: int) -> bytes:
    """The one checkpoint every member serves, once it holds ``size`` entries."""
    deadline = time.monotonic() + 30
    while True:
        notes = {httpx.get(m.url + "/log/checkpoint").content for m in members}
        sizes = {verify_checkpoint(n, key, ORIGIN)[0].size for n in notes}
        if len(notes) == 1 and min(sizes) >= size:
            return notes.pop()
        assert time.monotonic() < deadline, sizes
        time.sleep(0.1)


def _audit(directory: Path, url: str) -> None:
    out = run_verify("audit", "--log", url, "--key", str(directory / "log.vkey"))
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_member_takes_writes_and_one_sequences(cluster):
    directory, db, members = cluster
    key = _key(directory)
    admin = load_key_file(directory / "admin.key", PASS.encode())
    _, token = leader(db, members)
    receipts = [
        SaksiClient(members[n % 3].url, key).submit(grant_envelope(admin, n))
        for n in range(12)
    ]
    # Entry 0 is the genesis; every write got its own entry, in one sequence.
    assert sorted(r.index for r in receipts) == list(range(1, 13))
    assert not any(r.duplicate for r in receipts)
    # A repeat through another member is answered with the first entry.
    again = SaksiClient(members[2].url, key).submit(grant_envelope(admin, 0))
    assert (again.index, again.duplicate) == (receipts[0].index, True)
    assert lease(db)[0] == token  # one sequencer all along
    _converged(members, key, 13)
    _audit(directory, members[1].url)


KILLS = scale(3, 12)


def test_a_killed_sequencer_is_replaced_and_nothing_acknowledged_is_lost(
    cluster, evidence
):
    """Three members, writers going on all along, the sequencer SIGKILLed
    again and again (and started again, as a supervisor would): another takes
    over each time, and every acknowledged record is in the log, once."""
    directory, db, members = cluster
    key = _key(directory)
    admin = load_key_file(directory / "admin.key", PASS.encode())
    acked: dict[int, Receipt] = {}
    stop = threading.Event()
    writers = writer_threads(members, key, admin, stop, acked)
    for w in writers:
        w.start()
    takeovers: list[float] = []  # the kill to the next term's lease
    resumed: list[float] = []  # the kill to writes acknowledged again
    try:
        _, token = leader(db, members)
        for _ in range(KILLS):
            time.sleep(1.0)
            victim, token = leader(db, members, after=token - 1)
            before = len(acked)
            victim.kill()
            killed = time.monotonic()
            _, token = leader(db, members, after=token)
            takeovers.append(time.monotonic() - killed)
            deadline = time.monotonic() + 30
            while len(acked) <= before + 2:
                assert time.monotonic() < deadline, "no writes after the takeover"
                time.sleep(0.02)
            resumed.append(time.monotonic() - killed)
            victim.start()  # the operator's supervisor brings it back
    finally:
        stop.set()
        for w in writers:
            w.join(timeout=60)
    size = max(r.index for r in acked.values()) + 1
    note = _converged(members, key, size)
    checkpoint, _ = verify_checkpoint(note, key, ORIGIN)
    # Every acknowledged record is in the log at its index, and each index
    # holds one record: nothing acknowledged was lost or logged twice.
    by_index = {r.index: r for r in acked.values()}
    assert len(by_index) == len(acked)
    tiles = TileLog(http_fetch(f"{members[0].url}/log"))
    entries = {
        first + n: entry
        for first, bundle in tiles.entries(0, checkpoint.size)
        for n, entry in enumerate(bundle)
    }
    assert sorted(entries) == list(range(checkpoint.size))  # gapless
    for index, receipt in by_index.items():
        assert entries[index] == receipt.entry
    _audit(directory, members[0].url)
    evidence.record(
        "R1",
        attempts=len(takeovers),
        detected=len(takeovers),
        false_alarms=0,
        mode="cluster of 3, sequencer killed",
        kills=len(takeovers),
        acknowledged=len(acked),
        lost=0,
        takeover_p50_s=round(statistics.median(takeovers), 2),
        takeover_max_s=round(max(takeovers), 2),
        writes_again_p50_s=round(statistics.median(resumed), 2),
        writes_again_max_s=round(max(resumed), 2),
    )


def test_a_sequencer_paused_past_its_lease_commits_nothing_when_it_wakes(cluster):
    directory, db, members = cluster
    key = _key(directory)
    admin = load_key_file(directory / "admin.key", PASS.encode())
    paused, token = leader(db, members)
    SaksiClient(paused.url, key).submit(grant_envelope(admin, 1000))
    paused.signal(signal.SIGSTOP)
    try:
        others = [m for m in members if m is not paused]
        successor, new_token = leader(db, others, after=token)
        assert new_token == token + 1
        written = SaksiClient(others[0].url, key, timeout=30).submit(
            grant_envelope(admin, 1001)
        )
    finally:
        paused.signal(signal.SIGCONT)
    # Awake again, it finds its term over: it writes through the new sequencer.
    after = SaksiClient(paused.url, key, timeout=30).submit(grant_envelope(admin, 1002))
    assert after.index == written.index + 1
    assert lease(db)[0] == new_token  # it took nothing back
    assert leader(db, members)[0] is successor
    deadline = time.monotonic() + 30
    while "no longer the sequencer" not in paused.log():
        assert time.monotonic() < deadline, paused.log()
        time.sleep(0.1)
    _converged(members, key, after.index + 1)
    _audit(directory, successor.url)


def _children(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return {int(p) for p in f.read().split()}


def test_workers_share_one_address_and_a_dead_one_is_replaced(tmp_path, pg_cluster):
    db = pg_cluster.new_database()
    directory = tmp_path / "log"
    init_cluster_log(directory, db)
    key = _key(directory)
    admin = load_key_file(directory / "admin.key", PASS.encode())
    server = Member(directory, db, "workers", "--workers", "3").start()
    try:
        deadline = time.monotonic() + 30
        while len(_children(server.pid)) < 3:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
        workers = _children(server.pid)
        client = SaksiClient(server.url, key)
        first = [client.submit(grant_envelope(admin, 2000 + n)) for n in range(6)]
        assert sorted(r.index for r in first) == list(range(1, 7))
        token, holder, _ = lease(db)
        assert holder in workers
        os.kill(holder, signal.SIGKILL)  # the sequencing worker dies
        deadline = time.monotonic() + 30
        while len(_children(server.pid)) < 3 or holder in _children(server.pid):
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
        after = client.submit(grant_envelope(admin, 2100))
        assert after.index == 7
        assert lease(db)[0] > token
        assert "starting another" in server.log()
    finally:
        server.stop()
    assert server.proc is not None
    assert server.proc.returncode == 0
    for pid in workers:
        assert not os.path.exists(f"/proc/{pid}") or _zombie(pid)


def _zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] == "Z"
