"""The tile publisher's own promises, in process (``ledger.publish``).

* What it puts is proven: a full tile that does not hash to the node above it,
  or an entry edited in the database, stops the publish before anything that
  depends on it is put, and no checkpoint is written.
* The checkpoint goes last: a sink that fails at any put keeps the checkpoint
  it had, and the next publish finishes the job; a growth puts only the new.
* The target is this log's: another log's checkpoint, a fork of the published
  one, and an immutable object with other bytes are refused, left as they are.
* ``DirectorySink``: a failed write leaves no temp file and names the file it
  was writing; one publisher per directory; a killed one's temp files go.
"""

from __future__ import annotations

import errno
import math
import os

import pytest
import sqlalchemy as sa

from keys import Ed25519Signer
from ledger.errors import IntegrityFailure
from ledger.ledger import Ledger
from ledger.publish import (
    CHECKPOINT,
    Conflict,
    DirectorySink,
    ForeignTarget,
    TargetBusy,
    TilePublisher,
)
from ledger.publisher import CheckpointPublisher
from ledger.read.proof_builder import FullTileCache
from ledger.read.reader import LogReader
from ledger.recordlog import ReadOnlyLog
from ledger.storage.sql import SqlStorage
from ledger.tree.tiles import tiles_for_size
from tests.conftest import ORIGIN, FixedClock, create_log
from verifier.tile_format import entries_path, tile_path

SIZE = 1000  # 3 full tiles and bundles, a partial of 232; level 1 partial of 3


def _entry(i: int) -> bytes:
    return b"entry %06d " % i + bytes([i % 251]) * 40


@pytest.fixture
def log(tmp_path, signer):
    """A log of SIZE plain entries, its writer open, and its read side."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    create_log(url, signer).close()
    writer = Ledger.of_entries(
        SqlStorage.open(url), signer, signer.verifier_key, ORIGIN, clock=FixedClock()
    )
    writer.start()
    writer.append_many([_entry(i) for i in range(SIZE)])
    reader = ReadOnlyLog(
        SqlStorage.open(url), signer.verifier_key, ORIGIN, interval=math.inf
    )
    reader.tree.start()
    yield writer, reader
    reader.close()
    writer.close()
    writer.storage.close()


class MemorySink:
    """An object store in memory that can fail its ``fail_at``-th put."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.objects: dict[str, bytes] = {}
        self.order: list[str] = []
        self.puts = 0
        self.fail_at = fail_at

    def get(self, path):
        return self.objects.get(path)

    def put_immutable(self, path, data):
        self.puts += 1
        if self.puts == self.fail_at:
            raise OSError(errno.ENOSPC, "No space left on device", path)
        if path in self.objects:
            if self.objects[path] != data:
                raise Conflict(path)
            return False
        self.objects[path] = data
        self.order.append(path)
        return True

    def replace(self, path, data):
        self.objects[path] = data
        self.order.append(path)


def _publisher(reader: ReadOnlyLog, sink, signer) -> TilePublisher:
    return TilePublisher(reader.reader, sink, signer.verifier_key, ORIGIN)


def _paths(size: int) -> set[str]:
    paths = {CHECKPOINT}
    for c in tiles_for_size(size):
        paths.add(tile_path(c.level, c.index, c.width))
        if c.level == 0:
            paths.add(entries_path(c.index, c.width))
    return paths


# -- proven before put ------------------------------------------------------------


class TileEditedStore:
    """The log's storage, serving tile 0/1 with one bit flipped (full-tile reads)."""

    def __init__(self, store) -> None:
        self._store = store

    def __getattr__(self, name):
        return getattr(self._store, name)

    def read_tile(self, level, index):
        data = self._store.read_tile(level, index)
        if (level, index) == (0, 1):
            data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
        return data


def test_a_full_tile_that_is_not_the_trees_is_never_published(log, signer):
    _, reader = log
    edited = LogReader(TileEditedStore(reader.storage), reader.tree, FullTileCache())
    sink = MemorySink()
    publisher = TilePublisher(edited, sink, signer.verifier_key, ORIGIN)
    with pytest.raises(IntegrityFailure, match="tile 0/1 as stored"):
        publisher.publish(reader.tree.refresh())
    assert CHECKPOINT not in sink.objects
    assert not {"tile/0/001", "tile/entries/001"} & set(sink.objects)


def test_an_entry_edited_in_the_database_is_never_published(log, signer, tmp_path):
    _, reader = log
    with reader.storage.engine.begin() as conn:
        for (name,) in conn.execute(
            sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        ).all():
            conn.execute(sa.text(f'DROP TRIGGER "{name}"'))
        conn.execute(
            sa.text("UPDATE entries SET data = :d WHERE idx = 600"),
            {"d": b"a forged entry"},
        )
    out = tmp_path / "public"
    out.mkdir()
    with (
        DirectorySink.open(out) as sink,
        pytest.raises(IntegrityFailure, match="entry 600 as stored"),
    ):
        _publisher(reader, sink, signer).publish(reader.tree.refresh())
    assert not (out / CHECKPOINT).exists()
    assert not (out / "tile/entries/002").exists()


