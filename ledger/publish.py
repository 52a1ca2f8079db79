"""Publishing a log's C2SP tlog-tiles tree as static files (``saksi publish``).

``TilePublisher`` writes what ``/log/`` serves (``api.routes.tiles``), the same
bytes from the same ``LogReader``, to a ``Sink``: the checkpoint, hash tiles and
entry bundles, so any web server, CDN or object store can serve the log to the
verifier and the monitor. A full tile or bundle is put once and never
rewritten; the partial ones of the tree's right edge are put as ``.p/<W>``; the
checkpoint is replaced last, after every object it needs is in place and
durable, so no reader sees a checkpoint whose tiles are missing.

Nothing is put that the log key does not prove: the tree comes from the read
side's checks (``ledger.read.stored``), each new full tile must hash to its
node in the tile above (up to the right edge, which rebuilt the signed root),
each entry to its leaf hash, and the tree must extend the checkpoint the sink
already holds. It deliberately never deletes: superseded partial tiles stay.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from ledger.errors import IntegrityFailure
from ledger.read.reader import LogReader
from ledger.read.tree import SignedTree
from ledger.tree.compact import perfect_root
from ledger.tree.tiles import TILE_WIDTH, TileCoord, level_width, tiles_for_size
from ledger.trusted import rollback_problem
from verifier.checkpoint import Checkpoint, verify_checkpoint
from verifier.errors import VerificationError
from verifier.note import VerifierKey
from verifier.rfc6962 import HASH_SIZE, hash_leaf
from verifier.tile_format import entries_path, parse_entry_bundle, tile_path

__all__ = [
    "CHECKPOINT",
    "Conflict",
    "DirectorySink",
    "ForeignTarget",
    "Publication",
    "PublishError",
    "Sink",
    "TargetBusy",
    "TilePublisher",
]

CHECKPOINT = "checkpoint"
TEMP_PREFIX = ".saksi-tmp-"
LOCK_FILE = ".saksi-publish.lock"


class PublishError(Exception):
    """The target cannot take this log's tree (see the subclasses)."""


class ForeignTarget(PublishError):
    """The target's checkpoint is not one of this log (another log, or garbage)."""


class Conflict(PublishError):
    """The target holds this log's objects, but not the ones the log proves.

    An immutable object with other bytes, or a published checkpoint the log's
    tree does not extend (the database was rolled back, or forked).
    """


class TargetBusy(PublishError):
    """Another publisher holds the target's lock."""


class Sink(Protocol):
    """Where the tree goes: a directory, a bucket, anything with these three.

    Paths are tlog-tiles paths relative to the log's prefix (``checkpoint``,
    ``tile/0/x001/234``, ``tile/entries/005.p/17``). A sink raises ``OSError``
    when its storage fails.
    """

    def get(self, path: str) -> bytes | None:
        """The object at ``path``, or None when there is none."""
        ...

    def put_immutable(self, path: str, data: bytes) -> bool:
        """Store ``data`` at ``path`` unless an object is there already.

        Returns True when written, False when the same bytes were there.

        Raises:
            Conflict: other bytes are there (they are left alone).
            OSError: the storage failed; nothing partial is visible.
        """
        ...

    def replace(self, path: str, data: bytes) -> None:
        """Replace the object at ``path`` atomically (the checkpoint).

        Every object put before is durable before the new one is visible.

        Raises:
            OSError: the storage failed; the old object is still there.
        """
        ...


