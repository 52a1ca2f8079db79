"""The same storage suite on SQLite and on a real PostgreSQL (started by the tests)."""

from __future__ import annotations

import asyncio
import hashlib
import threading

import pytest
import sqlalchemy as sa

from keys import Ed25519Signer
from ledger.errors import EntryTooLarge, IntegrityFailure, StorageUnavailable
from ledger.fullcheck import check_log
from ledger.storage.rows import leaf_key
from ledger.storage.sql import SqlStorage
from tests import oracle
from tests.conftest import ORIGIN, create_log
from tests.evidence import scale
from verifier.checkpoint import verify_inclusion_in_checkpoint
from verifier.proof_check import verify_consistency


def entry(i: int) -> bytes:
    return f"entry-{i:06d}:".encode() + hashlib.sha256(str(i).encode()).digest() * 18


def verify_receipt(receipt, signer) -> None:
    checkpoint = verify_inclusion_in_checkpoint(
        receipt.checkpoint,
        signer.verifier_key,
        ORIGIN,
        receipt.index,
        receipt.leaf_hash,
        receipt.proof,
    )
    assert checkpoint.size == receipt.size


def test_append_receipts_verify_and_match_oracle(make_ledger, signer):
    ledger = make_ledger()
    data = [entry(i) for i in range(700)]
    receipts = [ledger.append(d) for d in data[:5]] + ledger.append_many(data[5:])
    assert [r.index for r in receipts] == list(range(700))
    for r in receipts:
        verify_receipt(r, signer)
    leaves = [oracle.leaf(d) for d in data]
    assert ledger.head.root == oracle.mth(leaves)
    for old in (1, 5, 256, 511, 699):
        proof = ledger.reader.consistency_proof(old, 700)
        assert proof == oracle.proof(old, leaves)
        verify_consistency(old, 700, oracle.mth(leaves[:old]), ledger.head.root, proof)
    for index in (0, 255, 256, 699):
        assert ledger.reader.inclusion_proof(index) == oracle.path(index, leaves)
        assert ledger.reader.entry_bytes(index) == data[index]


def test_identical_bytes_return_original_index(make_ledger, signer):
    ledger = make_ledger()
    first = ledger.append(b"same bytes")
    ledger.append_many([entry(i) for i in range(10)])
    again = ledger.append(b"same bytes")
    assert again.index == first.index
    assert again.duplicate
    batch = ledger.append_many([b"x", b"x", b"same bytes", b"y"])
    assert [r.index for r in batch] == [11, 11, 0, 12]
    assert [r.duplicate for r in batch] == [False, True, True, False]
    assert ledger.size == 13
    for r in batch:
        verify_receipt(r, signer)


def test_oversized_entry_refused_and_nothing_written(make_ledger):
    ledger = make_ledger()
    ledger.append(b"a")
    with pytest.raises(EntryTooLarge, match="65535"):
        ledger.append(b"x" * 65_536)
    with pytest.raises(EntryTooLarge):
        ledger.append_many([b"fine", b"x" * 70_000])
    assert ledger.append(b"x" * 65_535).index == 1
    assert ledger.size == 2


def test_concurrent_callers_get_contiguous_unique_indices(
    make_ledger, signer, evidence
):
    # RELIABILITY.md R4: 100 writers x 500 appends in the fitness run.
    writers, appends = scale(16, 100), scale(40, 500)
    ledger = make_ledger()
    results: dict[int, list] = {}

    def worker(n: int) -> None:
        results[n] = [
            (ledger.append(entry(n * 1000 + i)), n * 1000 + i) for i in range(appends)
        ]

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = writers * appends
    indices = sorted(r.index for rs in results.values() for r, _ in rs)
    assert indices == list(range(total))
    for rs in results.values():
        for r, _ in rs[::7]:
            verify_receipt(r, signer)
    assert check_log(ledger.storage, signer.verifier_key, ORIGIN).ok
    # The root, recomputed by the naive oracle from what each caller was told.
    sent = {r.index: n for rs in results.values() for r, n in rs}
    leaves = [oracle.leaf(entry(sent[i])) for i in range(total)]
    recomputed = oracle.mth(leaves)
    assert ledger.head.root == recomputed
    evidence.record(
        "R4",
        attempts=total,
        detected=len(set(indices)),
        backend=ledger.storage.dialect,
        writers=writers,
        appends_each=appends,
        gaps_or_duplicates=len(set(range(total)) ^ set(indices)),
        root_matches_oracle=ledger.head.root == recomputed,
    )


