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
    "EntryGate",
    "Existing",
    "Gate",
    "Refuse",
    "check_entry_size",
]

T_contra = TypeVar("T_contra", contravariant=True)


@dataclass(frozen=True, slots=True)
class Accept:
    """The gate accepts an item: append these entry bytes."""

    entry: bytes


@dataclass(frozen=True, slots=True)
class Existing:
    """The item is already logged at ``index``: answer with that entry.

    ``holds(stored bytes)`` says whether the stored entry is the item's: the
    writer asks it of an older entry (after proving it) before it answers with
    it, so an edited index can never answer a write with another entry.
    """

    index: int
    holds: Callable[[bytes], bool] | None = None


@dataclass(frozen=True, slots=True)
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


def check_entry_size(entries: Sequence[bytes]) -> None:
    """Refuse, before anything is queued, an entry a log cannot hold.

    Raises:
        EntryTooLarge: an entry exceeds 65,535 bytes.
    """
    for data in entries:
        if len(data) > MAX_ENTRY_SIZE:
            raise EntryTooLarge(
                f"entry of {len(data)} bytes exceeds the {MAX_ENTRY_SIZE}-byte limit"
            )


class EntryGate:
    """The gate of a log of plain entries: any bytes, identical bytes logged once."""

    def __init__(self, store: LogStore) -> None:
        self._store = store

    def admit(
        self, items: Sequence[bytes], first_index: int, now_ms: int
    ) -> list[Decision]:
        """Accept each new entry; a repeat (stored, or earlier in the batch) exists.

        An item that is not bytes, or is too large, is refused (``append``
        refuses them before they are queued; ``submit`` leaves it to here).

        Raises:
            IntegrityFailure: the leaf-hash index names an entry beyond the tree.
        """
        refused: dict[int, Refuse] = {}
        for slot, data in enumerate(items):
            item: object = data  # typed bytes; a caller may still pass anything
            if not isinstance(item, bytes):
                refused[slot] = Refuse(EntryTooLarge("an entry must be bytes"))
            elif len(data) > MAX_ENTRY_SIZE:
                refused[slot] = Refuse(
                    EntryTooLarge(
                        f"entry of {len(data)} bytes exceeds the "
                        f"{MAX_ENTRY_SIZE}-byte limit"
                    )
                )
        hashes = [
            b"" if slot in refused else hash_leaf(data)
            for slot, data in enumerate(items)
        ]
        found = self._store.find_leaf_hashes([h for h in hashes if h])
        for stored in found.values():
            if stored >= first_index:
                raise IntegrityFailure(
                    f"entry {stored} is stored beyond the signed size"
                )
        assigned = dict(found)
        decisions: list[Decision] = []
        for slot, (data, leaf_hash) in enumerate(zip(items, hashes, strict=True)):
            if slot in refused:
                decisions.append(refused[slot])
                continue
            known = assigned.get(leaf_hash)
            if known is not None:
                decisions.append(Existing(known, data.__eq__))
                continue
            assigned[leaf_hash] = first_index
            first_index += 1
            decisions.append(Accept(data))
        return decisions

    def rows(self) -> Sequence[RecordRow]:
        """Plain entries have no record index rows."""
        return ()

    def finish(self, committed: bool) -> None:
        """Nothing to keep or undo: the gate holds no state."""

    def start(self, prove: Prover) -> None:
        """Nothing to load."""
