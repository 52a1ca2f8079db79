"""The write interface of a record log: check an envelope, submit it.

``RecordWriter`` is all the write routes and the local writers need: it checks
an envelope against the log's key registry and clock in the caller's thread
(``prepare``, steps 1 to 6 of ``ledger.admission``) and hands the result to the
sequencer (``submit``), whose gate decides the rest in order. Reads are not
here: see ``ledger.read``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol

from ledger.admission import DEFAULT_SKEW, RecordGate, Submission, prepare_submission
from ledger.ledger import AppendReceipt, Ledger
from ledger.telemetry import WriterEvents
from verifier.registry import KeyRegistry
from verifier.rules.state import ElectionState

__all__ = ["RecordWriter", "Writer", "WriterGate"]


class WriterGate(Protocol):
    """What the API reads of a writer's gate: the registries as they stand."""

    @property
    def registry(self) -> KeyRegistry:
        """The key registry."""
        ...

    @property
    def election(self) -> ElectionState:
        """The region registry and candidate lists."""
        ...


class Writer(Protocol):
    """A log's write interface as the HTTP API uses it.

    ``RecordWriter`` (one process writes) and ``ledger.cluster.ClusterWriter``
    (a cluster member, whose sequencer may run elsewhere) are both.
    """

    @property
    def gate(self) -> WriterGate:
        """The registries the writer checks against."""
        ...

    def observe(self, events: WriterEvents) -> None:
        """Report every commit and failure to ``events``."""
        ...

    def prepare(self, envelope: bytes | dict[str, Any]) -> Submission:
        """Check an envelope as far as it can be without the log's position."""
        ...

    async def submit(self, submission: Submission) -> AppendReceipt:
        """Append a checked submission; its receipt once it is durable."""
        ...


class RecordWriter:
    """Checks and submits signed records to one running record log."""

    def __init__(
        self,
        ledger: Ledger[Submission],
        gate: RecordGate,
        clock: Callable[[], float],
        *,
        skew: dt.timedelta = DEFAULT_SKEW,
        max_age: dt.timedelta | None = None,
    ) -> None:
        self.ledger = ledger
        self.gate = gate
        self.clock = clock
        # The issued_at window: how far ahead of this clock, how far behind.
        self.skew = skew
        self.max_age = max_age

    def observe(self, events: WriterEvents) -> None:
        """Report every commit and failure of the writer to ``events``."""
        self.ledger.observe(events)

    def prepare(self, envelope: bytes | dict[str, Any]) -> Submission:
        """Check an envelope (``prepare_submission`` with this log's keys and clock).

        Raises:
            VerificationError, EntryRejected: see ``prepare_submission``.
        """
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        return prepare_submission(
            envelope, self.gate.public_key, now, self.skew, self.max_age
        )

    async def submit(self, submission: Submission) -> AppendReceipt:
        """Append one checked submission; the receipt once it is durable.

        Raises:
            Whatever the gate refuses it with, or Pushback / StorageUnavailable.
        """
        return await self.ledger.submit_async(submission)

    def submit_wait(
        self, submission: Submission, timeout: float | None = None
    ) -> AppendReceipt:
        """``submit`` for callers outside an event loop (blocks until durable).

        Raises:
            Whatever the gate refuses it with, or Pushback / StorageUnavailable.
        """
        return self.ledger.submit(submission, timeout)
