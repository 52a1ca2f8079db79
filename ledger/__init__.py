"""The log: RFC 6962 Merkle tree, tlog-tiles storage, group-commit sequencer.

Public surface: ``Ledger`` (append, receipts, proofs), ``AppendReceipt`` and the
error types. Everything else is internal and may change.
"""

from __future__ import annotations

from ledger.errors import (
    EntryRejected,
    EntryTooLarge,
    IntegrityFailure,
    LedgerError,
    OutOfRange,
    Pushback,
    SignerUnavailable,
    StorageUnavailable,
)
from ledger.ledger import AppendReceipt, Ledger

__all__ = [
    "AppendReceipt",
    "EntryRejected",
    "EntryTooLarge",
    "IntegrityFailure",
    "Ledger",
    "LedgerError",
    "OutOfRange",
    "Pushback",
    "SignerUnavailable",
    "StorageUnavailable",
]