class DirectorySink:
    """A directory any web server serves: temp file, fsync, rename, fsync the dir.

    Files are world-readable (0644) and directories 0755: the log is public.
    Open it with ``DirectorySink.open``, which takes the directory's lock (one
    publisher at a time) and removes the temp files a killed publisher left.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: set[Path] = {root}
        self._unsynced: set[Path] = set()

    @classmethod
    @contextlib.contextmanager
    def open(cls, root: Path) -> Iterator[DirectorySink]:
        """The sink of the existing directory ``root``, locked for the block.

        Raises:
            TargetBusy: another publisher holds its lock.
            OSError: the directory cannot be written.
        """
        fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as e:
                raise TargetBusy(f"another publisher is writing to {root}") from e
            sink = cls(root)
            sink.remove_temp_files()
            yield sink
        finally:
            os.close(fd)

    def remove_temp_files(self) -> int:
        """Remove the temp files a killed publisher left; how many there were."""
        removed = 0
        for directory, _, files in os.walk(self.root):
            for name in files:
                if name.startswith(TEMP_PREFIX):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(directory, name))
                        removed += 1
        return removed

    def get(self, path: str) -> bytes | None:
        """The file at ``path``, or None (see ``Sink.get``)."""
        try:
            return self._target(path).read_bytes()
        except FileNotFoundError:
            return None

    def put_immutable(self, path: str, data: bytes) -> bool:
        """Write the file unless it exists (see ``Sink.put_immutable``).

        Raises:
            Conflict: the file exists with other bytes.
            OSError: the write failed; its temp file is removed.
        """
        existing = self.get(path)
        if existing is not None:
            if existing != data:
                raise Conflict(
                    f"{self._target(path)} exists with other bytes than the log's "
                    f"({len(existing)} bytes, expected {len(data)})"
                )
            return False
        self._write(self._target(path), data)
        return True

    def replace(self, path: str, data: bytes) -> None:
        """Sync every directory written to, then rename the new file over the old.

        Raises:
            OSError: the write failed; the old file is still there.
        """
        for directory in sorted(self._unsynced, key=lambda p: len(p.parts)):
            _fsync_dir(directory)
        self._unsynced.clear()
        target = self._target(path)
        self._write(target, data)
        _fsync_dir(target.parent)
        self._unsynced.discard(target.parent)

    def _target(self, path: str) -> Path:
        relative = PurePosixPath(path)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise ValueError(f"not a path inside the sink: {path!r}")
        return self.root.joinpath(*relative.parts)

    def _make_dirs(self, directory: Path) -> None:
        if directory in self._made:
            return
        missing: list[Path] = []
        while not directory.is_dir():
            missing.append(directory)
            directory = directory.parent
        for made in reversed(missing):
            with contextlib.suppress(FileExistsError):
                made.mkdir(mode=0o755)
                os.chmod(made, 0o755)  # noqa: S103 (public: served to anyone)
            self._unsynced.add(made.parent)
            self._made.add(made)

    def _write(self, target: Path, data: bytes) -> None:
        directory = target.parent
        temp = directory / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        try:
            self._make_dirs(directory)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC)
            try:
                os.fchmod(fd, 0o644)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, target)
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            if isinstance(e, OSError):  # named after the file, not its temp
                raise OSError(e.errno, e.strerror, str(target)) from e
            raise
        self._unsynced.add(directory)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class Publication:
    """One publish: the sizes before and after, and what was put."""

    old_size: int
    size: int
    written: tuple[str, ...]  # paths written, the checkpoint last
    present: int  # new paths already there with the same bytes
    bytes: int


class TilePublisher:
    """Puts a log's tree into a sink, a growth at a time (see the module)."""

    def __init__(
        self, reader: LogReader, sink: Sink, verifier_key: VerifierKey, origin: str
    ) -> None:
        self._reader = reader
        self._sink = sink
        self._key = verifier_key
        self._origin = origin
        self._published: tuple[Checkpoint, bytes] | None = None
        self._tree: SignedTree | None = None
        self._proven: dict[int, tuple[int, bytes]] = {}  # level -> the last tile

    def published(self, *, fresh: bool = False) -> Checkpoint | None:
        """The checkpoint the sink holds, verified (None: nothing published yet).

        Read from the sink once, then remembered (``fresh``: read it again).

        Raises:
            ForeignTarget: the sink's checkpoint is not signed by this log.
            OSError: the sink cannot be read.
        """
        if self._published is None or fresh:
            note = self._sink.get(CHECKPOINT)
            if note is None:
                return None
            try:
                checkpoint, _ = verify_checkpoint(note, self._key, self._origin)
            except VerificationError as e:
                raise ForeignTarget(
                    f"its checkpoint is not one of {self._origin} signed by the "
                    f"log key: {e}"
                ) from e
            self._published = (checkpoint, note)
        return self._published[0]

    def publish(
        self, tree: SignedTree, progress: Callable[[int, int], None] | None = None
    ) -> Publication:
        """Put what ``tree`` has and the sink lacks, then its checkpoint.

        ``progress(done, total)`` is called after each object put.

        Steps: (1) the tree extends the sink's checkpoint; (2) each tile and
        bundle new since then is proven and put; (3) the checkpoint is replaced.

        Raises:
            ForeignTarget: the sink holds another log's checkpoint.
            Conflict: the tree does not extend the sink's checkpoint, or an
                object there has other bytes.
            IntegrityFailure: a stored tile or entry is not the signed tree's.
            LedgerError: the database cannot be read.
            OSError: the sink failed (what it published before still stands).
        """
        published = self.published()
        old_size = 0 if published is None else published.size
        if published is not None:  # (1)
            problem = rollback_problem(
                published, self._reader.nodes(tree), tree.head.root
            )
            if problem:  # said of a trusted checkpoint: here, the published one
                raise Conflict(problem.replace("trusted", "published"))
            if self._published is not None and self._published[1] == tree.head.note:
                return Publication(old_size, tree.size, (), 0, 0)
        self._tree, self._proven = tree, {}
        before = set(tiles_for_size(old_size))
        new = [c for c in tiles_for_size(tree.size) if c not in before]
        total = len(new) + sum(c.level == 0 for c in new) + 1
        written: list[str] = []
        present = size = 0
        for path, data in self._objects(new):  # (2)
            if self._sink.put_immutable(path, data):
                written.append(path)
                size += len(data)
            else:
                present += 1
            if progress is not None:
                progress(len(written) + present, total)
        self._sink.replace(CHECKPOINT, tree.head.note)  # (3)
        written.append(CHECKPOINT)
        size += len(tree.head.note)
        if progress is not None:
            progress(total, total)
        checkpoint, _ = verify_checkpoint(tree.head.note, self._key, self._origin)
        self._published = (checkpoint, tree.head.note)
        return Publication(old_size, tree.size, tuple(written), present, size)

    def _objects(self, coords: list[TileCoord]) -> Iterator[tuple[str, bytes]]:
        """Each new object: a level-0 tile's entry bundle first, then the tile."""
        for coord in coords:
            if coord.level == 0:
                yield entries_path(coord.index, coord.width), self._bundle(coord)
            yield tile_path(coord.level, coord.index, coord.width), self._tile(coord)

    def _tile(self, coord: TileCoord) -> bytes:
        data = self._reader.tile(coord.level, coord.index, coord.width)
        if data != self._proven_tile(coord):
            raise IntegrityFailure(
                f"tile {coord.level}/{coord.index} (width {coord.width}) as read is "
                f"not the signed tree's at size {self._current.size}"
            )
        return data

    def _bundle(self, coord: TileCoord) -> bytes:
        data = self._reader.entry_bundle(coord.index, coord.width)
        leaves = self._proven_tile(coord)
        for offset, entry in enumerate(parse_entry_bundle(data, coord.width)):
            if (
                hash_leaf(entry)
                != leaves[offset * HASH_SIZE : (offset + 1) * HASH_SIZE]
            ):
                raise IntegrityFailure(
                    f"entry {coord.index * TILE_WIDTH + offset} as stored is not the "
                    f"entry the signed tree holds at size {self._current.size}"
                )
        return data

    def _proven_tile(self, coord: TileCoord) -> bytes:
        """The tile's hashes as the signed tree proves them."""
        if coord.full:
            return self._full(coord.level, coord.index)
        partial = self._current.state.partials[coord.level]
        return b"".join(partial[: coord.width])  # they rebuilt the signed root

    @property
    def _current(self) -> SignedTree:
        if self._tree is None:
            raise RuntimeError("no tree is being published")
        return self._tree

    def _hash_at(self, level: int, position: int) -> bytes:
        """The proven hash at ``position`` of tile level ``level``."""
        tree = self._current
        tile, offset = divmod(position, TILE_WIDTH)
        if level_width(tree.size, level) < (tile + 1) * TILE_WIDTH:
            return tree.state.partials[level][offset]  # they rebuilt the signed root
        return self._full(level, tile)[offset * HASH_SIZE : (offset + 1) * HASH_SIZE]

    def _full(self, level: int, index: int) -> bytes:
        """A full tile's bytes, proven: they hash to its node one level up.

        The node above is proven the same way, up to the tree's right edge.
        The last tile proven at each level is remembered (reads are in order).
        """
        last = self._proven.get(level)
        if last is not None and last[0] == index:
            return last[1]
        data = self._reader.full_tile(level, index)
        hashes = [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]
        if len(data) != TILE_WIDTH * HASH_SIZE or perfect_root(hashes) != self._hash_at(
            level + 1, index
        ):
            raise IntegrityFailure(
                f"tile {level}/{index} as stored is not the signed tree's at size "
                f"{self._current.size}"
            )
        self._proven[level] = (index, data)
        return data
