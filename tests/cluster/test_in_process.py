"""Two cluster members in one process, on one PostgreSQL database.

What the subprocess tests show from outside, here from inside: writes through
either member are decided in one sequence and answered with receipts that
prove themselves; repeats and refusals come back as they would from one
writer (with their problem members); a member that stops hands the lease
over at once, and the other goes on.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future

import pytest
import sqlalchemy as sa

from keys import Ed25519Signer
from ledger.cluster import ClusterLog, QueueClient
from ledger.commit import Committed
from ledger.errors import (
    IntegrityFailure,
    LeaseLost,
    LedgerError,
    Pushback,
    Refused,
    StorageUnavailable,
)
from ledger.storage.sql import SqlStorage
from tests.conftest import ORIGIN, FixedClock
from tests.recordlog import ADMINS, START, RecordLog, envelope_bytes
from verifier.checkpoint import verify_checkpoint
from verifier.dsse import UnknownKey
from verifier.proof_check import verify_inclusion
from verifier.registry.authorize import RoleNotAllowed

TPS = "3171011001001"


def _member(url: str, signer, interval: float = 0.5) -> ClusterLog:
    """A started member of the log at ``url``."""
    member = ClusterLog(
        SqlStorage.open(url),
        signer,
        signer.verifier_key,
        ORIGIN,
        clock=FixedClock(START),
        interval=interval,
    )
    member.start()
    return member


@pytest.fixture
def members(pg_cluster, signer):
    url = pg_cluster.new_database()
    base = RecordLog(url, signer, threshold=1)  # the genesis, by one process
    base.close()
    started = [_member(url, signer, interval=0.05) for _ in range(2)]
    try:
        yield base, started
    finally:
        for member in started:
            member.close()


def _active(members: list[ClusterLog]) -> ClusterLog:
    deadline = time.monotonic() + 30
    while True:
        active = [m for m in members if m.candidate.active]
        if len(active) == 1:
            return active[0]
        assert len(active) < 2, "two members sequence at once"
        assert time.monotonic() < deadline, "no member took the lease"
        time.sleep(0.02)


def _proves_itself(receipt, signer) -> None:
    """The receipt's checkpoint verifies, for its size, and proves its entry."""
    checkpoint, _ = verify_checkpoint(receipt.checkpoint, signer.verifier_key, ORIGIN)
    assert checkpoint.size == receipt.size
    verify_inclusion(
        receipt.index,
        receipt.size,
        receipt.leaf_hash,
        receipt.proof,
        checkpoint.root_hash,
    )


async def _write(member: ClusterLog, payload: bytes):
    submission = member.writer.prepare(envelope_bytes(payload, ADMINS[:1]))
    return await member.writer.submit(submission)


def test_writes_through_either_member_are_one_sequence(members, signer):
    base, pair = members
    sequencer = _active(pair)
    keys = [Ed25519Signer.generate(f"officer{i}") for i in range(20)]
    payloads = [base.grant_payload(k, "tps", "3171011001001") for k in keys]

    async def write_all():
        return await asyncio.gather(
            *(_write(pair[i % 2], p) for i, p in enumerate(payloads))
        )

    receipts = asyncio.run(write_all())
    assert sorted(r.index for r in receipts) == list(range(1, 21))
    for receipt in receipts:
        _proves_itself(receipt, signer)
        assert not receipt.duplicate
    # A repeat, through the member that did not log it: the same entry.
    first = receipts[0]
    again = asyncio.run(_write(pair[1], payloads[0]))
    assert (again.index, again.duplicate, again.entry) == (
        first.index,
        True,
        first.entry,
    )
    # A second revision 0 of a subject is refused as one writer refuses it,
    # with the subject's current revision in the problem: by the sequencer
    # itself in its own process, carried over the queue in the other.
    base.heads.clear()
    for n, member in enumerate(pair):
        clash = base.grant_payload(keys[3], "tps", f"317101100100{n + 2}")
        with pytest.raises(LedgerError) as refused:
            asyncio.run(_write(member, clash))
        assert refused.value.cause == "stale-revision"
        assert refused.value.revision == 0  # type: ignore[attr-defined]
        assert isinstance(refused.value, Refused) == (member is not sequencer)
    assert _active(pair) is sequencer  # one term all along
    pair[0].tree.refresh()  # its view is of its own last look
    health = pair[0].health()
    assert health.integrated_size >= 21
    assert health.stopped is None


