"""Two cluster members in one process, on one PostgreSQL database.

What the subprocess tests show from outside, here from inside: writes through
either member are decided in one sequence and answered with receipts that
prove themselves; repeats and refusals come back as they would from one
writer (with their problem members); a member that stops hands the lease
over at once, and the other goes on.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from keys import Ed25519Signer
from ledger.cluster import ClusterLog
from ledger.errors import Refused
from ledger.storage.sql import SqlStorage
from tests.conftest import ORIGIN, FixedClock
from tests.recordlog import ADMINS, START, RecordLog, envelope_bytes
from verifier.checkpoint import verify_checkpoint
from verifier.proof_check import verify_inclusion


@pytest.fixture
def members(pg_cluster, signer):
    url = pg_cluster.new_database()
    base = RecordLog(url, signer, threshold=1)  # the genesis, by one process
    base.close()
    started = [
        ClusterLog(
            SqlStorage.open(url),
            signer,
            signer.verifier_key,
            ORIGIN,
            clock=FixedClock(START),
            interval=0.05,
        )
        for _ in range(2)
    ]
    for member in started:
        member.start()
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
        checkpoint, _ = verify_checkpoint(
            receipt.checkpoint, signer.verifier_key, ORIGIN
        )
        assert checkpoint.size == receipt.size
        verify_inclusion(
            receipt.index,
            receipt.size,
            receipt.leaf_hash,
            receipt.proof,
            checkpoint.root_hash,
        )
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
    # with the subject's current revision in the problem.
    base.heads.clear()
    clash = base.grant_payload(keys[3], "tps", "3171011001002")
    with pytest.raises(Refused) as refused:
        asyncio.run(_write(pair[0], clash))
    assert refused.value.cause == "stale-revision"
    assert refused.value.revision == 0  # type: ignore[attr-defined]
    assert _active(pair) is sequencer  # one term all along
    health = pair[0].health()
    assert health.integrated_size >= 21
    assert health.stopped is None


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
