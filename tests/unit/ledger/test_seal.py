"""The writer's seal: a running hash of the record index, bound to the head."""

from __future__ import annotations

import os

import pytest

from keys import Ed25519Signer
from ledger.errors import IntegrityFailure
from ledger.seal import RecordsDigest, derive_seal_key, seal_head
from ledger.storage.rows import RecordRow

ROWS = [
    (0, "log/genesis", 0, "log.genesis/v1", bytes([1]) * 32),
    (1, "keys/ab", 0, "keys.grant/v1", bytes([2]) * 32),
    (2, "results/ppwp/3171011001001", 0, "results.tally/v1", bytes([3]) * 32),
    (3, "results/ppwp/3171011001001", 1, "results.tally/v1", bytes([4]) * 32),
]


def _digest(rows) -> bytes:
    digest = RecordsDigest()
    digest.feed_many(rows)
    return digest.digest()


def test_one_at_a_time_in_batches_and_as_rows_agree():
    one = RecordsDigest()
    for row in ROWS:
        one.feed(*row)
    split = RecordsDigest()
    split.feed_many(ROWS[:1])
    split.update([RecordRow(*ROWS[1]), RecordRow(*ROWS[2])])
    split.copy().feed_many(ROWS[3:])  # a copy moves on alone
    split.feed_many(ROWS[3:])
    assert one.digest() == split.digest() == _digest(ROWS)
    assert one.count == split.count == 4


@pytest.mark.parametrize("field", range(1, 5))
def test_every_field_of_every_row_counts(field):
    for at in range(len(ROWS)):
        changed = list(ROWS)
        row = list(changed[at])
        row[field] = (
            row[field] + 1
            if isinstance(row[field], int)
            else row[field][:-1] + (b"\x00" if isinstance(row[field], bytes) else "x")
        )
        changed[at] = tuple(row)
        assert _digest(changed) != _digest(ROWS), (at, field)


def test_moving_text_between_subject_and_schema_counts():
    a = [(0, "ab", 0, "c", bytes(32))]
    b = [(0, "a", 0, "bc", bytes(32))]
    assert _digest(a) != _digest(b)


@pytest.mark.parametrize(
    "rows",
    [
        [ROWS[0], ROWS[2]],  # a row missing
        [ROWS[1]],  # not starting at 0
        [ROWS[0], ROWS[0]],  # a row twice
        [(0, "x", 0, "y", bytes(31))],  # a short payload hash
    ],
)
def test_a_gap_a_repeat_or_a_bad_hash_is_refused(rows):
    with pytest.raises(IntegrityFailure):
        _digest(rows)


def test_the_seal_binds_origin_size_root_and_index():
    key = os.urandom(32)
    base = seal_head(key, "o", 4, bytes(32), _digest(ROWS))
    assert seal_head(key, "o", 4, bytes(32), _digest(ROWS)) == base
    assert seal_head(os.urandom(32), "o", 4, bytes(32), _digest(ROWS)) != base
    assert seal_head(key, "p", 4, bytes(32), _digest(ROWS)) != base
    assert seal_head(key, "o", 5, bytes(32), _digest(ROWS)) != base
    assert seal_head(key, "o", 4, bytes([1]) * 32, _digest(ROWS)) != base
    assert seal_head(key, "o", 4, bytes(32), _digest(ROWS[:3])) != base


def test_the_seal_key_is_the_log_keys_alone():
    signer = Ed25519Signer("log.example/a", bytes(32))
    key = derive_seal_key(signer, "log.example/a")
    assert len(key) == 32
    assert derive_seal_key(signer, "log.example/a") == key
    assert derive_seal_key(signer, "log.example/b") != key
    other = Ed25519Signer("log.example/a", bytes([1]) * 32)
    assert derive_seal_key(other, "log.example/a") != key


def test_a_signer_that_is_not_deterministic_cannot_seal():
    class Random:
        name = "log.example/a"
        key_id = bytes(4)

        def sign(self, message: bytes) -> bytes:
            return os.urandom(64)

    with pytest.raises(IntegrityFailure, match="not deterministic"):
        derive_seal_key(Random(), "log.example/a")