def test_receipts_are_made_together_and_each_is_checked(members, signer):
    """Queued writes decided by one commit get their receipts from one call
    (one look at the tree, one read of the entries); within it, an entry that
    does not hold its submitted record fails alone. (The lease holder's own
    writes get theirs from the commit: the other member queues.)"""
    base, pair = members
    sequencer = _active(pair)
    member = next(m for m in pair if m is not sequencer)
    made: list[int] = []
    inner = member.writer._receipts._make  # counted here

    def counted(decided):
        made.append(len(decided))
        return inner(decided)

    member.writer._receipts._make = counted
    keys = [Ed25519Signer.generate(f"clerk{i}") for i in range(12)]
    payloads = [base.grant_payload(k, "tps", "3171011001003") for k in keys]

    async def write_all():
        return await asyncio.gather(*(_write(member, p) for p in payloads))

    receipts = asyncio.run(write_all())
    assert sum(made) == len(payloads)
    assert len(made) < len(payloads)  # together, not one call each
    for receipt in receipts:
        _proves_itself(receipt, signer)
    # The sequencer names entries; each is checked to hold its submission.
    first, second = receipts[0], receipts[1]
    submitted = member.writer.prepare(envelope_bytes(payloads[0], ADMINS[:1]))
    other = member.writer.prepare(envelope_bytes(payloads[1], ADMINS[:1]))
    got = member.receipts(
        [
            (first.index, True, submitted),
            (first.index, False, other),  # named the wrong entry
            (second.index, True, other),
        ]
    )
    assert got[0].entry == first.entry  # type: ignore[union-attr]
    assert got[0].duplicate  # type: ignore[union-attr]
    assert isinstance(got[1], IntegrityFailure)
    assert "does not hold the submitted record" in str(got[1])
    assert got[2].index == second.index  # type: ignore[union-attr]


def test_the_gate_answers_without_waiting_and_follows_the_log(members):
    """The API asks a member's gate on its event loop: the answer is the
    registries as last replayed, even while a replay holds them; a thread of
    the gate's own then brings them forward to the signed tree."""
    base, (writing, other) = members
    gate, registries = other.writer.gate, other.registry
    gate.catch_up()
    key = Ed25519Signer.generate("granted-elsewhere")
    asyncio.run(_write(writing, base.grant_payload(key, "tps", "3171011001004")))
    other.tree.refresh()
    answered: list[bytes | None] = []
    with registries._lock:  # a replay under way
        asking = threading.Thread(
            target=lambda: answered.append(gate.public_key(key.keyid))
        )
        asking.start()
        asking.join(10)
        assert answered == [None]  # at once, from the registries replayed
    deadline = time.monotonic() + 10
    while gate.public_key(key.keyid) is None:
        assert time.monotonic() < deadline, "the gate did not follow the log"
        time.sleep(0.02)


def test_a_registry_that_no_longer_replays_stops_the_gate(members):
    """A stored registry record that no longer replays (an edited database)
    is an integrity failure: from then on the gate answers nothing."""
    base, (writing, other) = members
    gate = other.writer.gate
    gate.catch_up()

    def edited():
        raise IntegrityFailure("entry 3 is not the one the signed tree holds")

    other.registry.live = edited  # what replaying an edited record raises
    key = Ed25519Signer.generate("after-the-edit")
    asyncio.run(_write(writing, base.grant_payload(key, "tps", "3171011001005")))
    other.tree.refresh()
    deadline = time.monotonic() + 10
    while gate._failure is None:  # the gate's thread finds it
        gate.public_key(key.keyid)  # answers from the registries meanwhile
        assert time.monotonic() < deadline, "the gate kept answering"
        time.sleep(0.02)
    with pytest.raises(IntegrityFailure, match="signed tree"):
        gate.public_key(key.keyid)
    with pytest.raises(IntegrityFailure):
        _ = gate.registry


