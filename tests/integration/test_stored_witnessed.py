"""The witnessed checkpoint in the database, as the log's other processes serve it.

The writer (a ``RecordLog`` asking a real witness on 127.0.0.1) stores every
checkpoint that comes back cosigned. A read-only process over the same
database serves it as its own ``/log/checkpoint`` once it has proven it: the
log's signature, and its tree consistent with the signed tree the process
serves. A process that pins the witness (a cluster member) also drops what
the witness did not sign. No edit of the stored row is ever served: not
garbage, not a fork signed with the log key, not another key's checkpoint,
not an older note (a rollback of what readers saw), not a cosignature the
pinned witness did not make.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from keys import Ed25519Signer
from ledger.cosigning import WitnessEndpoint, Witnessing
from ledger.errors import StorageUnavailable
from ledger.read.witnessed import StoredWitnessed
from ledger.recordlog import ReadOnlyLog
from ledger.storage.sql import SqlStorage
from tests.conftest import ORIGIN, create_log
from tests.recordlog import RecordLog, form, setup_election
from verifier.checkpoint import Checkpoint
from verifier.cosignature import WitnessPolicy, cosign, verify_cosigned
from verifier.note import parse_note, sign_note
from verifier.witness_protocol import WitnessKey
from verifier.witness_server import Witness, serve_witness

SIGNER = Ed25519Signer(ORIGIN, bytes(range(32)))
STATIONS = ["3171011001001", "3171011001002", "3171011001003"]


def _wait(condition, what: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(0.02)
    return found


@pytest.fixture
def witnessed(tmp_path: Path):
    """A writer asking one witness, and the witness's key."""
    path = tmp_path / "log.db"
    key = WitnessKey.generate("w.example.org")
    server = serve_witness(
        Witness(key, [SIGNER.verifier_key], tmp_path / "w"), "127.0.0.1", 0
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    writer = RecordLog(f"sqlite:///{path}", SIGNER)
    keys = setup_election(writer, STATIONS)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    writer.service.witness_with([WitnessEndpoint(url, key.verifier_key)])
    yield writer, keys, path, key
    writer.close()
    server.shutdown()
    server.server_close()


def _tally(writer: RecordLog, keys, station: str, votes: int) -> None:
    writer.submit(
        writer.payload(
            "results.tally/v1",
            f"results/ppwp/{station}",
            form({"100025": votes, "100026": 1}),
        ),
        [keys["reader"]],
    )


def _stored(path: Path, size: int) -> bytes:
    """The stored note, once it is of ``size``."""

    def read():
        storage = SqlStorage.open(f"sqlite:///{path}")
        try:
            stored = storage.witnessed()
        finally:
            storage.close()
        return stored[1] if stored is not None and stored[0] == size else None

    return _wait(read, f"no witnessed checkpoint of size {size} stored")


def _reader(path: Path) -> ReadOnlyLog:
    reader = ReadOnlyLog(
        SqlStorage.open(f"sqlite:///{path}"), SIGNER.verifier_key, ORIGIN, interval=0.0
    )
    reader.start()
    return reader


def _size(note: bytes) -> int:
    return int(parse_note(note).text.split("\n")[1])


def test_a_read_only_process_serves_the_writers_witnessed_checkpoint(witnessed):
    writer, keys, path, key = witnessed
    policy = WitnessPolicy((key.verifier_key,), 1)
    _tally(writer, keys, STATIONS[0], 5)
    size = writer.ledger.size
    note = _stored(path, size)
    reader = _reader(path)
    try:
        served = reader.reader.checkpoint()
        assert served == note
        checkpoint, _, times = verify_cosigned(
            served, SIGNER.verifier_key, ORIGIN, policy
        )
        assert checkpoint.size == size
        assert set(times) == {key.name}
        assert reader.health().published_size == size
        # The writer goes on: the reader serves the next cosigned note.
        _tally(writer, keys, STATIONS[1], 7)
        newer = _stored(path, writer.ledger.size)
        _wait(lambda: reader.reader.checkpoint() == newer, "the newer note not served")
        verify_cosigned(newer, SIGNER.verifier_key, ORIGIN, policy)
    finally:
        reader.close()


def _put(path: Path, size: int, note: bytes) -> None:
    """An edit of the stored row, as someone with the database makes it."""
    with sqlite3.connect(path) as db:
        db.execute("UPDATE witnessed_checkpoint SET size = ?, note = ?", (size, note))


def test_edits_of_the_stored_note_are_never_served(witnessed, caplog):
    writer, keys, path, key = witnessed
    _tally(writer, keys, STATIONS[0], 5)
    older = _stored(path, writer.ledger.size)
    _tally(writer, keys, STATIONS[1], 7)
    size = writer.ledger.size
    genuine = _stored(path, size)
    writer.service.witnessing.stop()  # nothing but the edits below from here
    reader = _reader(path)
    pinned = StoredWitnessed(
        reader.storage.witnessed,
        reader.tree.tree,
        reader.reader.consistency_proof,
        SIGNER.verifier_key,
        ORIGIN,
        [key.verifier_key],
    )
    try:
        pinned.refresh()
        assert reader.reader.checkpoint() == genuine
        assert pinned.published() == genuine
        parsed = parse_note(genuine)
        text = parsed.text
        checkpoint = Checkpoint(ORIGIN, size, bytes(32))
        forged_line = parsed.signatures[1]
        bad_cosignature = genuine.replace(
            base64.b64encode(forged_line.key_id + forged_line.signature),
            base64.b64encode(forged_line.key_id + bytes(72)),
        )
        assert bad_cosignature != genuine
        edits = {
            "garbage": (size, b"not a note\n"),
            "a fork the log key signed": (
                size,
                sign_note(checkpoint.to_text(), [SIGNER]),
            ),
            "another key's checkpoint": (
                size,
                sign_note(text, [Ed25519Signer(ORIGIN, bytes(32))]),
            ),
            "beyond the signed tree": (
                size + 5,
                sign_note(Checkpoint(ORIGIN, size + 5, bytes(32)).to_text(), [SIGNER]),
            ),
            "a size that is not the note's": (
                size,
                sign_note(Checkpoint(ORIGIN, size + 5, bytes(32)).to_text(), [SIGNER]),
            ),
            "the empty tree": (
                size,
                sign_note(
                    Checkpoint(ORIGIN, 0, hashlib.sha256().digest()).to_text(), [SIGNER]
                ),
            ),
            "the older genuine note": (_size(older), older),
        }
        caplog.set_level(logging.ERROR, logger="saksi.witnessed")
        for name, (stored_size, note) in edits.items():
            _put(path, stored_size, note)
            for _ in range(2):  # looked at twice: refused (and logged) once
                pinned.refresh()
                assert reader.reader.checkpoint() == genuine, name
            assert pinned.published() == genuine, name
        refused = [r for r in caplog.records if "is not served" in r.getMessage()]
        # Each refusal said once, by each of the two; the older note and the
        # one beyond the tree are not refusals (not newer; not checkable yet).
        assert len(refused) == 2 * 5, [r.getMessage() for r in refused]
        # A line by a key the process does not pin: dropped by the pinning
        # process (the same note as before, nothing new to serve).
        stranger = cosign(text, "stranger.example.org", SigningKey.generate(), 1)
        _put(path, size, genuine + stranger.to_line().encode())
        pinned.refresh()
        assert pinned.published() == genuine
        # A cosignature the pinned witness did not make: the pinning process
        # refuses the note; the read-only one, which pins no witness, passes
        # the line on as stored, for observers' own policies to judge.
        _put(path, size, bad_cosignature)
        pinned.refresh()
        assert pinned.published() == genuine
        assert reader.reader.checkpoint() == bad_cosignature
        with pytest.raises(Exception, match="signature"):
            verify_cosigned(
                bad_cosignature,
                SIGNER.verifier_key,
                ORIGIN,
                WitnessPolicy((key.verifier_key,), 1),
            )
    finally:
        reader.close()


def test_only_cosigned_checkpoints_are_kept():
    """A round no witness cosigned stores nothing; a cosigned one is kept, and
    a failure to keep it costs only the store, never the round."""
    note = sign_note(Checkpoint(ORIGIN, 1, bytes(32)).to_text(), [SIGNER])
    witness = WitnessKey.generate("w.example.org")
    line = cosign(parse_note(note).text, witness.name, witness.signing_key, 1)
    answers = iter([(503, b"down\n"), (200, line.to_line().encode())] * 2)
    kept: list[tuple[int, bytes]] = []

    def keep(size: int, witnessed: bytes) -> None:
        if kept:
            raise StorageUnavailable("the database is down")
        kept.append((size, witnessed))

    witnessing = Witnessing(
        lambda: (1, note),
        lambda old, new: [],
        SIGNER.verifier_key,
        ORIGIN,
        [WitnessEndpoint("http://w", witness.verifier_key)],
        post=lambda url, data, timeout: next(answers),
        keep=keep,
    )
    assert witnessing.round(1, note) == note  # the witness is down
    assert kept == []
    cosigned = witnessing.round(1, note)
    assert kept == [(1, cosigned)]
    assert cosigned != note
    witnessing.round(1, note)  # down again: nothing to keep
    assert witnessing.round(1, note) == cosigned  # kept or not, published
    assert witnessing.published() == cosigned


def test_the_stored_row_is_replaced_only_by_a_note_at_least_as_large(db_url):
    """On both backends: a round that ran late never replaces a newer note."""
    create_log(db_url, SIGNER).close()
    storage = SqlStorage.open(db_url)
    try:
        assert storage.witnessed() is None
        storage.put_witnessed(10, b"ten")
        storage.put_witnessed(5, b"five")
        assert storage.witnessed() == (10, b"ten")
        storage.put_witnessed(10, b"ten, cosigned again")
        assert storage.witnessed() == (10, b"ten, cosigned again")
        storage.put_witnessed(12, b"twelve")
        assert storage.witnessed() == (12, b"twelve")
    finally:
        storage.close()
