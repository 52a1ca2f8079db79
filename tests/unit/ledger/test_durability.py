"""What storage and the writer promise about durability, tested where they keep it.

Live connections run SQLite in WAL mode with synchronous=FULL (a committed
append survives power loss); a commit that fails gives no receipt and leaves the
size where it was; a start on a full tile edited together with its root column
is refused, because the tiles no longer rebuild the signed root.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from ledger.errors import IntegrityFailure, StorageUnavailable
from ledger.ledger import Ledger
from ledger.startup import recover_state
from ledger.storage.sql import SqlStorage
from ledger.tree.compact import perfect_root
from tests.conftest import ORIGIN, FixedClock, create_log


def _entry(i: int) -> bytes:
    return b"entry-%06d:" % i + hashlib.sha256(b"%d" % i).digest()


def test_every_live_sqlite_connection_is_wal_and_synchronous_full(tmp_path, signer):
    storage = create_log(f"sqlite:///{tmp_path / 'log.db'}", signer)

    def settings(_: int) -> tuple[int, str]:
        with storage.engine.connect() as conn:
            sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            return sync, mode

    try:
        # Several pooled connections at once, each set up by the connect hook.
        with ThreadPoolExecutor(6) as pool:
            seen = set(pool.map(settings, range(24)))
    finally:
        storage.close()
    assert seen == {(2, "wal")}  # 2 is FULL


def test_a_commit_that_fails_gives_no_receipt(tmp_path, signer):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    create_log(url, signer).close()
    storage = SqlStorage.open(url)
    ledger = Ledger.of_entries(
        storage, signer, signer.verifier_key, ORIGIN, clock=FixedClock()
    )
    ledger.start()
    try:
        ledger.append_many([_entry(i) for i in range(5)])
        fail = [True]

        def refuse_commit(_conn: object) -> None:
            if fail[0]:
                fail[0] = False
                raise sa.exc.OperationalError("COMMIT", {}, OSError("disk I/O error"))

        sa.event.listen(storage.engine, "commit", refuse_commit)
        with pytest.raises(StorageUnavailable):
            ledger.append(_entry(5))
        assert ledger.size == 5
        assert storage.head().size == 5
        assert storage.read_entries(5, 6) == []
        # The next append takes the index the failed one never got.
        receipt = ledger.append(_entry(6))
        assert (receipt.index, receipt.size) == (5, 6)
    finally:
        ledger.close()
        storage.close()


def test_a_full_tile_edited_with_its_root_stops_the_start(tmp_path, signer):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    create_log(url, signer).close()
    storage = SqlStorage.open(url)
    ledger = Ledger.of_entries(
        storage, signer, signer.verifier_key, ORIGIN, clock=FixedClock()
    )
    ledger.start()
    ledger.append_many([_entry(i) for i in range(600)])
    ledger.close()
    with storage.engine.begin() as conn:
        sql = conn.execute(
            sa.text("SELECT sql FROM sqlite_master WHERE name = 'tiles_no_update'")
        ).scalar_one()
        conn.execute(sa.text("DROP TRIGGER tiles_no_update"))
        hashes = bytes(
            conn.execute(
                sa.text("SELECT hashes FROM tiles WHERE level = 0 AND idx = 0")
            ).scalar_one()
        )
        forged = hashlib.sha256(b"forged").digest() + hashes[32:]
        root = perfect_root([forged[i : i + 32] for i in range(0, len(forged), 32)])
        conn.execute(
            sa.text(
                "UPDATE tiles SET hashes = :h, root = :r WHERE level = 0 AND idx = 0"
            ),
            {"h": forged, "r": root},
        )
        conn.execute(sa.text(sql))  # the guard put back as it was
    try:
        with pytest.raises(IntegrityFailure, match=r"tile 0/0\b"):
            recover_state(storage, signer.verifier_key, ORIGIN)
    finally:
        storage.close()


def test_the_head_moves_only_from_where_the_writer_left_it(tmp_path, signer):
    # Compare-and-swap: a batch for a head that is not where the writer thinks
    # (another writer moved it) writes nothing.
    from ledger.storage.rows import EntryRow, Head
    from verifier.rfc6962 import hash_leaf

    url = f"sqlite:///{tmp_path / 'log.db'}"
    create_log(url, signer).close()
    storage = SqlStorage.open(url)
    ledger = Ledger.of_entries(
        storage, signer, signer.verifier_key, ORIGIN, clock=FixedClock()
    )
    ledger.start()
    ledger.append_many([_entry(i) for i in range(3)])
    ledger.close()
    before = storage.head()
    data = _entry(7)
    row = EntryRow(7, hash_leaf(data), data)
    try:
        with pytest.raises(IntegrityFailure, match="no longer at size 7"):
            storage.commit_batch(
                7, [row], [], lambda: Head(8, bytes(32), b"note", before.made_at_ms + 1)
            )
        assert storage.read_entries(7, 8) == []
        assert storage.head() == before
    finally:
        storage.close()
