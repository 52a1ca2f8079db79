"""A database administrator edits a record log; the writer never acts on the edit.

Each case copies one clean record log (genesis, regions, keys, forms, a
correction, a revocation, and enough grants for full tiles), applies one edit
with the append-only triggers dropped where the edit needs it, and opens the
writer on it. Either the start is refused with an error that names the row, or
the start succeeds and the first act that would rest on the edited row is
refused (writes stop), or the edit is of something the writer never reads and
what it does is proven right regardless. In no case is anything logged that a
clean log would refuse. SECURITY.md lists the cases.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from keys import Ed25519Signer
from ledger.admission import prepare_submission
from ledger.errors import IntegrityFailure
from ledger.recordlog import RecordLog as OpenRecordLog
from ledger.seal import RecordsDigest, derive_seal_key, seal_head
from ledger.storage.rows import leaf_key
from ledger.storage.sql import SqlStorage
from tests.conftest import ORIGIN, FixedClock
from tests.recordlog import (
    ADMINS,
    SIX_STATIONS,
    START,
    RecordLog,
    envelope_bytes,
    form,
    setup_election,
)
from verifier.checkpoint import verify_checkpoint
from verifier.note import sign_note
from verifier.proof_check import verify_inclusion
from verifier.rfc6962 import hash_leaf

FILLER = 560  # grants, so that the log has two full level-0 tiles


@dataclass
class Template:
    path: Path
    size: int
    voter_grant: int  # entry index of the grant of role "voters"
    voter: Ed25519Signer
    form_index: int  # an officer's form, later corrected
    form_envelope: bytes
    corrected_subject: str
    revoke_index: int
    old_checkpoint: tuple[int, bytes, bytes]  # (size, root, note) of an early head
    backup: Path  # an online backup taken at that early head
    head_note: bytes  # the final head's signed checkpoint


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Template:
    directory = tmp_path_factory.mktemp("writer-tamper")
    path = directory / "clean.db"
    signer = Ed25519Signer(ORIGIN, bytes(range(32)))
    log = RecordLog(f"sqlite:///{path}", signer)
    keys = setup_election(log, SIX_STATIONS)
    voter = Ed25519Signer("voters", hashlib.sha256(b"voters").digest())
    voter_grant = log.grant(voter, "voters", "31").index
    station = SIX_STATIONS[0]
    subject = f"results/ppwp/{station}"
    payload = log.payload(
        "results.tally/v1", subject, form({"100025": 10, "100026": 20, "100027": 5})
    )
    envelope = envelope_bytes(payload, [keys["tps"]])
    receipt = log.ledger.submit(_prepare(log.service, envelope, log.now()))
    log.track(payload)
    log.submit(
        log.payload(
            "results.tally/v1",
            subject,
            {
                **form({"100025": 11, "100026": 20, "100027": 5}, stage="recount"),
                "correction": {"reason_code": "recount_order", "reference": "BA-1"},
            },
            reason="recount",
        ),
        [keys["district"]],
    )
    retired = Ed25519Signer("retired", hashlib.sha256(b"retired").digest())
    log.grant(retired, "tps", station)
    revoke = log.revoke(retired).index
    early = log.storage.checkpoint(log.ledger.size)
    assert early is not None
    backup = directory / "backup.db"
    source, target = sqlite3.connect(path), sqlite3.connect(backup)
    source.backup(target)
    source.close()
    target.close()
    fillers = [
        Ed25519Signer(f"f{n}", hashlib.sha256(b"filler-%d" % n).digest())
        for n in range(FILLER)
    ]
    subs = [
        log.prepare(log.grant_payload(k, "tps", station), ADMINS[:1]) for k in fillers
    ]
    for outcome in log.ledger.submit_many(subs):
        assert not isinstance(outcome, Exception), outcome
    size = log.ledger.size
    head_note = log.ledger.head.note
    log.close()
    return Template(
        path,
        size,
        voter_grant,
        voter,
        receipt.index,
        envelope,
        subject,
        revoke,
        (early.size, early.root, early.note),
        backup,
        head_note,
    )


# -- helpers -------------------------------------------------------------------


def _prepare(service: OpenRecordLog, envelope: bytes, now=None):
    now = now or dt.datetime.fromtimestamp(START + 3600, dt.UTC)
    return prepare_submission(envelope, service.gate.public_key, now)


SIGNER = Ed25519Signer(ORIGIN, bytes(range(32)))


def _drop_triggers(conn: sa.Connection) -> None:
    for (name,) in list(
        conn.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
    ):
        conn.execute(sa.text(f'DROP TRIGGER "{name}"'))


def _restore_triggers(conn: sa.Connection, saved: list[str]) -> None:
    for sql in saved:
        conn.execute(sa.text(sql))


def _edit(path: Path, change: Callable[[sa.Connection], None], *, keep_guards=True):
    """Apply ``change`` with the triggers dropped, then put them back as they were."""
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        saved = [
            sql
            for (sql,) in conn.execute(
                sa.text("SELECT sql FROM sqlite_master WHERE type = 'trigger'")
            )
        ]
        _drop_triggers(conn)
        change(conn)
        if keep_guards:
            _restore_triggers(conn, saved)
    engine.dispose()


def _open(path: Path) -> OpenRecordLog:
    service = OpenRecordLog(
        SqlStorage.open(f"sqlite:///{path}"),
        SIGNER,
        SIGNER.verifier_key,
        ORIGIN,
        clock=FixedClock(START + 3600),
    )
    try:
        service.start()
    except BaseException:
        service.storage.close()
        raise
    return service


def _entry(conn: sa.Connection, index: int) -> bytes:
    return bytes(
        conn.execute(
            sa.text("SELECT data FROM entries WHERE idx = :i"), {"i": index}
        ).one()[0]
    )


def _put_entry(conn: sa.Connection, index: int, data: bytes, *, hash_too: bool):
    leaf = hash_leaf(data)
    if hash_too:
        conn.execute(
            sa.text(
                "UPDATE entries SET data = :d, leaf_hash = :h, leaf_key = :k "
                "WHERE idx = :i"
            ),
            {"d": data, "h": leaf, "k": leaf_key(leaf), "i": index},
        )
    else:
        conn.execute(
            sa.text("UPDATE entries SET data = :d WHERE idx = :i"),
            {"d": data, "i": index},
        )


def _rewrite_record(data: bytes, change: Callable[[dict], None]) -> bytes:
    """The entry with its record's body changed (the signature no longer fits)."""
    import base64

    entry = json.loads(data)
    record = json.loads(base64.b64decode(entry["envelope"]["payload"]))
    change(record)
    payload = json.dumps(record, separators=(",", ":"), sort_keys=True).encode()
    entry["envelope"]["payload"] = base64.b64encode(payload).decode()
    return json.dumps(entry, separators=(",", ":"), sort_keys=True).encode()