# -- the checkpoint last ----------------------------------------------------------


@pytest.mark.parametrize("fail_at", [1, 4, 7])  # of the 7 new objects
def test_a_failed_put_keeps_the_checkpoint_and_the_next_publish_finishes(
    log, signer, fail_at
):
    writer, reader = log
    sink = MemorySink()
    first = _publisher(reader, sink, signer).publish(reader.tree.refresh())
    assert set(sink.objects) == _paths(SIZE) == set(first.written)
    assert sink.order[-1] == CHECKPOINT
    note = sink.objects[CHECKPOINT]

    writer.append_many([_entry(i) for i in range(SIZE, SIZE + 300)])
    sink.fail_at, sink.puts, sink.order = fail_at, 0, []
    publisher = _publisher(reader, sink, signer)
    with pytest.raises(OSError, match="No space left"):
        publisher.publish(reader.tree.refresh())
    assert sink.objects[CHECKPOINT] == note
    assert CHECKPOINT not in sink.order

    done = publisher.publish(reader.tree.refresh())
    assert (done.old_size, done.size) == (SIZE, SIZE + 300)
    assert done.written[-1] == sink.order[-1] == CHECKPOINT
    new = (_paths(SIZE + 300) - _paths(SIZE)) | {CHECKPOINT}
    assert set(sink.order) == new
    assert done.present == len(new) - len(done.written)  # put before the failure
    assert set(sink.objects) == _paths(SIZE) | _paths(SIZE + 300)
    assert publisher.publish(reader.tree.refresh()).written == ()


# -- the target is this log's -----------------------------------------------------


def test_another_logs_checkpoint_is_a_foreign_target(log, signer):
    _, reader = log
    other = Ed25519Signer(ORIGIN, bytes([7]) * 32)
    note = CheckpointPublisher(ORIGIN, other, other.verifier_key).sign(1, bytes(32))
    sink = MemorySink()
    sink.objects[CHECKPOINT] = note
    with pytest.raises(ForeignTarget, match="signed by the log key"):
        _publisher(reader, sink, signer).publish(reader.tree.refresh())
    assert sink.objects == {CHECKPOINT: note}


def test_a_fork_of_the_published_checkpoint_is_refused(log, signer):
    _, reader = log
    fork = CheckpointPublisher(ORIGIN, signer, signer.verifier_key).sign(
        SIZE, bytes(range(32))
    )
    sink = MemorySink()
    sink.objects[CHECKPOINT] = fork
    with pytest.raises(Conflict, match="another root at size 1000: a fork"):
        _publisher(reader, sink, signer).publish(reader.tree.refresh())
    assert sink.objects == {CHECKPOINT: fork}


def test_an_immutable_file_with_other_bytes_is_a_conflict(log, signer, tmp_path):
    _, reader = log
    out = tmp_path / "public"
    (out / "tile/0").mkdir(parents=True)
    (out / "tile/0/001").write_bytes(b"someone else's tile")
    with (
        DirectorySink.open(out) as sink,
        pytest.raises(Conflict, match="exists with other bytes"),
    ):
        _publisher(reader, sink, signer).publish(reader.tree.refresh())
    assert (out / "tile/0/001").read_bytes() == b"someone else's tile"
    assert not (out / CHECKPOINT).exists()


# -- DirectorySink ----------------------------------------------------------------


def test_a_failed_write_leaves_no_temp_file_and_names_its_file(tmp_path, monkeypatch):
    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with DirectorySink.open(tmp_path) as sink:
        monkeypatch.setattr(os, "fsync", full)
        with pytest.raises(OSError, match="No space left") as caught:
            sink.put_immutable("tile/0/000", b"x" * 8192)
        monkeypatch.undo()
        assert caught.value.filename == str(tmp_path / "tile/0/000")
        assert caught.value.errno == errno.ENOSPC
        assert not list(tmp_path.rglob(".saksi-tmp-*"))
        assert not (tmp_path / "tile/0/000").exists()
        assert sink.put_immutable("tile/0/000", b"x" * 8192)
        assert not sink.put_immutable("tile/0/000", b"x" * 8192)
        sink.replace(CHECKPOINT, b"one")
        sink.replace(CHECKPOINT, b"two")
    assert (tmp_path / CHECKPOINT).read_bytes() == b"two"
    assert oct((tmp_path / "tile/0/000").stat().st_mode & 0o777) == "0o644"
    assert oct((tmp_path / "tile/0").stat().st_mode & 0o777) == "0o755"


def test_one_publisher_per_directory_and_a_killed_ones_temp_files_go(tmp_path):
    stale = tmp_path / "tile/0/.saksi-tmp-0123456789abcdef"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a tile")
    with DirectorySink.open(tmp_path):
        assert not stale.exists()
        with pytest.raises(TargetBusy), DirectorySink.open(tmp_path):
            pass
    with DirectorySink.open(tmp_path):  # free again
        pass
    with (
        DirectorySink.open(tmp_path) as sink,
        pytest.raises(ValueError, match="not a path inside"),
    ):
        sink.put_immutable("../escape", b"x")