def test_async_callers_are_handed_over_together_and_answered_alone(make_ledger, signer):
    # 300 tasks append in the same turns of one event loop: they travel to the
    # writer together, yet each gets its own receipt, a repeat gets the original
    # index, and an oversized entry fails alone without stopping the others.
    ledger = make_ledger()
    first = ledger.append(b"already here")

    async def run() -> list:
        calls = [ledger.append_async(entry(i)) for i in range(300)]
        calls.insert(100, ledger.append_async(b"already here"))
        calls.insert(200, ledger.append_async(b"x" * 65_536))
        calls.append(ledger.append_async(entry(5)))
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(run())
    assert isinstance(results[200], EntryTooLarge)
    repeat = results[100]
    assert (repeat.index, repeat.duplicate) == (first.index, True)
    fresh = [r for i, r in enumerate(results[:-1]) if i not in (100, 200)]
    assert sorted(r.index for r in fresh) == list(range(1, 301))
    assert results[-1].index == fresh[5].index
    assert results[-1].duplicate
    for r in results:
        if not isinstance(r, Exception):
            verify_receipt(r, signer)
    assert ledger.size == 301
    assert check_log(ledger.storage, signer.verifier_key, ORIGIN).ok


def test_async_callers_all_get_a_storage_error(make_ledger):
    ledger = make_ledger()
    ledger.close()

    async def run() -> list:
        return await asyncio.gather(
            *(ledger.append_async(entry(i)) for i in range(5)), return_exceptions=True
        )

    assert all(isinstance(r, StorageUnavailable) for r in asyncio.run(run()))


def test_restart_recovers_state(make_ledger, signer):
    ledger = make_ledger()
    ledger.append_many([entry(i) for i in range(300)])
    root = ledger.head.root
    ledger.close()
    again = make_ledger()
    assert again.size == 300
    assert again.head.root == root
    receipt = again.append(entry(300))
    assert receipt.index == 300
    verify_receipt(receipt, signer)


def test_triggers_refuse_update_and_delete(db_url, signer, evidence):
    storage = create_log(db_url, signer)
    ledger_rows = [
        (
            "entries",
            "INSERT INTO entries (idx, leaf_key, leaf_hash, data) "
            "VALUES (0, 1, :h, :d)",
        ),
    ]
    with storage.engine.begin() as conn:
        conn.execute(sa.text(ledger_rows[0][1]), {"h": b"\x01" * 32, "d": b"x"})
        conn.execute(
            sa.text(
                "INSERT INTO tiles (level, idx, hashes, root) VALUES (0, 0, :h, :r)"
            ),
            {"h": b"\x00" * 8192, "r": b"\x00" * 32},
        )
    statements = [
        "UPDATE entries SET data = X'00'",
        "DELETE FROM entries",
        "UPDATE tiles SET root = hashes",
        "DELETE FROM tiles",
        "UPDATE checkpoints SET made_at_ms = 0",
        "DELETE FROM checkpoints",
        "UPDATE log_meta SET origin = 'evil'",
        "DELETE FROM log_meta",
        "DELETE FROM tree_head",
        "UPDATE tree_head SET size = size - 1",
        "UPDATE tree_head SET made_at_ms = made_at_ms - 1",
    ]
    if storage.dialect == "postgresql":
        statements = [s.replace("X'00'", "'\\x00'::bytea") for s in statements]
        statements += ["TRUNCATE entries", "TRUNCATE tree_head"]
    refused = 0
    for statement in statements:
        with (
            pytest.raises(sa.exc.DBAPIError, match="saksi"),
            storage.engine.begin() as conn,
        ):
            conn.execute(sa.text(statement))
        refused += 1
    with storage.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM entries")).scalar() == 1
    dialect = storage.dialect
    storage.close()
    evidence.record(
        "T1",
        attempts=len(statements),
        detected=refused,
        backend=dialect,
        updates_deletes_that_succeeded=len(statements) - refused,
    )


def test_leaf_lookup_confirms_the_full_hash(db_url, signer):
    # The index is on an 8-byte prefix; two stored hashes that share it must
    # still be told apart (rows written directly: such hashes cannot be mined).
    storage = create_log(db_url, signer)
    a = b"\x42" * 8 + b"\x01" * 24
    b = b"\x42" * 8 + b"\x02" * 24
    with storage.engine.begin() as conn:
        for i, h in enumerate((a, b)):
            conn.execute(
                sa.text(
                    "INSERT INTO entries (idx, leaf_key, leaf_hash, data) "
                    "VALUES (:i, :k, :h, :d)"
                ),
                {"i": i, "k": leaf_key(h), "h": h, "d": b"x"},
            )
    assert leaf_key(a) == leaf_key(b)
    assert storage.find_leaf_hashes([b]) == {b: 1}
    assert storage.find_leaf_hashes([a, b, b"\x42" * 32]) == {a: 0, b: 1}
    storage.close()