def _escalate(record: dict) -> None:
    record["body"]["role"] = "admin"
    record["body"]["scope"] = ""


def _refused_at_start(path: Path, *named: str) -> str:
    with pytest.raises(IntegrityFailure) as caught:
        _open(path)
    message = str(caught.value)
    for word in named:
        assert re.search(word, message), (word, message)
    return message


def _size(path: Path) -> int:
    storage = SqlStorage.open(f"sqlite:///{path}")
    try:
        return storage.head().size
    finally:
        storage.close()


@pytest.fixture
def db(template, tmp_path) -> Path:
    path = tmp_path / "tampered.db"
    shutil.copyfile(template.path, path)
    return path


# -- the start refuses, naming the row -----------------------------------------


def test_grant_role_rewritten_with_its_leaf_hash_stops_the_start(db, template):
    # The review's case: voters -> admin, leaf hash column recomputed.
    _edit(
        db,
        lambda c: _put_entry(
            c,
            template.voter_grant,
            _rewrite_record(_entry(c, template.voter_grant), _escalate),
            hash_too=True,
        ),
    )
    _refused_at_start(db, rf"entry {template.voter_grant}\b", "signed tree")


def test_grant_role_rewritten_with_its_index_row_stops_the_start(db, template):
    def change(c):
        data = _rewrite_record(_entry(c, template.voter_grant), _escalate)
        _put_entry(c, template.voter_grant, data, hash_too=True)
        payload = json.loads(data)["envelope"]["payload"]
        import base64

        digest = hashlib.sha256(base64.b64decode(payload)).digest()
        c.execute(
            sa.text(
                "UPDATE records SET payload_hash = :h, payload_key = :k WHERE idx = :i"
            ),
            {"h": digest, "k": leaf_key(digest), "i": template.voter_grant},
        )

    _edit(db, change)
    _refused_at_start(db, rf"\b{template.voter_grant}\b|tile 0/0")


