"""The JSON shapes of the read answers that are built from log objects.

Frozen by ``tests/golden``: a change here is a wire-format change.
"""

from __future__ import annotations

from typing import Any

from ledger.read.entries import EntryView
from verifier.dsse import envelope_to_json

__all__ = ["entry_json"]


def entry_json(view: EntryView) -> dict[str, Any]:
    """One logged entry as ``/v1/entries/N`` shows it."""
    record = view.record
    return {
        "index": view.index,
        "leaf_hash": view.leaf_hash.hex(),
        "logged_at": view.entry.logged_at,
        "envelope": envelope_to_json(view.entry.envelope),
        "record": {
            "schema": record.schema,
            "subject": record.subject,
            "revision": record.revision,
            "prev": record.prev,
            "issued_at": record.issued_at,
            "payload_hash": record.payload_hash,
        },
        "signers": [s.keyid for s in view.entry.envelope.signatures],
    }
