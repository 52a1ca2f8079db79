"""The bundle writer: its lines are the format's JSON, and a failed write is raised.

Lines are compressed by a thread of the writer's own; what it fails to write
must reach the caller (never a bundle that looks finished), and giving up
half-way must not leave the thread behind.
"""

from __future__ import annotations

import base64
import errno
import gzip
import hashlib
import io
import json

import pytest

from verifier.proof_bundle import BundleReader, BundleWriter, Header, Selection

CHECKPOINT = b"example.org/log\n3\nAAAA\n\n\xe2\x80\x94 x AAAA\n"


def _header() -> Header:
    return Header("example.org/log", CHECKPOINT, Selection(region="31"), (), "T")


def _entries(count: int) -> list[tuple[int, bytes, list[bytes], bool]]:
    return [
        (
            3 * i,
            hashlib.sha512(str(i).encode()).digest() * (1 + i % 5),
            [hashlib.sha256(bytes([i % 256, k])).digest() for k in range(i % 23)],
            i % 3 != 0,
        )
        for i in range(count)
    ]


class _Full(io.RawIOBase):
    """A file that takes ``room`` bytes, then fails as a full disk does."""

    def __init__(self, room: int) -> None:
        self.room = room

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return len(data)


def test_each_line_is_the_sorted_compact_json_of_its_entry():
    entries = _entries(3000)  # several chunks for the compressing thread
    out = io.BytesIO()
    writer = BundleWriter(out, _header())
    for entry in entries:
        writer.add(*entry)
    trailer = writer.finish()
    lines = gzip.decompress(out.getvalue()).split(b"\n")
    assert lines[-1] == b""
    body = lines[1:-2]
    assert len(body) == len(entries)
    for line, (index, data, proof, selected) in zip(body, entries, strict=True):
        expected = {
            "entry": base64.b64encode(data).decode(),
            "index": index,
            "proof": base64.b64encode(b"".join(proof)).decode(),
            "selected": selected,
        }
        compact = json.dumps(expected, separators=(",", ":"), sort_keys=True)
        assert line == compact.encode()
    assert json.loads(lines[-2]) == {"end": trailer}
    assert trailer["entries"] == 3000
    assert trailer["selected"] == sum(e[3] for e in entries)
    # The reader takes back exactly what was written.
    read = BundleReader(io.BytesIO(out.getvalue())).entries(3 * 3000)
    assert [(e.index, e.entry, list(e.proof), e.selected) for e in read] == entries


def test_a_full_disk_is_raised_and_the_thread_ends():
    writer = BundleWriter(_Full(200_000), _header())

    def write_all() -> None:
        for entry in _entries(20_000):
            writer.add(*entry)
        writer.finish()

    with pytest.raises(OSError, match="No space left") as caught:
        write_all()
    assert caught.value.errno == errno.ENOSPC
    writer.close()
    assert not writer._thread.is_alive()


def test_finish_raises_a_failure_in_the_last_chunk():
    writer = BundleWriter(_Full(300), _header())  # the header fits, not more
    for entry in _entries(20):
        writer.add(*entry)
    with pytest.raises(OSError, match="No space left"):
        writer.finish()
    assert not writer._thread.is_alive()


def test_giving_up_half_way_stops_the_thread():
    writer = BundleWriter(io.BytesIO(), _header())
    for entry in _entries(500):
        writer.add(*entry)
    writer.close()
    writer.close()  # twice is harmless
    assert not writer._thread.is_alive()


def test_entries_out_of_order_are_refused():
    writer = BundleWriter(io.BytesIO(), _header())
    writer.add(5, b"x", [], True)
    with pytest.raises(ValueError, match="after entry 5"):
        writer.add(5, b"y", [], True)
    writer.close()