def test_registry_entry_byte_flipped_stops_the_start(db, template):
    def change(c):
        data = bytearray(_entry(c, template.voter_grant))
        data[len(data) // 2] ^= 1
        _put_entry(c, template.voter_grant, bytes(data), hash_too=False)

    _edit(db, change)
    _refused_at_start(db, rf"entry {template.voter_grant}\b")


def test_revocation_entry_deleted_stops_the_start(db, template):
    _edit(
        db,
        lambda c: c.execute(
            sa.text("DELETE FROM entries WHERE idx = :i"), {"i": template.revoke_index}
        ),
    )
    _refused_at_start(db, rf"entry {template.revoke_index}\b")


def test_registry_entries_swapped_stop_the_start(db, template):
    def change(c):
        a, b = template.voter_grant, template.revoke_index
        data_a, data_b = _entry(c, a), _entry(c, b)
        _put_entry(c, a, data_b, hash_too=True)
        _put_entry(c, b, data_a, hash_too=True)

    _edit(db, change)
    _refused_at_start(db, rf"entry ({template.voter_grant}|{template.revoke_index})\b")


def test_genesis_rewritten_stops_the_start(db):
    def change(c):
        def more_admins(record):
            record["body"]["threshold"] = 1

        _put_entry(c, 0, _rewrite_record(_entry(c, 0), more_admins), hash_too=True)

    _edit(db, change)
    _refused_at_start(db, r"entry 0\b")


def test_last_entries_truncated_stops_the_start(db, template):
    _edit(
        db,
        lambda c: c.execute(
            sa.text("DELETE FROM entries WHERE idx >= :i"), {"i": template.size - 3}
        ),
    )
    _refused_at_start(db, rf"entry {template.size - 3}\b|after index")


def test_tail_entry_rewritten_stops_the_start(db, template):
    last = template.size - 1
    _edit(db, lambda c: _put_entry(c, last, b"forged" + _entry(c, last), hash_too=True))
    _refused_at_start(db, rf"entry {last}\b")


def test_entry_beyond_the_head_stops_the_start(db, template):
    def change(c):
        data = b"smuggled"
        c.execute(
            sa.text(
                "INSERT INTO entries (idx, leaf_key, leaf_hash, data) "
                "VALUES (:i, :k, :h, :d)"
            ),
            {
                "i": template.size,
                "k": leaf_key(hash_leaf(data)),
                "h": hash_leaf(data),
                "d": data,
            },
        )

    _edit(db, change)
    _refused_at_start(db, rf"entry {template.size} lies beyond")


def _tile(c, level: int, index: int) -> tuple[bytes, bytes]:
    hashes, root = c.execute(
        sa.text("SELECT hashes, root FROM tiles WHERE level = :l AND idx = :i"),
        {"l": level, "i": index},
    ).one()
    return bytes(hashes), bytes(root)


def test_full_tile_hash_flipped_stops_the_start(db):
    def change(c):
        hashes, _ = _tile(c, 0, 1)
        flipped = hashes[:40] + bytes([hashes[40] ^ 1]) + hashes[41:]
        c.execute(
            sa.text("UPDATE tiles SET hashes = :h WHERE level = 0 AND idx = 1"),
            {"h": flipped},
        )

    _edit(db, change)
    _refused_at_start(db, r"tile 0/1\b")


def test_full_tile_rewritten_with_its_root_stops_the_start(db):
    from ledger.tree.compact import perfect_root

    def change(c):
        hashes, _ = _tile(c, 0, 0)
        forged = hashlib.sha256(b"forged").digest() + hashes[32:]
        root = perfect_root([forged[i : i + 32] for i in range(0, len(forged), 32)])
        c.execute(
            sa.text(
                "UPDATE tiles SET hashes = :h, root = :r WHERE level = 0 AND idx = 0"
            ),
            {"h": forged, "r": root},
        )

    _edit(db, change)
    _refused_at_start(db, r"tile 0/0\b")


def test_full_tile_root_column_edited_stops_the_start(db):
    _edit(
        db,
        lambda c: c.execute(
            sa.text("UPDATE tiles SET root = :r WHERE level = 0 AND idx = 1"),
            {"r": bytes(32)},
        ),
    )
    _refused_at_start(db, r"tile 0/1\b")


def test_full_tile_deleted_stops_the_start(db):
    _edit(db, lambda c: c.execute(sa.text("DELETE FROM tiles WHERE idx = 1")))
    _refused_at_start(db, r"tile 0/1\b|level 1")


def test_tile_beyond_the_tree_stops_the_start(db):
    def change(c):
        hashes, root = _tile(c, 0, 0)
        c.execute(
            sa.text(
                "INSERT INTO tiles (level, idx, hashes, root) VALUES (0, 9, :h, :r)"
            ),
            {"h": hashes, "r": root},
        )

    _edit(db, change)
    _refused_at_start(db, r"tile 0/9 lies beyond")


def test_head_root_edited_stops_the_start(db):
    _edit(
        db,
        lambda c: c.execute(
            sa.text("UPDATE tree_head SET root = :r"), {"r": bytes(32)}
        ),
    )
    _refused_at_start(db, "tree head")


def test_head_note_signed_by_another_key_stops_the_start(db, template):
    def change(c):
        size, root = c.execute(sa.text("SELECT size, root FROM tree_head")).one()
        import base64

        body = f"{ORIGIN}\n{size}\n{base64.b64encode(bytes(root)).decode()}\n"
        note = sign_note(body, [Ed25519Signer(ORIGIN, bytes(32))])
        c.execute(sa.text("UPDATE tree_head SET note = :n"), {"n": note})

    _edit(db, change)
    _refused_at_start(db, "not validly signed")


def test_head_rolled_back_to_an_older_checkpoint_stops_the_start(db, template):
    size, root, note = template.old_checkpoint
    _edit(
        db,
        lambda c: c.execute(
            sa.text("UPDATE tree_head SET size = :s, root = :r, note = :n"),
            {"s": size, "r": root, "n": note},
        ),
    )
    _refused_at_start(db, rf"\b{size}\b")


def test_checkpoint_row_at_the_head_edited_stops_the_start(db, template):
    def change(c):
        note = bytes(
            c.execute(
                sa.text("SELECT note FROM checkpoints WHERE size = :s"),
                {"s": template.size},
            ).one()[0]
        )
        c.execute(
            sa.text("UPDATE checkpoints SET note = :n WHERE size = :s"),
            {"n": note.replace(b"\n\n", b"\n\nx", 1), "s": template.size},
        )

    _edit(db, change)
    _refused_at_start(db, rf"checkpoint stored at size {template.size}")


def test_checkpoint_beyond_the_head_stops_the_start(db, template):
    def change(c):
        c.execute(
            sa.text(
                "INSERT INTO checkpoints (size, root, note, made_at_ms) "
                "VALUES (:s, :r, :n, 1)"
            ),
            {"s": template.size + 5, "r": bytes(32), "n": b"x"},
        )

    _edit(db, change)
    _refused_at_start(db, rf"checkpoint of size {template.size + 5} lies beyond")


def _records_row(c, index: int) -> dict:
    return dict(
        c.execute(sa.text("SELECT * FROM records WHERE idx = :i"), {"i": index})
        .mappings()
        .one()
    )


def test_index_row_deleted_stops_the_start(db, template):
    # The review's replay: without the row, a replayed envelope looked new.
    _edit(
        db,
        lambda c: c.execute(
            sa.text("DELETE FROM records WHERE idx = :i"),
            {"i": template.form_index + 1},
        ),
    )
    _refused_at_start(db, rf"entry {template.form_index + 1}\b")


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("subject", "results/ppwp/3171011001099"),  # the review's rival revision 0
        ("revision", 7),
        ("schema_name", "keys.grant/v1"),
        ("payload_hash", bytes(32)),
    ],
)
def test_index_row_edited_stops_the_start(db, template, column, value):
    _edit(
        db,
        lambda c: c.execute(
            sa.text(f"UPDATE records SET {column} = :v WHERE idx = :i"),
            {"v": value, "i": template.form_index},
        ),
    )
    _refused_at_start(db, rf"entry {template.form_index}\b")


