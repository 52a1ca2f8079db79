"""The writer's seal: what the record index held when the writer last committed.

The record index (``records``: subject chains and payload dedupe) is derived
from the entries and kept in the database for speed; the writer decides every
append with it. A database administrator can edit or delete its rows, so the
writer binds the whole table to its signed head with a seal: an HMAC-SHA256,
under a key only the holder of the log's signing key can derive, of the origin,
the head's size and root, and a running SHA-256 over every index row in index
order. Start-up recomputes the running hash from the table and accepts it only
if the seal matches; anything else sends the writer to the full check, which
names the row.

The seal key is derived from a signature of the log key over a fixed,
never-published message (Ed25519 signatures are deterministic), so a PKCS#11
token works as well as a key file and the key never leaves it. The message is
two lines, the second not a number, so it can never read as a checkpoint.

Not here: the seal proves the table is the one the writer wrote, not that the
writer wrote it correctly (``saksi check`` and the observers' audit do that).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Iterable
from typing import Any

from ledger.errors import IntegrityFailure
from ledger.storage.rows import RecordRow
from verifier.note import NoteSigner

__all__ = ["RecordsDigest", "derive_seal_key", "seal_head"]

_KEY_MESSAGE = "saksi/seal-key/v1\n{origin} has no size here\n"
_ROW = struct.Struct(">qq32sHH")


def derive_seal_key(signer: NoteSigner, origin: str) -> bytes:
    """The 32-byte seal key of the log ``origin``, from its signing key.

    Raises:
        IntegrityFailure: the signer is not deterministic (two signatures of
            the same message differ), so no key can be derived from it.
    """
    message = _KEY_MESSAGE.format(origin=origin).encode("utf-8")
    first, second = signer.sign(message), signer.sign(message)
    if not hmac.compare_digest(first, second):
        raise IntegrityFailure(
            "the log signer is not deterministic: the writer cannot seal its index"
        )
    return hashlib.sha256(b"saksi seal key\x00" + first).digest()


class RecordsDigest:
    """A running SHA-256 over record index rows, fed in index order."""

    __slots__ = ("_hash", "count")

    def __init__(self) -> None:
        self._hash: Any = hashlib.sha256(b"saksi records/v1\x00")
        self.count = 0

    def update(self, rows: Iterable[RecordRow]) -> None:
        """Feed the next rows (their indices must follow on)."""
        for row in rows:
            self.feed(
                row.index, row.subject, row.revision, row.schema, row.payload_hash
            )

    def feed(
        self, index: int, subject: str, revision: int, schema: str, payload: bytes
    ) -> None:
        """Feed one row's fields.

        Raises:
            IntegrityFailure: the row is not at the next index, or a field
                cannot be a row the writer wrote.
        """
        if index != self.count:
            raise IntegrityFailure(
                f"record index: expected the row of entry {self.count}, "
                f"found entry {index}"
            )
        subject_bytes, schema_bytes = subject.encode(), schema.encode()
        try:
            head = _ROW.pack(
                index, revision, payload, len(subject_bytes), len(schema_bytes)
            )
        except struct.error as e:
            raise IntegrityFailure(f"record index: row {index} is malformed") from e
        if len(payload) != 32:
            raise IntegrityFailure(f"record index: row {index} has a bad payload hash")
        self._hash.update(head + subject_bytes + schema_bytes)
        self.count += 1

    def feed_many(self, rows: Iterable[tuple[int, str, int, str, bytes]]) -> None:
        """``feed`` for many rows as tuples (what start-up streams), in one loop.

        Raises:
            IntegrityFailure: as ``feed``.
        """
        update, pack, count = self._hash.update, _ROW.pack, self.count
        try:
            for index, subject, revision, schema, payload in rows:
                if index != count or len(payload) != 32:
                    self.count = count
                    self.feed(index, subject, revision, schema, payload)  # names it
                subject_bytes, schema_bytes = subject.encode(), schema.encode()
                update(
                    pack(
                        index, revision, payload, len(subject_bytes), len(schema_bytes)
                    )
                    + subject_bytes
                    + schema_bytes
                )
                count += 1
        except struct.error as e:
            raise IntegrityFailure(f"record index: row {count} is malformed") from e
        finally:
            self.count = count

    def copy(self) -> RecordsDigest:
        """An independent copy (a batch feeds the copy until it commits)."""
        other = RecordsDigest.__new__(RecordsDigest)
        other._hash = self._hash.copy()
        other.count = self.count
        return other

    def digest(self) -> bytes:
        """The running hash of every row fed so far."""
        return bytes(self._hash.digest())


def seal_head(key: bytes, origin: str, size: int, root: bytes, records: bytes) -> bytes:
    """The seal of a head: HMAC-SHA256 over the origin, size, root and index hash."""
    message = b"saksi seal/v1\n%s\n%d\n%s\n%s\n" % (
        origin.encode("utf-8"),
        size,
        root.hex().encode(),
        records.hex().encode(),
    )
    return hmac.new(key, message, hashlib.sha256).digest()
