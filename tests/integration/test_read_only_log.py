"""A read-only log over a database another process writes (``ReadOnlyLog``).

The reader needs no signing key and no writer's lock: it follows the writer's
signed head in the database, and acts only on what the log key proves (the
head's signature, the right edge rebuilding the root, consistency with what it
served before, each entry's inclusion proof).
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from keys import Ed25519Signer
from ledger.errors import IntegrityFailure
from ledger.read.registry import keys_listing
from ledger.read.tree import rebuild_edge
from ledger.recordlog import ReadOnlyLog
from ledger.storage.sql import SqlStorage
from tests.conftest import ORIGIN
from tests.recordlog import (
    ADMINS,
    SIX_STATIONS,
    RecordLog,
    envelope_bytes,
    form,
    setup_election,
)
from verifier.checkpoint import verify_checkpoint
from verifier.proof_check import verify_consistency, verify_inclusion
from verifier.rfc6962 import hash_leaf

SIGNER = Ed25519Signer(ORIGIN, bytes(range(32)))
TPS = "3171011001001"


def _officer(n: int) -> Ed25519Signer:
    return Ed25519Signer(f"officer{n}", hashlib.sha256(b"officer-%d" % n).digest())


@pytest.fixture
def path(tmp_path) -> Path:
    return tmp_path / "log.db"


@pytest.fixture
def writer(path):
    log = RecordLog(f"sqlite:///{path}", SIGNER)
    yield log
    log.close()


def _reader(path: Path, **kwargs) -> ReadOnlyLog:
    log = ReadOnlyLog(
        SqlStorage.open(f"sqlite:///{path}"),
        SIGNER.verifier_key,
        ORIGIN,
        interval=0.0,
        **kwargs,
    )
    log.start()
    return log


def _root(note: bytes) -> tuple[int, bytes]:
    checkpoint, _ = verify_checkpoint(note, SIGNER.verifier_key, ORIGIN)
    return checkpoint.size, checkpoint.root_hash


def test_a_reader_follows_the_running_writer_and_proves_what_it_serves(writer, path):
    reader = _reader(path)  # the writer holds its lock: the reader needs none
    try:
        assert reader.reader.checkpoint() == writer.ledger.head.note
        first_size, first_root = _root(reader.reader.checkpoint())
        for n in range(5):
            writer.grant(_officer(n), "tps", TPS)
        note = reader.reader.checkpoint()
        assert note == writer.ledger.head.note
        size, root = _root(note)
        assert size == first_size + 5
        proof = reader.reader.consistency_proof(first_size, size)
        verify_consistency(first_size, size, first_root, root, proof)
        for index in range(size):
            view = reader.entries.entry(index)
            assert view.data == writer.service.reader.entry_bytes(index)
            assert view.leaf_hash == hash_leaf(view.data)
            path_ = reader.reader.inclusion_proof(index, size)
            verify_inclusion(index, size, view.leaf_hash, path_, root)
        history = reader.entries.history(f"keys/{_officer(4).keyid}")
        assert [v.record.revision for v in history] == [0]
        assert keys_listing(reader.registry.registry_at(size), size) == keys_listing(
            writer.service.registry.registry_at(size), size
        )
    finally:
        reader.close()


def test_a_reader_serves_reads_over_http_and_refuses_writes(writer, path):
    writer.grant(_officer(0), "tps", TPS)
    reader = _reader(path)
    try:
        client = TestClient(create_app(reader))
        answer = client.get("/log/checkpoint")
        assert answer.status_code == 200
        assert answer.content == writer.ledger.head.note
        assert client.get("/v1/entries/1").json()["index"] == 1
        kept = writer.payload("keys.grant/v1", "keys/x", {"role": "tps"})
        refused = client.post(
            "/v1/entries",
            content=envelope_bytes(kept, ADMINS[:2]),
            headers={"content-type": "application/json"},
        )
        assert refused.status_code == 405
        assert refused.json()["type"] == "/problems/read-only"
        assert writer.ledger.size == 2  # nothing written
        assert client.get("/v1/log").json()["witnesses"] == []
    finally:
        reader.close()


def test_a_rolled_back_database_is_never_served(writer, path, tmp_path):
    reader = _reader(path)
    try:
        backup = tmp_path / "backup.db"
        _copy(path, backup)
        old = reader.reader.checkpoint()
        for n in range(3):
            writer.grant(_officer(n), "tps", TPS)
        served = reader.reader.checkpoint()
        assert served != old
        writer.close()
        _copy(backup, path)  # the whole database back, consistently
        with pytest.raises(IntegrityFailure, match="went back"):
            reader.reader.checkpoint()
        with pytest.raises(IntegrityFailure):  # and it does not heal
            reader.reader.checkpoint()
    finally:
        reader.close()


def test_a_rollback_behind_a_trusted_checkpoint_is_refused_at_start(
    writer, path, tmp_path
):
    backup = tmp_path / "backup.db"
    _copy(path, backup)
    writer.grant(_officer(0), "tps", TPS)
    trusted, _ = verify_checkpoint(writer.ledger.head.note, SIGNER.verifier_key, ORIGIN)
    writer.close()
    _copy(backup, path)
    with pytest.raises(IntegrityFailure, match="rolled back"):
        _reader(path, trusted=[trusted])


def test_an_edited_entry_on_the_right_edge_stops_the_start(writer, path):
    writer.grant(_officer(0), "tps", TPS)
    size = writer.ledger.size
    writer.close()
    _edit(path, f"UPDATE entries SET data = X'00' WHERE idx = {size - 1}")
    with pytest.raises(IntegrityFailure, match="leaf hash"):
        _reader(path)


@pytest.mark.parametrize("tile_too", [False, True], ids=["entry", "entry-and-tile"])
def test_an_entry_edited_with_its_leaf_hash_is_never_served(writer, path, tile_too):
    # Tallies (not replayed at start) in a full tile, one of them edited; or,
    # once the reader runs, also its leaf hash in the stored tile (the tile then
    # no longer proves to the signed root).
    stations = [f"317101100{v}{n:03d}" for v in (1, 2, 3) for n in range(1, 101)]
    keys = setup_election(writer, stations)
    first = writer.ledger.size
    for station in stations:
        writer.submit(
            writer.payload(
                "results.tally/v1", f"results/ppwp/{station}", form({"100025": 1})
            ),
            [keys["reader"]],
        )
    assert writer.ledger.size > 256
    writer.close()
    reader = _reader(path) if tile_too else None  # checked its tiles at start
    forged = b'{"forged": true}'
    _edit(
        path,
        f"UPDATE entries SET data = X'{forged.hex()}', "
        f"leaf_hash = X'{hash_leaf(forged).hex()}' WHERE idx = {first + 5}",
    )
    if tile_too:
        block, offset = divmod(first + 5, 256)
        with sqlite3.connect(path) as db:
            (hashes,) = db.execute(
                "SELECT hashes FROM tiles WHERE level = 0 AND idx = ?", (block,)
            ).fetchone()
        hashes = hashes[: 32 * offset] + hash_leaf(forged) + hashes[32 * offset + 32 :]
        _edit(
            path,
            f"UPDATE tiles SET hashes = X'{hashes.hex()}' "
            f"WHERE level = 0 AND idx = {block}",
        )
        reader.reader.clear_cache()  # type: ignore[union-attr]  # read afresh
    reader = reader or _reader(path)  # the edge and the registries are intact
    try:
        if tile_too:  # no entry of a tile that does not prove is served
            with pytest.raises(IntegrityFailure, match=f"entry {first + 6}"):
                reader.entries.entry(first + 6)
        else:
            assert reader.entries.entry(first + 6).index == first + 6
        with pytest.raises(IntegrityFailure, match=f"entry {first + 5}"):
            reader.entries.entry(first + 5)
        with pytest.raises(IntegrityFailure, match=f"entry {first + 5}"):
            reader.reader.entry_bytes(first + 5)
        client = TestClient(create_app(reader))
        answer = client.get(f"/v1/entries/{first + 5}")
        assert answer.status_code == 500
        assert answer.json()["type"] == "/problems/integrity-failure"
    finally:
        reader.close()


def test_an_entry_on_the_right_edge_edited_while_served_is_never_served(writer, path):
    # The partial tile's hashes are the reader's own (checked at start): an
    # entry there, edited with its leaf hash afterwards, fails its own proof.
    for n in range(5):
        writer.grant(_officer(n), "tps", TPS)
    size = writer.ledger.size
    assert size < 256
    reader = _reader(path)
    try:
        forged = b'{"forged": true}'
        _edit(
            path,
            f"UPDATE entries SET data = X'{forged.hex()}', "
            f"leaf_hash = X'{hash_leaf(forged).hex()}' WHERE idx = {size - 2}",
        )
        with pytest.raises(IntegrityFailure, match=f"entry {size - 2}"):
            reader.entries.entry(size - 2)
        assert reader.entries.entry(size - 1).index == size - 1
    finally:
        reader.close()


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        ("data_and_leaf_hash", "not the served tree grown by them"),
        ("leaf_hash", "does not match its stored leaf hash"),
        ("data", "does not match its stored leaf hash"),
        ("missing", "expected 4 stored entries"),
    ],
)
def test_entries_edited_after_the_served_tree_are_never_served(
    writer, path, edit, problem
):
    """A look grows the last tree by the entries stored since; each edit of
    one of them (its bytes with a matching leaf hash, the leaf hash alone, the
    bytes alone, the last one deleted) stops the reader, which keeps its last
    tree meanwhile."""
    reader = _reader(path)
    try:
        served = reader.reader.checkpoint()
        size = _root(served)[0]
        for n in range(4):
            writer.grant(_officer(n), "tps", TPS)
        writer.close()
        forged = b'{"forged": true}'
        values = {
            "data_and_leaf_hash": f"data = X'{forged.hex()}', "
            f"leaf_hash = X'{hash_leaf(forged).hex()}'",
            "leaf_hash": f"leaf_hash = X'{hash_leaf(forged).hex()}'",
            "data": f"data = X'{forged.hex()}'",
        }.get(edit)
        if values is None:
            _edit(path, f"DELETE FROM entries WHERE idx = {size + 3}")
        else:
            _edit(path, f"UPDATE entries SET {values} WHERE idx = {size + 2}")
        with pytest.raises(IntegrityFailure, match=problem):
            reader.reader.checkpoint()
        with pytest.raises(IntegrityFailure):  # and it does not heal
            reader.reader.checkpoint()
        assert reader.tree.last()[0].head.note == served
    finally:
        reader.close()


def test_a_tree_grown_look_by_look_is_the_tree_rebuilt(writer, path):
    """Across tile boundaries: the edge a reader grew, and the full tiles it
    computed on the way, are the ones the database rebuilds and stores."""
    reader = _reader(path)
    try:
        steps = [1, 40, 255, 3, 300]
        for n, step in enumerate(steps):
            for m in range(step):
                writer.grant(_officer(1000 * n + m), "tps", TPS)
            assert reader.reader.checkpoint() == writer.ledger.head.note
        grown = reader.tree.last()[0]
        assert grown.size > 2 * 256
        storage = SqlStorage.open(f"sqlite:///{path}")
        try:
            rebuilt = rebuild_edge(storage, storage.head())
            assert grown.state.partials == rebuilt.partials
            assert grown.state.root == rebuilt.root == grown.head.root
            for index in range(grown.size // 256):
                cached = reader.reader.cache.get(0, index, _no_load)
                assert cached.bottom() == storage.read_tile(0, index)
            # The last look's entries are kept, proven, for receipts; no other.
            last = range(grown.size - steps[-1], grown.size)
            kept = reader.tree.grown([last[0] - 1, *last, grown.size])
            assert sorted(kept) == list(last)
            assert [kept[i] for i in last] == [
                r.data for r in storage.read_entries(last[0], grown.size)
            ]
        finally:
            storage.close()
    finally:
        reader.close()


def _no_load(level: int, index: int) -> bytes:
    raise AssertionError(f"tile {level}/{index} was not computed while growing")


def test_a_forged_registry_entry_stops_the_reader_at_start(writer, path):
    for n in range(300):  # a full tile: entry 5 is then read through it
        writer.grant(_officer(n), "tps", TPS)
    writer.close()
    forged = b'{"forged": true}'
    _edit(
        path,
        f"UPDATE entries SET data = X'{forged.hex()}', "
        f"leaf_hash = X'{hash_leaf(forged).hex()}' WHERE idx = 5",
    )
    with pytest.raises(IntegrityFailure, match="entry 5"):
        _reader(path)


def _copy(source: Path, target: Path) -> None:
    """An online SQLite backup of ``source`` written over ``target``."""
    if not target.exists():
        shutil.copyfile(source, target)
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def _edit(path: Path, statement: str) -> None:
    """Run ``statement`` as an administrator would: the guards dropped first."""
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        saved = [
            sql
            for (sql,) in conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger'"
            )
        ]
        for (name,) in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        ).all():
            conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
        conn.exec_driver_sql(statement)
        for sql in saved:
            conn.exec_driver_sql(sql)
    engine.dispose()


def test_a_reader_behind_the_writer_answers_from_its_own_tree(writer, path):
    # The database runs ahead of the reader between two looks: the results
    # are those of the tree the reader serves, never a 404 for a newer row.
    keys = setup_election(writer, SIX_STATIONS)
    station = SIX_STATIONS[0]
    subject = f"results/ppwp/{station}"
    writer.submit(
        writer.payload("results.tally/v1", subject, form({"100025": 5})),
        [keys["tps"]],
    )
    reader = ReadOnlyLog(
        SqlStorage.open(f"sqlite:///{path}"), SIGNER.verifier_key, ORIGIN, interval=3600
    )
    reader.start()
    try:
        client = TestClient(create_app(reader))
        village = station[:10]
        before = client.get(f"/v1/results/ppwp/{village}")
        assert before.status_code == 200
        writer.submit(
            writer.payload(
                "results.tally/v1",
                subject,
                {
                    **form({"100025": 6}, stage="recount"),
                    "correction": {"reason_code": "recount_order", "reference": "BA"},
                },
                reason="recount",
            ),
            [keys["district"]],
        )
        behind = client.get(f"/v1/results/ppwp/{village}")
        assert behind.status_code == 200, behind.text
        assert behind.json() == before.json()
        history = client.get(f"/v1/subjects/{subject}").json()
        assert [r["record"]["revision"] for r in history["revisions"]] == [0]
    finally:
        reader.close()


def test_a_look_under_way_is_not_waited_for(writer, path):
    """While one thread looks at the database (reads, a signature, a proof),
    another asking for the tree gets the last one that passed at once, not
    after the look: the event loop asks. A refresh then serves the new head."""
    import threading

    reader = _reader(path)
    try:
        before = reader.tree.tree()
        writer.grant(_officer(1), "tps", TPS)
        looking, release = threading.Event(), threading.Event()
        store = reader.tree._store  # slowed here: its head read waits
        inner = store.head

        def slow_head():
            looking.set()
            assert release.wait(30)
            return inner()

        store.head = slow_head
        looker = threading.Thread(target=reader.tree.refresh)
        looker.start()
        try:
            assert looking.wait(30)
            # Asked from another thread: one that waited would not answer
            # before the look ends, and the look waits for ``release``.
            answered: list[object] = []
            asking = threading.Thread(
                target=lambda: answered.extend(
                    [reader.tree.tree(), reader.tree.last()[0]]  # and health's
                )
            )
            asking.start()
            asking.join(10)
            assert answered == [before, before]
        finally:
            release.set()
            looker.join(30)
        store.head = inner
        assert reader.tree.refresh().size == before.size + 1
    finally:
        reader.close()