def test_index_rows_swapped_stop_the_start(db, template):
    def change(c):
        a, b = template.form_index, template.form_index + 1
        row_a, row_b = _records_row(c, a), _records_row(c, b)
        c.execute(
            sa.text("DELETE FROM records WHERE idx IN (:a, :b)"), {"a": a, "b": b}
        )
        for row, index in ((row_a, b), (row_b, a)):
            c.execute(
                sa.text(
                    "INSERT INTO records VALUES (:idx, :subject, :revision, "
                    ":schema_name, :payload_key, :payload_hash)"
                ),
                {**row, "idx": index},
            )

    _edit(db, change)
    _refused_at_start(db, rf"entry ({template.form_index}|{template.form_index + 1})\b")


def test_index_row_beyond_the_head_stops_the_start(db, template):
    def change(c):
        row = _records_row(c, template.form_index)
        c.execute(
            sa.text(
                "INSERT INTO records VALUES (:idx, :subject, 9, :schema_name, "
                ":payload_key, :payload_hash)"
            ),
            {**row, "idx": template.size},
        )

    _edit(db, change)
    _refused_at_start(db, rf"entry {template.size} lies beyond")


def test_log_origin_edited_stops_the_start(db):
    _edit(
        db,
        lambda c: c.execute(sa.text("UPDATE log_meta SET origin = 'evil.example/log'")),
    )
    _refused_at_start(db, "origin")


