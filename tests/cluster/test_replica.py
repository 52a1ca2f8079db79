"""Read-only servers on a PostgreSQL streaming replica (a hot standby).

The writer (``saksi serve``, a cluster member) writes on the primary;
``saksi serve --read-only`` reads a real streaming replica of it, checking
every head it finds against the log key before serving it. Caught up, it
serves the primary's checkpoint and proofs that verify against it; lagging
(replay paused), its own older checkpoint, which the primary proves it
extends; promoted by mistake, the last head it checked, until readiness says
that head is too old. Nothing acknowledged on the primary is lost.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from keys import load_key_file
from saksi_client import Receipt, SaksiClient
from tests.cluster.members import (
    ORIGIN,
    PASS,
    Member,
    grant_envelope,
    init_cluster_log,
)
from tests.helpers import cli_env, run_verify, serving
from tests.pg import PgCluster, PgReplica, find_pg_bin
from verifier.checkpoint import Checkpoint, verify_checkpoint
from verifier.note import VerifierKey
from verifier.proof_check import verify_consistency, verify_inclusion

READ_ONLY = ("--read-only", "--refresh", "0.2")


@pytest.fixture(scope="module")
def primary() -> Iterator[PgCluster]:
    """A primary of this module's own: the session's cluster streams no WAL,
    and a replica's base backup must not copy every other test's database."""
    bindir = find_pg_bin()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL (initdb, pg_ctl) is required in CI")
        pytest.skip("PostgreSQL binaries not installed")
    made = PgCluster(bindir, replication=True)
    try:
        made.start()
        yield made
    finally:
        made.stop()


@pytest.fixture
def log(tmp_path: Path, primary: PgCluster) -> Iterator[tuple[Path, str, Member]]:
    """A fresh log on the primary and its writer: (directory, URL, writer)."""
    db = primary.new_database()
    directory = tmp_path / "log"
    init_cluster_log(directory, db)
    writer = Member(directory, db, "writer")
    try:
        writer.start()
        yield directory, db, writer
    finally:
        writer.stop()


@pytest.fixture
def replica(primary: PgCluster, log: tuple[Path, str, Member]) -> Iterator[PgReplica]:
    """A streaming replica of the primary, taken once the log exists."""
    made = PgReplica(primary)
    try:
        made.start()
        made.wait_caught_up()
        yield made
    finally:
        made.stop()


class Observer:
    """What an observer holding ``log.vkey`` checks, against the primary."""

    def __init__(self, directory: Path, primary_url: str) -> None:
        self.key = VerifierKey.parse((directory / "log.vkey").read_text().strip())
        self.primary_url = primary_url

    def checkpoint(self, url: str) -> tuple[bytes, Checkpoint]:
        """The checkpoint ``url`` serves, its signature checked."""
        note = httpx.get(f"{url}/log/checkpoint").content
        return note, verify_checkpoint(note, self.key, ORIGIN)[0]

    def serves_primarys(self, reader: str, timeout: float = 30) -> Checkpoint:
        """The reader's checkpoint once it is the primary's (it looks every 0.2 s)."""
        deadline = time.monotonic() + timeout
        while True:
            want, checkpoint = self.checkpoint(self.primary_url)
            got, _ = self.checkpoint(reader)
            if got == want:
                return checkpoint
            assert time.monotonic() < deadline, "the reader never caught up"
            time.sleep(0.1)

    def consistent(self, old: Checkpoint, new: Checkpoint, url: str = "") -> None:
        """``new`` extends ``old``: a consistency proof served by ``url`` (the
        primary by default), checked against both signed roots."""
        assert old.size <= new.size
        if old.size == new.size:
            assert old.root_hash == new.root_hash
            return
        served = httpx.get(
            f"{url or self.primary_url}/v1/proofs/consistency",
            params={"old": old.size, "new": new.size},
        ).json()
        proof = [bytes.fromhex(h) for h in served["consistency_proof"]]
        verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)

    def included(self, url: str, receipt: Receipt, checkpoint: Checkpoint) -> None:
        """``url`` proves the receipt's entry in ``checkpoint`` (the primary's)."""
        served = httpx.get(
            f"{url}/v1/proofs/inclusion", params={"index": receipt.index}
        ).json()
        assert served["tree_size"] == checkpoint.size
        assert served["leaf_hash"] == receipt.leaf_hash.hex()
        proof = [bytes.fromhex(h) for h in served["inclusion_proof"]]
        verify_inclusion(
            receipt.index,
            checkpoint.size,
            receipt.leaf_hash,
            proof,
            checkpoint.root_hash,
        )

    def audit(self, directory: Path, url: str) -> None:
        """``saksi-verify audit`` of the whole log ``url`` serves."""
        out = run_verify("audit", "--log", url, "--key", str(directory / "log.vkey"))
        assert out.returncode == 0, out.stdout + out.stderr


def _write(writer: Member, key: VerifierKey, numbers: range) -> list[Receipt]:
    admin = load_key_file(writer.directory / "admin.key", PASS.encode())
    client = SaksiClient(writer.url, key)
    return [client.submit(grant_envelope(admin, n)) for n in numbers]


def test_a_reader_on_a_replica_serves_the_primarys_checkpoint_and_proofs(log, replica):
    directory, db, writer = log
    seen = Observer(directory, writer.url)
    with serving(
        directory, replica.same_database(db), cli_env(None), *READ_ONLY
    ) as reader:
        receipts = _write(writer, seen.key, range(6))
        replica.wait_caught_up()
        first = seen.serves_primarys(reader)
        assert first.size == receipts[-1].index + 1
        # Every inclusion proof the replica's reader serves verifies against
        # the primary's checkpoint, for the leaf the primary acknowledged.
        for receipt in receipts:
            seen.included(reader, receipt, first)
            entry = httpx.get(f"{reader}/v1/entries/{receipt.index}").json()
            assert entry == httpx.get(f"{writer.url}/v1/entries/{receipt.index}").json()
        receipts += _write(writer, seen.key, range(6, 11))
        _, later = seen.checkpoint(writer.url)
        assert later.size > first.size
        # The primary proves its later checkpoint extends the reader's.
        seen.consistent(first, later)
        replica.wait_caught_up()
        assert seen.serves_primarys(reader) == later
        # Caught up, the reader proves it too, from the replica's tiles.
        seen.consistent(first, later, reader)
        for receipt in receipts:
            seen.included(reader, receipt, later)
        seen.audit(directory, reader)
    assert (
        "read-only on http://127.0.0.1:" in (directory.parent / "serve.log").read_text()
    )


def test_a_lagging_replica_serves_its_older_consistent_checkpoint(log, replica):
    directory, db, writer = log
    seen = Observer(directory, writer.url)
    with serving(
        directory, replica.same_database(db), cli_env(None), *READ_ONLY
    ) as reader:
        receipts = _write(writer, seen.key, range(4))
        replica.wait_caught_up()
        before = seen.serves_primarys(reader)
        replica.pause_replay()
        # The primary acknowledges writes the replica has received but not
        # applied: the reader sees none of them.
        lagged = _write(writer, seen.key, range(4, 9))
        _, ahead = seen.checkpoint(writer.url)
        assert ahead.size == lagged[-1].index + 1 > before.size
        deadline = time.monotonic() + 1.5  # several of the reader's looks
        while time.monotonic() < deadline:
            _, served = seen.checkpoint(reader)
            assert served == before  # its own, older, signed checkpoint
            time.sleep(0.1)
        assert httpx.get(f"{reader}/healthz").json()["tree_size"] == before.size
        seen.consistent(before, ahead)  # a prefix of the primary's, proved
        for receipt in receipts:
            seen.included(reader, receipt, before)
        # An entry only the primary has is beyond the reader's log: 404, not
        # a proof to a tree nobody signed.
        beyond = httpx.get(
            f"{reader}/v1/proofs/inclusion", params={"index": lagged[0].index}
        )
        assert beyond.status_code == 404
        assert beyond.json()["type"] == "/problems/out-of-range"
        replica.resume_replay()
        replica.wait_caught_up()
        caught_up = seen.serves_primarys(reader)
        assert caught_up.size >= ahead.size
        seen.consistent(before, caught_up, reader)
        for receipt in receipts + lagged:
            seen.included(reader, receipt, caught_up)


def _ready(reader: str) -> httpx.Response:
    return httpx.get(f"{reader}/readyz")


def test_a_reader_asked_only_for_readiness_follows_the_replica(log, replica):
    directory, db, writer = log
    seen = Observer(directory, writer.url)
    env = cli_env(None, SAKSI_READY_MAX_AGE="3")
    with serving(directory, replica.same_database(db), env, *READ_ONLY) as reader:
        # A load balancer asks /readyz and nothing else until the answer is
        # 200: readiness must judge the replica's head, not the one the
        # reader loaded at start (signed at 'saksi init', too long ago).
        _write(writer, seen.key, range(1))
        deadline = time.monotonic() + 10
        while _ready(reader).status_code != 200:
            assert time.monotonic() < deadline, "the reader never turned ready"
            time.sleep(0.1)
        # Writes flow for longer than the limit: every answer is ready.
        n = 1
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            _write(writer, seen.key, range(n, n + 1))
            n += 1
            answer = _ready(reader)
            assert answer.status_code == 200, answer.text
            time.sleep(0.2)
        replica.wait_caught_up()
        _, primarys = seen.checkpoint(writer.url)
        end = time.monotonic() + 10
        while _ready(reader).json()["tree_size"] != primarys.size:
            assert time.monotonic() < end, "readiness never saw the new head"
            time.sleep(0.1)


def test_a_promoted_replica_serves_its_last_checkpoint_and_turns_unready(log, replica):
    directory, db, writer = log
    seen = Observer(directory, writer.url)
    max_age = 2.0
    env = cli_env(None, SAKSI_READY_MAX_AGE=str(max_age))
    with serving(directory, replica.same_database(db), env, *READ_ONLY) as reader:
        receipts = _write(writer, seen.key, range(4))
        replica.wait_caught_up()
        last = seen.serves_primarys(reader)
        assert _ready(reader).status_code == 200
        # Promoted by mistake: the standby leaves recovery and follows the
        # primary no more. Nothing writes on it, so its head stays put.
        replica.promote()
        assert not replica.in_recovery()
        n, unready = 4, None
        deadline = time.monotonic() + max_age + 20
        while unready is None:
            assert time.monotonic() < deadline, "the reader never turned unready"
            receipts += _write(writer, seen.key, range(n, n + 1))
            n += 1
            _, served = seen.checkpoint(reader)
            assert served == last  # the last head it checked, never another
            answer = _ready(reader)
            if answer.status_code != 200:
                unready = answer
            time.sleep(0.2)
        # What an operator sees: /readyz answers 503 not-ready ("the last
        # checkpoint was signed N s ago (limit 2 s)"), so a load balancer
        # takes the server out; /healthz stays 200 with a tree size that no
        # longer grows; /log/checkpoint and every proof still verify, against
        # an old checkpoint that the primary's extends; the metric
        # saksi_checkpoint_age_seconds keeps rising. The server logs no
        # integrity failure: the head it serves is genuine, only stale. The
        # cure is a new replica from the primary, not a restart of the reader.
        assert unready.status_code == 503
        problem = unready.json()
        assert problem["type"] == "/problems/not-ready"
        assert "the last checkpoint was signed" in problem["detail"]
        health = httpx.get(f"{reader}/healthz")
        assert health.status_code == 200
        assert health.json()["tree_size"] == last.size
        assert _ready(writer.url).status_code == 200
    # No write the primary acknowledged is lost, and its log still extends
    # what the promoted replica served.
    _, final = seen.checkpoint(writer.url)
    assert final.size == receipts[-1].index + 1
    assert sorted(r.index for r in receipts) == list(range(1, final.size))
    for receipt in receipts:
        seen.included(writer.url, receipt, final)
    seen.consistent(last, final)
    seen.audit(directory, writer.url)