def test_a_member_that_stops_hands_the_lease_over_at_once(members):
    base, pair = members
    first = _active(pair)
    other = pair[1] if first is pair[0] else pair[0]
    token = first.storage.fence
    first.close()
    pair.remove(first)
    started = time.monotonic()
    assert _active(pair) is other
    assert time.monotonic() - started < first.storage.lease_ttl  # not waited out
    assert other.storage.fence == token + 1  # type: ignore[operator]
    key = Ed25519Signer.generate("after")
    receipt = asyncio.run(
        _write(other, base.grant_payload(key, "tps", "3171011001001"))
    )
    assert receipt.index == other.tree.refresh().size - 1


def test_without_a_sequencer_writes_wait_then_the_queue_stops_growing(
    pg_cluster, signer
):
    """Another process holds the lease and sequences nothing: a write waits
    its time and is answered 503 (retry), the queue refuses more once full, and
    when a sequencer comes, what was queued is logged: a retry gets its entry."""
    url = pg_cluster.new_database()
    base = RecordLog(url, signer, threshold=1)
    base.close()
    stuck = SqlStorage.open(url)
    stuck.lease_ttl = 600.0
    assert stuck.take_lease() is not None  # alive, and never sequencing
    member = _member(url, signer)
    member.queue._timeout = 1.0  # type: ignore[attr-defined]
    member.queue._max_backlog = 3  # type: ignore[attr-defined]
    try:
        keys = [Ed25519Signer.generate(f"late{i}") for i in range(3)]
        payloads = [base.grant_payload(k, "tps", "3171011001001") for k in keys]

        async def write_all():
            return await asyncio.gather(
                *(_write(member, p) for p in payloads), return_exceptions=True
            )

        waited = asyncio.run(write_all())
        assert all(isinstance(w, Pushback) for w in waited), waited
        assert "send it again" in str(waited[0])
        deadline = time.monotonic() + 10
        while member.queue.backlog < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        extra = base.grant_payload(
            Ed25519Signer.generate("more"), "tps", "3171011001001"
        )
        with pytest.raises(Pushback, match="write queue holds 3"):
            asyncio.run(_write(member, extra))
        assert member.storage.queue_length() == 3  # refused before it was queued
        stuck.drop_lease()  # a sequencer at last
        _active([member])
        deadline = time.monotonic() + 30
        while member.queue.backlog:  # counted again, every second
            assert time.monotonic() < deadline
            time.sleep(0.05)
        member.queue._timeout = 30.0  # type: ignore[attr-defined]
        again = asyncio.run(_write(member, payloads[0]))
        assert again.duplicate  # logged from the queue before the retry came
        assert member.storage.queue_length() == 0
    finally:
        member.close()
        stuck.close()


def _count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


class _AnswerLost:
    """The database, except that its first answer with outcomes never arrives:
    the read committed, then the connection broke (as when PostgreSQL is
    stopped at that moment)."""

    def __init__(self, storage: SqlStorage) -> None:
        self._storage = storage
        self.lost = 0

    def __getattr__(self, name: str):
        return getattr(self._storage, name)

    def take_outcomes(self, ids, delivered=()):
        rows = self._storage.take_outcomes(ids, delivered)
        if rows and not self.lost:
            self.lost += 1
            raise StorageUnavailable("outcomes not read: the connection broke")
        return rows


def test_an_outcome_whose_answer_was_lost_is_read_again(members):
    """Reading an outcome deletes nothing: it is deleted by the read after the
    one that handed it over, so an answer lost on the way costs one more read,
    never the writer's outcome (it would wait its time out in vain)."""
    base, pair = members
    member = _active(pair)
    storage = _AnswerLost(member.storage)
    client = QueueClient(storage, member.codec, timeout=20.0)  # type: ignore[arg-type]
    payload = base.grant_payload(Ed25519Signer.generate("k"), "tps", "3171011001001")
    submission = member.writer.prepare(envelope_bytes(payload, ADMINS[:1]))
    try:
        index, duplicate = asyncio.run(client.decide(submission))
        assert storage.lost == 1
        assert not duplicate
        engine = sa.create_engine(base.url)
        deadline = time.monotonic() + 10
        try:
            while _count(engine, "write_outcomes"):
                assert time.monotonic() < deadline, "a handed-over outcome was kept"
                time.sleep(0.05)
        finally:
            engine.dispose()
    finally:
        client.close()
    again = asyncio.run(member.writer.submit(submission))
    assert again.duplicate
    assert again.index == index