def test_log_key_edited_stops_the_start(db):
    other = Ed25519Signer(ORIGIN, bytes(32)).verifier_key
    _edit(
        db,
        lambda c: c.execute(
            sa.text("UPDATE log_meta SET verifier_key = :k"), {"k": str(other)}
        ),
    )
    _refused_at_start(db, "log key")


def test_dropped_trigger_stops_the_start(db):
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER records_no_delete"))
    engine.dispose()
    _refused_at_start(db, "records_no_delete on records is missing")


def test_altered_trigger_stops_the_start(db):
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER entries_no_update"))
        conn.execute(
            sa.text(
                "CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries WHEN 0 "
                "BEGIN SELECT RAISE(ABORT, 'saksi: entries is append-only'); END"
            )
        )
    engine.dispose()
    _refused_at_start(db, "entries_no_update on entries is altered")


def test_foreign_trigger_stops_the_start(db):
    # A trigger that could rewrite rows as the writer inserts them.
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(
            sa.text("CREATE TRIGGER quiet AFTER INSERT ON records BEGIN SELECT 1; END")
        )
    engine.dispose()
    _refused_at_start(db, "quiet on records is not one of the log's")


# -- the start succeeds; the first use refuses -----------------------------------


def test_replayed_form_with_its_entry_edited_is_refused_at_first_use(db, template):
    _edit(
        db,
        lambda c: _put_entry(
            c,
            template.form_index,
            # Still a well-formed entry of the same record (logged a thousand
            # years later): only the proof against the signed tree can tell.
            _entry(c, template.form_index).replace(
                b'"logged_at":"2', b'"logged_at":"3'
            ),
            hash_too=True,
        ),
    )
    service = _open(db)
    try:
        with pytest.raises(IntegrityFailure, match=rf"entry {template.form_index}\b"):
            service.ledger.submit(_prepare(service, template.form_envelope))
        assert service.ledger.size == template.size
    finally:
        service.close()
    assert _size(db) == template.size


