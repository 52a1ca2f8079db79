"""One sequencer mode: every item goes through a gate, and nothing a gate or the
database does can leave a caller waiting or answer it with another entry."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ledger.errors import EntryTooLarge, IntegrityFailure
from ledger.gate import Entry, EntryGate
from verifier.rfc6962 import hash_leaf


def test_submit_refuses_what_append_refuses_and_the_writer_goes_on(make_ledger):
    ledger = make_ledger()
    with pytest.raises(EntryTooLarge, match="65535-byte limit"):
        ledger.submit(Entry(b"x" * 70_000), timeout=30)
    with pytest.raises(EntryTooLarge, match="Entry items"):
        ledger.submit(b"not an Entry", timeout=30)  # type: ignore[arg-type]
    assert ledger.size == 0
    receipt = ledger.append(b"after", timeout=30)
    assert receipt.index == 0
    outcomes = ledger.submit_many(
        [Entry(b"a"), Entry(b"y" * 70_000), Entry(b"a")], timeout=30
    )
    assert outcomes[0].index == 1  # type: ignore[union-attr]
    assert isinstance(outcomes[1], EntryTooLarge)
    assert outcomes[2].index == 1  # type: ignore[union-attr]
    assert outcomes[2].duplicate  # type: ignore[union-attr]


def test_a_gate_that_fails_stops_the_writes_and_leaves_nobody_waiting(make_ledger):
    ledger = make_ledger()
    ledger.append(b"first", timeout=30)

    def broken(*_args: object) -> list:
        raise RuntimeError("a bug in a gate")

    ledger._sequencer._gate.admit = broken  # type: ignore[attr-defined]
    with pytest.raises(IntegrityFailure, match="unexpectedly"):
        ledger.append(b"second", timeout=30)
    with pytest.raises(IntegrityFailure):
        ledger.append(b"third", timeout=30)
    assert ledger.size == 1


def test_a_repeat_is_never_answered_with_another_entry(make_ledger, db_url):
    ledger = make_ledger()
    ledger.append_many([b"kept-%d" % i for i in range(5)], timeout=30)
    # An administrator points entry 2's leaf-hash column at other bytes.
    forged = b"never logged"
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            triggers = conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
            ).all()
            for name, _ in triggers:
                conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
        else:
            conn.exec_driver_sql("ALTER TABLE entries DISABLE TRIGGER USER")
        key = int.from_bytes(hash_leaf(forged)[:8], "big", signed=True)
        conn.execute(
            sa.text("UPDATE entries SET leaf_hash = :h, leaf_key = :k WHERE idx = 2"),
            {"h": hash_leaf(forged), "k": key},
        )
        if engine.dialect.name == "sqlite":
            for _, sql in triggers:
                conn.exec_driver_sql(sql)
        else:
            conn.exec_driver_sql("ALTER TABLE entries ENABLE TRIGGER USER")
    engine.dispose()
    with pytest.raises(IntegrityFailure, match="does not hold what was submitted"):
        ledger.append(forged, timeout=30)
    assert ledger.size == 5


def test_the_entry_gate_decides_a_batch_in_order(make_ledger):
    ledger = make_ledger()
    gate = EntryGate(ledger.storage)
    decisions = gate.admit([Entry(d) for d in (b"a", b"b", b"a", b"c")], 0, 0)
    assert [type(d).__name__ for d in decisions] == [
        "Accept",
        "Accept",
        "Existing",
        "Accept",
    ]
    assert decisions[2].index == 0  # type: ignore[union-attr]