def test_the_lease_holder_serves_at_least_the_tree_of_its_receipts(pg_cluster, signer):
    """The lease holder's receipts come from its commits, not from a look at
    the stored tree: what it publishes is then its sequencer's tree, so a
    client that got a receipt reads at least that tree there, at once (here
    the stored tree is not looked at again meanwhile)."""
    url = pg_cluster.new_database()
    base = RecordLog(url, signer, threshold=1)
    base.close()
    holder = _member(url, signer, interval=600.0)
    try:
        _active([holder])
        holder._look_soon = threading.Event()  # type: ignore[attr-defined]
        looked = holder.tree.last()[0]
        payload = base.grant_payload(Ed25519Signer.generate("k"), "tps", TPS)
        receipt = asyncio.run(_write(holder, payload))
        _proves_itself(receipt, signer)
        assert holder.tree.last()[0] is looked  # no look since
        served, _ = verify_checkpoint(
            holder.reader.checkpoint(), signer.verifier_key, ORIGIN
        )
        assert served.size >= receipt.size > looked.size
        # Each receipt's proof is checked against the commit's signed root
        # before it is given: an entry that is not the one committed fails.
        payload = base.grant_payload(Ed25519Signer.generate("k2"), "tps", TPS)
        submission = holder.writer.prepare(envelope_bytes(payload, ADMINS[:1]))
        (committed,) = holder.candidate.sequencer.submit([submission]).result(30)
        forged = Committed(
            committed.index, committed.leaf_hash, False, committed.commit, b"{}"
        )
        with pytest.raises(IntegrityFailure, match="does not prove"):
            holder.commit_receipt(forged)
        assert holder.commit_receipt(committed).index == committed.index
    finally:
        holder.close()


def test_a_key_granted_through_one_member_is_known_at_once_to_the_other(members):
    """The other member's registry follows the signed tree: a signature by the
    new key is checked there (and then refused by the gate for its role, not
    as a signature by an unknown key)."""
    base, pair = members
    officer = Ed25519Signer.generate("officer")
    asyncio.run(_write(pair[0], base.grant_payload(officer, "tps", "3171011001001")))
    other = Ed25519Signer.generate("other")
    payload = base.grant_payload(other, "tps", "3171011001001")
    submission = pair[1].writer.prepare(envelope_bytes(payload, [officer]))
    assert submission.signers == (officer.keyid,)
    with pytest.raises(Refused) as refused:
        asyncio.run(pair[1].writer.submit(submission))
    assert refused.value.cause == "role-not-allowed"
    with pytest.raises(UnknownKey):  # a key nobody granted stays unknown
        pair[1].writer.prepare(envelope_bytes(payload, [other]))


def test_the_writes_of_one_turn_reach_the_sequencer_together(members, signer):
    """The lease holder hands the writes one turn of its event loop checked to
    its sequencer in one call, as one process's writer does; each still gets
    its own answer: receipts that prove themselves, a repeat answered with
    the entry of its first copy, a refusal with its own cause."""
    base, pair = members
    holder = _active(pair)
    officer = Ed25519Signer.generate("officer")
    asyncio.run(_write(holder, base.grant_payload(officer, "tps", TPS)))
    sequencer = holder.candidate.sequencer
    calls: list[int] = []
    submit = sequencer.submit

    def counted(items, tags=None):
        calls.append(len(items))
        return submit(items, tags)

    sequencer.submit = counted
    granted = [Ed25519Signer.generate(f"turn-{i}") for i in range(3)]
    envelopes = [
        envelope_bytes(base.grant_payload(k, "tps", TPS), ADMINS[:1]) for k in granted
    ]
    envelopes.append(envelopes[0])  # the same write again, in the same turn
    envelopes.append(  # an officer may not grant keys
        envelope_bytes(
            base.grant_payload(Ed25519Signer.generate("x"), "tps", TPS), [officer]
        )
    )

    async def together():
        prepared = [holder.writer.prepare(e) for e in envelopes]
        return await asyncio.gather(
            *(holder.writer.submit(s) for s in prepared), return_exceptions=True
        )

    *receipts, repeat, refused = asyncio.run(together())
    assert calls == [5]
    for receipt in receipts:
        _proves_itself(receipt, signer)
    first = receipts[0].index
    assert [r.index for r in receipts] == [first, first + 1, first + 2]
    assert not any(r.duplicate for r in receipts)
    assert repeat.index == first
    assert repeat.duplicate
    assert isinstance(refused, RoleNotAllowed)  # the gate's own refusal, as here