def test_replayed_form_with_its_entry_deleted_is_refused_at_first_use(db, template):
    _edit(
        db,
        lambda c: c.execute(
            sa.text("DELETE FROM entries WHERE idx = :i"), {"i": template.form_index}
        ),
    )
    service = _open(db)
    try:
        with pytest.raises(IntegrityFailure, match=rf"entry {template.form_index}\b"):
            service.ledger.submit(_prepare(service, template.form_envelope))
    finally:
        service.close()
    assert _size(db) == template.size


def test_leaf_hash_column_edited_is_never_used(db, template):
    # The writer hashes entries itself: the receipt of a repeat proves the real
    # entry, whatever the column says, and nothing new is logged.
    _edit(
        db,
        lambda c: c.execute(
            sa.text("UPDATE entries SET leaf_hash = :h WHERE idx = :i"),
            {"h": bytes(32), "i": template.form_index},
        ),
    )
    service = _open(db)
    try:
        receipt = service.ledger.submit(_prepare(service, template.form_envelope))
    finally:
        service.close()
    assert receipt.duplicate
    assert receipt.index == template.form_index
    assert receipt.leaf_hash == hash_leaf(receipt.entry) != bytes(32)
    checkpoint, _ = verify_checkpoint(receipt.checkpoint, SIGNER.verifier_key, ORIGIN)
    verify_inclusion(
        receipt.index,
        checkpoint.size,
        receipt.leaf_hash,
        receipt.proof,
        checkpoint.root_hash,
    )
    assert _size(db) == template.size


def test_trigger_dropped_while_serving_stops_the_writes(db, template):
    from ledger.sequencer import SequencerConfig

    service = OpenRecordLog(
        SqlStorage.open(f"sqlite:///{db}"),
        SIGNER,
        SIGNER.verifier_key,
        ORIGIN,
        clock=FixedClock(START + 3600),
        config=SequencerConfig(checkpoint_interval=0.05),
    )
    service.start()
    try:
        engine = sa.create_engine(f"sqlite:///{db}")
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TRIGGER entries_no_delete"))
        engine.dispose()
        import time

        refused: IntegrityFailure | None = None
        for _ in range(200):  # the next idle refresh looks at the guards
            try:
                service.ledger.submit(_prepare(service, template.form_envelope))
            except IntegrityFailure as e:
                refused = e
                break
            time.sleep(0.02)
        assert refused is not None, "writes went on with a trigger dropped"
        assert "entries_no_delete" in str(refused)
    finally:
        service.close()


# -- the seal: lost or replaced, the full check runs and finds the log intact --------


@pytest.mark.parametrize("seal", [None, b"\x00" * 32, "older"])
def test_a_lost_or_replaced_seal_costs_a_full_check(db, template, seal, caplog):
    def change(c):
        value = seal
        if value == "older":  # the seal the writer wrote at an earlier head
            size, root, _ = template.old_checkpoint
            digest = RecordsDigest()
            for row in c.execute(
                sa.text(
                    "SELECT idx, subject, revision, schema_name, payload_hash "
                    "FROM records WHERE idx < :s ORDER BY idx"
                ),
                {"s": size},
            ):
                digest.feed(row[0], row[1], row[2], row[3], bytes(row[4]))
            key = derive_seal_key(SIGNER, ORIGIN)
            value = seal_head(key, ORIGIN, size, root, digest.digest())
        c.execute(
            sa.text("UPDATE tree_head SET seal = :s, made_at_ms = made_at_ms + 1"),
            {"s": value},
        )

    _edit(db, change)
    service = _open(db)
    try:
        assert service.ledger.head.seal is not None
        assert service.ledger.head.seal != seal
    finally:
        service.close()
    assert "checking the whole log" in caplog.text
    # Sealed again: the next start is the quick one.
    caplog.clear()
    _open(db).close()
    assert "checking the whole log" not in caplog.text


