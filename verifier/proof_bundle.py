"""Selective proof bundles: part of the log, with what it takes to check it offline.

Format ``saksi-proof-bundle/v1`` (docs/evidence.md has it in full): one gzip
member (RFC 1952), nothing after it, of UTF-8 JSON lines, each at most
``MAX_LINE`` bytes.

1. The header: ``{"format": "saksi-proof-bundle/v1", "origin", "checkpoint"
   (the signed note every proof reaches, with its cosignatures), "selection"
   (what was asked for: ``Selection``), "pinned" (earlier checkpoints, each
   ``{"checkpoint", "proof"}`` with the consistency proof from it to the
   bundle's), "created" (when it was written; not checked)}``.
2. One line per entry, indices strictly increasing and below the checkpoint's
   size: ``{"index", "entry" (the logged bytes, base64), "proof" (the
   inclusion proof: its hashes end to end, base64), "selected"}``.
   ``selected`` is false for a
   record the selection depends on: every key-registry and election-state
   record (genesis, grants and revocations; regions, parties, candidate lists)
   before the last selected entry, so that every signature and authorization
   can be decided as of each entry's position.
3. The trailer: ``{"end": {"entries", "selected", "digest"}}``: the counts,
   and SHA-256 over each entry's index (8 bytes, big-endian) and leaf hash, in
   order. A bundle cut short has no trailer; one with lines dropped, repeated
   or moved has a trailer that does not add up.

What a bundle proves, and what it cannot: every entry in it is in the log as
signed, at its index, under a checkpoint the log signed (and the witnesses
cosigned). That it holds everything matching its selection (no revision, no
form, no revocation left out) only a full audit of the log shows.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import gzip
import hashlib
import json
import queue
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from verifier._encoding import b64decode_strict
from verifier.errors import MalformedInput, VerificationError
from verifier.record import Record, parse_timestamp
from verifier.registry import REGISTRY_SCHEMAS
from verifier.rfc6962 import hash_leaf
from verifier.rules.state import STATE_SCHEMAS
from verifier.schema_registry import UnknownSchema, get_schema

__all__ = [
    "CONTEXT_SCHEMAS",
    "FORMAT",
    "MAX_LINE",
    "BundleEntry",
    "BundleReader",
    "BundleWriter",
    "Header",
    "Pinned",
    "Selection",
]

FORMAT = "saksi-proof-bundle/v1"
# An entry is at most 64 KiB (base64: 88 KiB) with at most 64 proof hashes; a
# header holds a checkpoint, a selection and up to MAX_PINNED pinned ones.
MAX_LINE = 1 << 20
MAX_PINNED = 64
MAX_PROOF_HASHES = 64
MAX_NOTE = 64 * 1024
# JSON lines of base64 entries compress about 4 to 1; a stream that inflates
# far beyond any bundle's ratio is a decompression bomb.
MAX_RATIO = 64
# Records the selection depends on: what decides signatures and authorization.
CONTEXT_SCHEMAS = frozenset(REGISTRY_SCHEMAS) | STATE_SCHEMAS


def _fail(message: str) -> MalformedInput:
    return MalformedInput(f"bundle: {message}")


@dataclass(frozen=True)
class Selection:
    """What a bundle was asked to hold; every member given must match.

    ``region``: a record whose subject names a region starting with this code
    (the region and everything below it); ``subjects``, ``schemas``: any of
    these; ``signer``: signed by this key ID; ``since``/``until``: logged at
    or after / before (RFC 3339); ``start``/``end``: entry index in [start,
    end).
    """

    region: str | None = None
    subjects: tuple[str, ...] = ()
    schemas: tuple[str, ...] = ()
    signer: str | None = None
    since: str | None = None
    until: str | None = None
    start: int | None = None
    end: int | None = None
    _times: tuple[dt.datetime | None, dt.datetime | None] = field(
        default=(None, None), repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.region is not None and not (
            self.region.isdigit() and self.region.isascii() and len(self.region) <= 13
        ):
            raise _fail(
                f"selection region {self.region[:20]!r}: expected up to 13 digits"
            )
        if self.signer is not None and not _is_hex(self.signer, 64):
            raise _fail("selection signer: expected a key ID (64 hex digits)")
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 0):
                raise _fail(f"selection {name}: expected an entry index")
        times = []
        for name in ("since", "until"):
            value = getattr(self, name)
            try:
                times.append(None if value is None else parse_timestamp(value, name))
            except (ValueError, MalformedInput) as e:
                raise _fail(f"selection {name}: {e}") from e
        object.__setattr__(self, "_times", tuple(times))

    def holds(self, index: int, subject: str, schema: str) -> bool:
        """What an entry's index, subject and schema decide of the selection."""
        if self.start is not None and index < self.start:
            return False
        if self.end is not None and index >= self.end:
            return False
        if self.subjects and subject not in self.subjects:
            return False
        if self.schemas and schema not in self.schemas:
            return False
        if self.region is not None:
            # The region a subject names is a part of it: most subjects are
            # decided without the schema's pattern.
            if self.region not in subject:
                return False
            region = region_of(schema, subject)
            if region is None or not region.startswith(self.region):
                return False
        return True

    def matches(
        self, index: int, record: Record, keyids: Sequence[str], logged_at: str
    ) -> bool:
        """Does the entry at ``index`` (its record, signers, log time) match?"""
        if not self.holds(index, record.subject, record.schema):
            return False
        if self.signer is not None and self.signer not in keyids:
            return False
        since, until = self._times
        if since is not None or until is not None:
            try:
                at = parse_timestamp(logged_at, "logged_at")
            except (ValueError, MalformedInput):
                return False
            if (since is not None and at < since) or (
                until is not None and at >= until
            ):
                return False
        return True

    def to_json(self) -> dict[str, Any]:
        """The members given, as the header keeps them."""
        out: dict[str, Any] = {}
        for name in ("region", "signer", "since", "until", "start", "end"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for name in ("subjects", "schemas"):
            if getattr(self, name):
                out[name] = list(getattr(self, name))
        return out

    @classmethod
    def from_json(cls, raw: object) -> Selection:
        """The selection a header names.

        Raises:
            MalformedInput: not an object of known members of the right types.
        """
        if not isinstance(raw, dict):
            raise _fail("selection: expected an object")
        unknown = set(raw) - {f for f in cls.__dataclass_fields__ if f != "_times"}
        if unknown:
            raise _fail(f"selection: unknown member {sorted(unknown)[0][:40]!r}")
        values: dict[str, Any] = {}
        for name in ("region", "signer", "since", "until"):
            if name in raw:
                if not isinstance(raw[name], str) or len(raw[name]) > 64:
                    raise _fail(f"selection {name}: expected a string")
                values[name] = raw[name]
        for name in ("subjects", "schemas"):
            if name in raw:
                items = raw[name]
                if (
                    not isinstance(items, list)
                    or len(items) > 10_000
                    or not all(isinstance(i, str) and len(i) <= 256 for i in items)
                ):
                    raise _fail(f"selection {name}: expected a list of strings")
                values[name] = tuple(items)
        for name in ("start", "end"):
            if name in raw:
                values[name] = raw[name]
        return cls(**values)


def region_of(schema: str, subject: str) -> str | None:
    """The region code a record's subject names ("" national), or None."""
    try:
        return get_schema(schema).region_of(subject)
    except (UnknownSchema, VerificationError):
        return None


@dataclass(frozen=True)
class Pinned:
    """An earlier checkpoint and the consistency proof from it to the bundle's."""

    checkpoint: bytes
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class Header:
    """A bundle's first line."""

    origin: str
    checkpoint: bytes
    selection: Selection
    pinned: tuple[Pinned, ...] = ()
    created: str = ""

    def to_json(self) -> dict[str, Any]:
        """The header line's object."""
        return {
            "format": FORMAT,
            "origin": self.origin,
            "checkpoint": self.checkpoint.decode("utf-8"),
            "selection": self.selection.to_json(),
            "pinned": [
                {"checkpoint": p.checkpoint.decode("utf-8"), "proof": _b64s(p.proof)}
                for p in self.pinned
            ],
            "created": self.created,
        }


@dataclass(frozen=True)
class BundleEntry:
    """One entry of a bundle: its index, bytes, inclusion proof and role."""

    index: int
    entry: bytes
    proof: tuple[bytes, ...]
    selected: bool
    leaf: bytes = b""  # its RFC 6962 leaf hash, as the reader computed it


def _b64s(hashes: Sequence[bytes]) -> str:
    """A proof as the format keeps it: its hashes end to end, in base64."""
    return base64.b64encode(b"".join(hashes)).decode("ascii")


def _is_hex(value: str, length: int) -> bool:
    return len(value) == length and all(c in "0123456789abcdef" for c in value)


class _Digest:
    """The trailer's digest and counts, as entries are written or read."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.entries = 0
        self.selected = 0

    def add(self, index: int, entry: bytes, selected: bool) -> bytes:
        """Count the entry in; its leaf hash."""
        leaf = hash_leaf(entry)
        self.hash.update(struct.pack(">Q", index) + leaf)
        self.entries += 1
        self.selected += selected
        return leaf

    def trailer(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "selected": self.selected,
            "digest": self.hash.hexdigest(),
        }


_FLUSH = 1 << 18  # bytes of lines compressed at a time
_QUEUED = 8  # chunks waiting for the compressing thread at most


class BundleWriter:
    """Writes a bundle to ``out`` as entries come (nothing held in memory).

    The output's bytes depend only on what is written (gzip's time stamp is 0).
    Lines are compressed and written by a thread of their own, in chunks, while
    the caller reads and proves the next entries (zlib runs without the GIL);
    at most ``_QUEUED`` chunks wait. ``finish`` (or ``close``, to give up) ends
    it; an error writing is raised by the next call.
    """

    def __init__(self, out: IO[bytes], header: Header) -> None:
        self._gz = gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0)
        self._digest = _Digest()
        self._last = -1
        self._pending: list[bytes] = []  # lines not yet handed to the thread
        self._buffered = 0
        self._chunks: queue.Queue[bytes | None] = queue.Queue(_QUEUED)
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._compress, name="bundle-writer", daemon=True
        )
        self._thread.start()
        self._line(header.to_json())

    def _compress(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            if self._error is None:
                try:
                    self._gz.write(chunk)
                except BaseException as e:  # raised by the caller's next call
                    self._error = e

    def _line(self, value: dict[str, Any]) -> None:
        data = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
        if len(data) >= MAX_LINE:
            raise _fail(f"a line of {len(data):,} bytes is over {MAX_LINE:,}")
        self._pending.append(data + b"\n")
        self._flush()

    def add(
        self, index: int, entry: bytes, proof: Sequence[bytes], selected: bool
    ) -> None:
        """The entry at ``index`` (after every one added so far)."""
        if index <= self._last:
            raise ValueError(f"entry {index} after entry {self._last}")
        self._last = index
        self._digest.add(index, entry, selected)
        # The bytes json.dumps(sort_keys=True) writes for this object (base64
        # needs no escaping), without its cost per entry.
        line = b'{"entry":"%s","index":%d,"proof":"%s","selected":%s}\n' % (
            base64.b64encode(entry),
            index,
            base64.b64encode(b"".join(proof)),
            b"true" if selected else b"false",
        )
        if len(line) > MAX_LINE:
            raise _fail(f"a line of {len(line) - 1:,} bytes is over {MAX_LINE:,}")
        self._pending.append(line)
        self._buffered += len(line)
        if self._buffered >= _FLUSH:
            self._flush()

    def _flush(self) -> None:
        if self._error is not None:
            raise self._error
        if self._pending:
            self._chunks.put(b"".join(self._pending))
            self._pending.clear()
            self._buffered = 0

    def close(self) -> None:
        """Stop the compressing thread (what is pending is written first)."""
        if self._thread.is_alive():
            self._chunks.put(None)
            self._thread.join()

    def finish(self) -> dict[str, Any]:
        """Write the trailer and end the stream (``out`` stays open); the trailer.

        Raises:
            OSError: writing failed (here or in the compressing thread).
        """
        trailer = self._digest.trailer()
        self._line({"end": trailer})
        self.close()
        if self._error is not None:
            raise self._error
        self._gz.close()
        return trailer


class _Inflater:
    """One gzip member (RFC 1952) from ``raw``, as lines; nothing may follow it.

    zlib checks the header (reserved flag bits refused), the CRC-32 and the
    length; the caller's bound on a line and the ratio of inflated to read
    bytes keep time and memory bounded for any input.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._buffer = b""
        self._at = 0  # where the next line starts in the buffer
        self._read = 0
        self._inflated = 0

    def _more(self) -> bool:
        """Inflate some more into the buffer; False at the member's end."""
        z = self._zlib
        if z.eof:
            return False
        data = z.unconsumed_tail
        if not data:
            data = self._raw.read(1 << 16)
            self._read += len(data)
            if not data:
                raise _fail("cut short (the gzip stream does not end)")
        try:
            chunk = z.decompress(data, 1 << 16)
        except zlib.error as e:
            raise _fail(f"not a whole gzip stream ({e})") from e
        self._inflated += len(chunk)
        if self._inflated > MAX_RATIO * max(1, self._read) + MAX_LINE:
            raise _fail(
                f"inflates {self._inflated / max(1, self._read):,.0f} times its size: "
                "a decompression bomb, not a bundle"
            )
        self._buffer = self._buffer[self._at :] + chunk
        self._at = 0
        return True

    def readline(self) -> bytes:
        """The next line with its newline; b"" at the end of the stream."""
        while True:
            at = self._at
            cut = self._buffer.find(b"\n", at, at + MAX_LINE + 1)
            if cut >= 0:
                self._at = cut + 1
                return self._buffer[at : cut + 1]
            if len(self._buffer) - at > MAX_LINE:
                raise _fail(f"a line longer than {MAX_LINE:,} bytes")
            if not self._more():
                if len(self._buffer) > self._at:
                    raise _fail("cut short (the last line is not whole)")
                return b""

    def finish(self) -> None:
        """Refuse anything after the stream's last line: more lines, more bytes."""
        if self.readline():
            raise _fail("data after the trailer")
        if self._zlib.unused_data or self._raw.read(1):
            raise _fail("data after the gzip stream")