def test_a_turn_not_decided_in_time_is_answered_busy(members):
    """A sequencer that does not decide within the queue's timeout: every
    write of the turn is answered 503 (send it again), none waits on."""
    base, pair = members
    holder = _active(pair)
    holder.queue._timeout = 0.2
    holder.candidate.sequencer.submit = lambda items, tags=None: Future()

    async def both():
        prepared = [
            holder.writer.prepare(
                envelope_bytes(
                    base.grant_payload(Ed25519Signer.generate(f"k{i}"), "tps", TPS),
                    ADMINS[:1],
                )
            )
            for i in range(2)
        ]
        return await asyncio.wait_for(
            asyncio.gather(
                *(holder.writer.submit(s) for s in prepared), return_exceptions=True
            ),
            10,
        )

    answers = asyncio.run(both())
    assert [type(a) for a in answers] == [Pushback, Pushback]
    assert all("send it again" in str(a) for a in answers)


def test_a_turn_its_term_fenced_goes_through_the_queue(members, signer):
    """A term that lost its lease as it was handed the writes committed none
    of them: they are decided through the write queue instead, and proven."""
    base, pair = members
    holder = _active(pair)
    sequencer = holder.candidate.sequencer
    submit = sequencer.submit
    fenced: list[int] = []

    def fenced_once(items, tags=None):
        if tags is None and not fenced:  # the holder's own turn, not the pump
            fenced.append(len(items))
            lost: Future = Future()
            lost.set_exception(LeaseLost("another member holds the lease"))
            return lost
        return submit(items, tags)

    sequencer.submit = fenced_once
    key = Ed25519Signer.generate("after-the-fence")
    receipt = asyncio.run(_write(holder, base.grant_payload(key, "tps", TPS)))
    assert fenced == [1]
    _proves_itself(receipt, signer)
    assert holder.writer.gate.public_key(key.keyid) is not None


def test_the_lease_holders_gate_is_its_terms_then_follows_the_log(members):
    """While a member sequences, the API's gate is its term's own (brought
    forward by each commit): a key granted there is known the moment its
    receipt is given, with nothing replayed. When the term ends, the gate
    keeps the term's registries until the replay has caught up with them,
    then follows the log as every other member does."""
    base, pair = members
    holder = _active(pair)
    other = pair[1] if holder is pair[0] else pair[0]
    gate = holder.writer.gate
    gate.catch_up()
    replayed = holder.registry.snapshot()[2]
    here = Ed25519Signer.generate("granted-here")
    asyncio.run(_write(holder, base.grant_payload(here, "tps", TPS)))
    term = holder.own_term()
    assert term is not None
    assert gate.registry is term.gate.registry
    assert gate.public_key(here.keyid) is not None
    time.sleep(0.3)  # the holder's look after its commit: no replay follows it
    assert holder.registry.snapshot()[2] == replayed
    holder.candidate.stop()  # the term ends; the other member takes the lease
    assert _active(pair) is other
    assert holder.own_term() is None
    assert gate.public_key(here.keyid) is not None  # not forgotten meanwhile
    there = Ed25519Signer.generate("granted-there")
    asyncio.run(_write(other, base.grant_payload(there, "tps", TPS)))
    holder.tree.refresh()
    deadline = time.monotonic() + 10
    while gate.public_key(there.keyid) is None:
        assert time.monotonic() < deadline, "the gate did not follow the log"
        time.sleep(0.02)
    assert gate.public_key(here.keyid) is not None
    assert holder.registry.snapshot()[2] > replayed