# -- a consistent rollback: nothing in the database shows it ---------------------


@pytest.fixture
def restored(template, tmp_path) -> Path:
    """The early backup restored in place of the log: every row is genuine."""
    path = tmp_path / "restored.db"
    shutil.copyfile(template.backup, path)
    return path


def test_restored_backup_starts_without_a_pin(restored, template):
    service = _open(restored)  # the residual risk: only a pin or a witness tells
    try:
        assert service.ledger.size == template.old_checkpoint[0]
    finally:
        service.close()


def test_restored_backup_is_refused_with_a_trusted_checkpoint(
    restored, template, evidence
):
    from ledger.sequencer import SequencerConfig
    from ledger.trusted import load_trusted

    pinned = restored.parent / "checkpoint"
    pinned.write_bytes(template.head_note)
    trusted = load_trusted(pinned, SIGNER.verifier_key, ORIGIN)
    service = OpenRecordLog(
        SqlStorage.open(f"sqlite:///{restored}"),
        SIGNER,
        SIGNER.verifier_key,
        ORIGIN,
        clock=FixedClock(START + 3600),
        config=SequencerConfig(trusted=(trusted,)),
    )
    refused = 0
    with pytest.raises(IntegrityFailure, match="older than the trusted checkpoint"):
        service.start()
    refused += 1
    service.storage.close()
    evidence.record(
        "T5",
        attempts=1,
        detected=refused,
        backend="sqlite",
        scenario="older backup restored, pinned checkpoint: the writer refuses",
        backup_size=template.old_checkpoint[0],
        pinned_size=template.size,
    )


def test_restored_backup_is_reported_by_the_check(restored, template, evidence):
    from ledger.fullcheck import check_log
    from ledger.trusted import load_trusted

    pinned = restored.parent / "checkpoint"
    pinned.write_bytes(template.head_note)
    storage = SqlStorage.open(f"sqlite:///{restored}")
    try:
        report = check_log(
            storage,
            SIGNER.verifier_key,
            ORIGIN,
            trusted=[load_trusted(pinned, SIGNER.verifier_key, ORIGIN)],
        )
    finally:
        storage.close()
    assert [p.kind for p in report.problems] == ["rollback"]
    assert report.problems[0].index == template.size
    evidence.record(
        "T5",
        attempts=1,
        detected=len(report.problems),
        backend="sqlite",
        scenario="older backup restored: saksi check with a pin names the rollback",
    )


def test_restored_backup_is_refused_by_a_witness_that_saw_more(
    restored, template, tmp_path, evidence
):
    from ledger.cosigning import WitnessEndpoint
    from verifier.witness_protocol import WitnessKey, format_add_checkpoint
    from verifier.witness_server import Witness, serve_witness

    key = WitnessKey.generate("w.example.org")
    witness = Witness(key, [SIGNER.verifier_key], tmp_path / "witness")
    assert (
        witness.add_checkpoint(format_add_checkpoint(0, [], template.head_note)).status
        == 200
    )
    server = serve_witness(witness, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    service = _open(restored)
    try:
        endpoint = WitnessEndpoint(
            f"http://127.0.0.1:{server.server_address[1]}", key.verifier_key
        )
        refused = 0
        with pytest.raises(IntegrityFailure, match=rf"cosigned size {template.size}"):
            service.witness_with([endpoint])
        refused += 1
        with pytest.raises(IntegrityFailure):
            service.ledger.submit(_prepare(service, template.form_envelope))
        refused += 1
        assert service.ledger.size == template.old_checkpoint[0]
    finally:
        service.close()
        server.shutdown()
    evidence.record(
        "T5",
        attempts=2,
        detected=refused,
        backend="sqlite",
        scenario="older backup restored, a witness saw more: the writes stop",
        cosigned_size=template.size,
        restored_size=template.old_checkpoint[0],
    )
