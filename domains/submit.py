"""Sign and send in batches the records a log does not hold yet.

What an election application does with a set of (subject, body) records: the
subjects already in the log are skipped (so an interrupted run can simply be
run again), the rest are signed and sent ``BATCH`` at a time, and every
receipt is verified by the client against the pinned log key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from keys.signer import Ed25519Signer
from saksi_client import Receipt, Refused, SaksiClient

__all__ = ["BATCH", "Head", "submit_new"]

BATCH = 200

# How a subject's head is read: ``SaksiClient.head``, or a caller's wrapper of it.
Head = Callable[[str], tuple[int, str] | None]


def submit_new(
    client: SaksiClient,
    signer: Ed25519Signer,
    schema: str,
    records: Iterable[tuple[str, dict[str, Any]]],
    progress: Callable[[int, int], None],
    head: Head | None = None,
) -> tuple[list[tuple[str, Receipt]], list[tuple[str, Refused]], list[str]]:
    """Sign and submit each (subject, body) not yet in the log, in batches.

    ``head`` reads a subject's head (default: ``client.head``). Returns the
    receipts (all verified), the refusals, and the subjects skipped because
    they are already logged.

    Raises:
        TransportError, VerificationError: see ``SaksiClient.submit_many``.
    """
    head_of = client.head if head is None else head
    pending: list[tuple[str, dict[str, Any]]] = []
    skipped: list[str] = []
    items = list(records)
    for subject, body in items:
        if head_of(subject) is None:
            pending.append((subject, body))
        else:
            skipped.append(subject)
    now = dt.datetime.now(dt.UTC)
    receipts: list[tuple[str, Receipt]] = []
    refused: list[tuple[str, Refused]] = []
    progress(0, len(pending))
    for start in range(0, len(pending), BATCH):
        chunk = pending[start : start + BATCH]
        envelopes = [
            client.sign(client.record(schema, subject, body, now=now), [signer])
            for subject, body in chunk
        ]
        for (subject, _), outcome in zip(
            chunk, client.submit_many(envelopes), strict=True
        ):
            if isinstance(outcome, Refused):
                refused.append((subject, outcome))
            else:
                receipts.append((subject, outcome))
        progress(min(start + BATCH, len(pending)), len(pending))
    return receipts, refused, skipped