def test_unreachable_database_fails_clearly(backend, tmp_path):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}"
    else:
        url = f"postgresql+psycopg://postgres@/nowhere?host={tmp_path}&port=1"
    with pytest.raises(StorageUnavailable) as err:
        SqlStorage.open(url)
    assert "password" not in str(err.value).lower()


def test_second_writer_refused(make_ledger):
    make_ledger()
    with pytest.raises(StorageUnavailable, match="another sequencer"):
        make_ledger()


def test_backends_give_identical_roots(tmp_path, signer, pg_cluster, evidence):
    from ledger.ledger import Ledger
    from tests.conftest import FixedClock

    roots = []
    for url in (f"sqlite:///{tmp_path / 'a.db'}", pg_cluster.new_database()):
        storage = create_log(url, signer)
        ledger = Ledger.of_entries(
            storage, signer, signer.verifier_key, ORIGIN, clock=FixedClock()
        )
        ledger.start()
        sizes = []
        for start, stop in ((0, 1), (1, 300), (300, 301), (301, 1030)):
            ledger.append_many([entry(i) for i in range(start, stop)])
            sizes.append((ledger.size, ledger.head.root))
        roots.append(sizes)
        ledger.close()
        storage.close()
    assert roots[0] == roots[1]
    evidence.record(
        "R12",
        attempts=len(roots[0]),
        detected=sum(a == b for a, b in zip(*roots, strict=True)),
        backends="sqlite and postgresql",
        sizes=", ".join(str(size) for size, _ in roots[0]),
    )


def test_tampered_tail_refused_at_start(db_url, signer, make_ledger):
    ledger = make_ledger()
    ledger.append_many([entry(i) for i in range(20)])
    ledger.close()
    ledger.storage.close()
    storage = SqlStorage.open(db_url)
    # The administrator puts the trigger back afterwards: the guards look fine,
    # the tail does not rebuild the signed root.
    with storage.engine.begin() as conn:
        if storage.dialect == "sqlite":
            sql = conn.execute(
                sa.text(
                    "SELECT sql FROM sqlite_master WHERE name = 'entries_no_update'"
                )
            ).scalar_one()
            conn.execute(sa.text("DROP TRIGGER entries_no_update"))
            conn.execute(sa.text("UPDATE entries SET data = X'41' WHERE idx = 7"))
            conn.execute(sa.text(sql))
        else:
            conn.execute(sa.text("ALTER TABLE entries DISABLE TRIGGER USER"))
            conn.execute(sa.text("UPDATE entries SET data = 'A'::bytea WHERE idx = 7"))
            conn.execute(sa.text("ALTER TABLE entries ENABLE TRIGGER USER"))
    storage.close()
    with pytest.raises(IntegrityFailure, match="entry 7"):
        make_ledger()


def test_guards_named_at_start(db_url, signer, make_ledger):
    ledger = make_ledger()
    ledger.append_many([entry(i) for i in range(3)])
    ledger.close()
    ledger.storage.close()
    storage = SqlStorage.open(db_url)
    assert storage.guard_problems() == []
    with storage.engine.begin() as conn:
        if storage.dialect == "sqlite":
            conn.execute(sa.text("DROP TRIGGER tiles_no_delete"))
            expected = "tiles_no_delete on tiles is missing"
        else:
            conn.execute(sa.text("ALTER TABLE tiles DISABLE TRIGGER tiles_append_only"))
            expected = "tiles_append_only on tiles is disabled"
    assert any(expected in line for line in storage.guard_problems())
    storage.close()
    with pytest.raises(IntegrityFailure, match=expected):
        make_ledger()


@pytest.mark.postgres
def test_postgres_guards_altered_or_foreign(pg_cluster):
    url = pg_cluster.new_database()
    storage = create_log(url, Ed25519Signer(ORIGIN, bytes(32)))
    try:
        assert storage.guard_problems() == []
        with storage.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "CREATE OR REPLACE FUNCTION saksi_append_only() RETURNS trigger "
                    "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"
                )
            )
            conn.execute(sa.text("DROP TRIGGER records_no_truncate ON records"))
            conn.execute(
                sa.text(
                    "CREATE TRIGGER quiet BEFORE INSERT ON entries FOR EACH ROW "
                    "EXECUTE FUNCTION saksi_head_forward()"
                )
            )
        problems = storage.guard_problems()
    finally:
        storage.close()
    assert "trigger function saksi_append_only is altered" in problems
    assert "append-only trigger records_no_truncate on records is missing" in problems
    assert "trigger quiet on entries is not one of the log's" in problems