class BundleReader:
    """Reads a bundle from ``raw`` (a binary file), checking its form as it goes.

    ``header`` is read at once; ``entries()`` yields the entries, then checks the
    trailer. Every fault of form raises ``MalformedInput`` (a line too long, a
    member missing or unknown, an index out of order, a stream cut short, or
    with anything after it, or inflating like a decompression bomb).
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self._lines = _Inflater(raw)
        self.header = _header(self._json(self._lines.readline(), "header"))
        self.trailer: dict[str, Any] | None = None

    @staticmethod
    def _json(line: bytes, what: str) -> dict[str, Any]:
        if not line:
            raise _fail(f"cut short (no {what})")
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as e:
            raise _fail(f"{what} is not JSON") from e
        if not isinstance(value, dict):
            raise _fail(f"{what} is not a JSON object")
        return value

    def entries(self, size: int) -> Iterator[BundleEntry]:
        """Every entry, in order (indices below ``size``); then the trailer."""
        digest = _Digest()
        last = -1
        while True:
            value = self._json(self._lines.readline(), "trailer")
            if set(value) == {"end"}:
                break
            entry = _entry(value, size)
            if entry.index <= last:
                raise _fail(
                    f"entry {entry.index} comes after entry {last} (entries are in "
                    "increasing order, each once)"
                )
            last = entry.index
            leaf = digest.add(entry.index, entry.entry, entry.selected)
            yield dataclasses.replace(entry, leaf=leaf)
        trailer = value["end"]
        expected = digest.trailer()
        if (
            not isinstance(trailer, dict)
            or trailer.keys() != expected.keys()
            or any(type(trailer[k]) is not type(v) for k, v in expected.items())
            or trailer != expected
        ):
            raise _fail(
                "the trailer does not match the entries (entries dropped, repeated "
                "or changed)"
            )
        self._lines.finish()
        self.trailer = trailer


def _header(value: dict[str, Any]) -> Header:
    if value.get("format") != FORMAT:
        raise _fail(f"not a {FORMAT} file (format {str(value.get('format'))[:40]!r})")
    known = {"format", "origin", "checkpoint", "selection", "pinned", "created"}
    if set(value) != known:
        odd = sorted(set(value) ^ known)[0]
        raise _fail(f"header member {odd[:40]!r} missing or unknown")
    origin, note, created = value["origin"], value["checkpoint"], value["created"]
    if not isinstance(origin, str) or not isinstance(created, str) or len(created) > 64:
        raise _fail("header origin and created: expected strings")
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise _fail("header checkpoint: expected a signed note")
    pinned = value["pinned"]
    if not isinstance(pinned, list) or len(pinned) > MAX_PINNED:
        raise _fail(f"header pinned: expected a list of at most {MAX_PINNED}")
    pins = []
    for item in pinned:
        if not isinstance(item, dict) or set(item) != {"checkpoint", "proof"}:
            raise _fail("a pinned checkpoint: expected checkpoint and proof")
        if (
            not isinstance(item["checkpoint"], str)
            or len(item["checkpoint"]) > MAX_NOTE
        ):
            raise _fail("a pinned checkpoint: expected a signed note")
        pins.append(
            Pinned(
                _utf8(item["checkpoint"], "a pinned checkpoint"),
                _hashes(item["proof"], "pinned"),
            )
        )
    return Header(
        origin,
        _utf8(note, "header checkpoint"),
        Selection.from_json(value["selection"]),
        tuple(pins),
        created,
    )


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise _fail(f"{what}: not UTF-8 text (a lone surrogate)") from e


def _hashes(raw: object, what: str) -> tuple[bytes, ...]:
    """A proof's hashes: one base64 string of 32-byte hashes, end to end."""
    if not isinstance(raw, str) or len(raw) > 4 * MAX_PROOF_HASHES * 32 // 3 + 4:
        raise _fail(f"{what} proof: expected at most {MAX_PROOF_HASHES} hashes")
    data = b64decode_strict(raw, f"bundle: {what} proof") if raw else b""
    if len(data) % 32:
        raise _fail(f"{what} proof: {len(data)} bytes is not a whole number of hashes")
    return tuple(data[i : i + 32] for i in range(0, len(data), 32))


def _entry(value: dict[str, Any], size: int) -> BundleEntry:
    if set(value) != {"index", "entry", "proof", "selected"}:
        raise _fail("an entry line: expected index, entry, proof and selected")
    index, data, selected = value["index"], value["entry"], value["selected"]
    if type(index) is not int or not 0 <= index < size:
        raise _fail(
            f"entry index {str(index)[:24]}: not below the checkpoint's {size:,}"
        )
    if type(selected) is not bool:
        raise _fail(f"entry {index}: selected is true or false")
    if not isinstance(data, str) or len(data) > MAX_LINE:
        raise _fail(f"entry {index}: expected base64 bytes")
    entry = b64decode_strict(data, f"bundle: entry {index}")
    return BundleEntry(
        index, entry, _hashes(value["proof"], f"entry {index}"), selected
    )
