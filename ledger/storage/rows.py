"""The rows the log's storage reads and writes (no SQL here)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "EntryRow",
    "Head",
    "LogMeta",
    "RecordRow",
    "StoredCheckpoint",
    "leaf_key",
]


@dataclass(frozen=True, slots=True)
class LogMeta:
    """What a log is: its origin line and its checkpoint verifier key string."""

    origin: str
    verifier_key: str


@dataclass(frozen=True, slots=True)
class Head:
    """The current signed tree head and when it was (re)signed, in Unix ms.

    ``seal`` is the writer's seal of the record index at this head (see
    ``ledger.seal``), None where none was written yet.
    """

    size: int
    root: bytes
    note: bytes
    made_at_ms: int
    seal: bytes | None = None


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """The first checkpoint signed at a size."""

    size: int
    root: bytes
    note: bytes
    made_at_ms: int


@dataclass(frozen=True, slots=True)
class EntryRow:
    """One stored entry; ``leaf_key`` is as stored (None when not read)."""

    index: int
    leaf_hash: bytes
    data: bytes
    leaf_key: int | None = None


@dataclass(frozen=True, slots=True)
class RecordRow:
    """The record index row of one logged record."""

    index: int
    subject: str
    revision: int
    schema: str
    payload_hash: bytes


def leaf_key(leaf_hash: bytes) -> int:
    """The indexed lookup key of a leaf hash: its first 8 bytes, signed big-endian."""
    return int.from_bytes(leaf_hash[:8], "big", signed=True)
