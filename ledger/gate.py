"""The gate: what the writer asks, in order, of each item before it is logged.

The sequencer is one loop for every kind of log: it takes a batch of items of
one type, asks its gate to decide each (accept these entry bytes, answer with
an entry already logged, or refuse), commits what was accepted, and tells the
gate whether the commit held. ``EntryGate`` is the gate of a plain log of entry
bytes (identical bytes get the original entry); ``ledger.admission.RecordGate``
is the gate of a log of signed records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from ledger.errors import EntryTooLarge, IntegrityFailure
from ledger.read.tree import Prover
from ledger.storage.base import LogStore
from ledger.storage.rows import RecordRow
from verifier.rfc6962 import hash_leaf
from verifier.tile_format import MAX_ENTRY_SIZE

__all__ = [
    "Accept",
    "Decision",
    "Entry",
    "EntryGate",
    "Existing",
    "Gate",
    "Refuse",
    "check_entry_size",
    "too_large",
]

T_contra = TypeVar("T_contra", contravariant=True)


@dataclass(slots=True)
class Accept:
    """The gate accepts an item: append these entry bytes.

    ``leaf_hash`` is the entry's, where the gate has it already (else the
    writer hashes the entry).
    """

    entry: bytes
    leaf_hash: bytes | None = None


@dataclass(slots=True)
class Existing:
    """The item is already logged at ``index``: answer with that entry.

    ``holds(stored bytes)`` says whether the stored entry is the item's: the
    writer asks it of an older entry (after proving it) before it answers with
    it, so an edited index can never answer a write with another entry.
    """

    index: int
    holds: Callable[[bytes], bool] | None = None


@dataclass(slots=True)
class Refuse:
    """The item is refused; its caller gets ``error`` and nothing is written."""

    error: Exception


Decision = Accept | Existing | Refuse


class Gate(Protocol[T_contra]):
    """Decides, in the writer thread and in order, what each submitted item becomes.

    ``admit`` sees a whole batch; items it accepts get consecutive indices from
    ``first_index`` in order. ``rows`` are written in the batch's transaction;
    ``finish`` says whether that transaction committed.
    """

    def admit(
        self, items: Sequence[T_contra], first_index: int, now_ms: int
    ) -> list[Decision]:
        """One decision per item."""
        ...

    def rows(self) -> Sequence[RecordRow]:
        """Index rows for the accepted items of the last ``admit``."""
        ...

    def finish(self, committed: bool) -> None:
        """Keep (committed) or undo the effects of the last ``admit``."""
        ...

    def start(self, prove: Prover) -> None:
        """Load what the gate decides with, from entries proven by ``prove``."""
        ...


def too_large(data: bytes) -> EntryTooLarge | None:
    """The refusal of an entry a log cannot hold, or None."""
    if len(data) <= MAX_ENTRY_SIZE:
        return None
    return EntryTooLarge(
        f"entry of {len(data)} bytes exceeds the {MAX_ENTRY_SIZE}-byte limit"
    )


def check_entry_size(entries: Sequence[bytes]) -> None:
    """Refuse, before anything is queued, an entry a log cannot hold.

    Raises:
        EntryTooLarge: an entry exceeds 65,535 bytes.
    """
    for data in entries:
        error = too_large(data)
        if error is not None:
            raise error


class Entry:
    """One plain entry and its leaf hash, computed here and nowhere else.

    Made by the caller's thread (``Ledger.append``), so that the writer thread
    does not hash what it is handed; the hash cannot be given from outside.
    """

    __slots__ = ("data", "leaf_hash")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.leaf_hash = hash_leaf(data)


class EntryGate:
    """The gate of a log of plain entries: any bytes, identical bytes logged once."""

    def __init__(self, store: LogStore) -> None:
        self._store = store

    def admit(
        self, items: Sequence[Entry], first_index: int, now_ms: int
    ) -> list[Decision]:
        """Accept each new entry; a repeat (stored, or earlier in the batch) exists.

        An item that is not an ``Entry``, or is too large, is refused
        (``append`` refuses them before they are queued; ``submit`` leaves it
        to here).

        Raises:
            IntegrityFailure: the leaf-hash index names an entry beyond the tree.
        """
        decisions: list[Decision | None] = []
        wanted: list[bytes] = []
        for entry in items:
            item: object = entry  # typed; a caller may still pass anything
            error = (
                too_large(entry.data)
                if isinstance(item, Entry)
                else EntryTooLarge("a plain log takes Entry items")
            )
            if error is not None:
                decisions.append(Refuse(error))
            else:
                decisions.append(None)
                wanted.append(entry.leaf_hash)
        assigned = self._store.find_leaf_hashes(wanted)
        for stored in assigned.values():
            if stored >= first_index:
                raise IntegrityFailure(
                    f"entry {stored} is stored beyond the signed size"
                )
        out: list[Decision] = []
        for entry, decided in zip(items, decisions, strict=True):
            if decided is not None:
                out.append(decided)
                continue
            known = assigned.get(entry.leaf_hash)
            if known is not None:
                out.append(Existing(known, entry.data.__eq__))
                continue
            assigned[entry.leaf_hash] = first_index
            first_index += 1
            out.append(Accept(entry.data, entry.leaf_hash))
        return out

    def rows(self) -> Sequence[RecordRow]:
        """Plain entries have no record index rows."""
        return ()

    def finish(self, committed: bool) -> None:
        """Nothing to keep or undo: the gate holds no state."""

    def start(self, prove: Prover) -> None:
        """Nothing to load."""
