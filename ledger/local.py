"""A log opened in this process, behind the same interface as the HTTP client.

``saksi keys grant --db URL`` and the other writing commands work on a log that
is not being served by opening it here: the record goes through the same checks
and the same writer as a request would, and the receipt is checked exactly as a
remote client checks one (``SaksiClient.verify_receipt``), against the log key the
caller pinned.
"""

from __future__ import annotations

from typing import Any

from ledger.errors import LedgerError
from ledger.read.registry import keys_listing
from ledger.recordlog import RecordLog
from results import ResultsIndex, ResultsReader
from saksi_client import Receipt, Refused, SaksiClient, WrongLog
from verifier.checkpoint import Checkpoint, verify_checkpoint
from verifier.errors import VerificationError
from verifier.note import VerifierKey

__all__ = ["LocalLog"]


def _refused(error: Exception) -> Refused:
    cause = getattr(error, "cause", "internal-error")
    return Refused(0, {"type": f"/problems/{cause}", "detail": str(error)[:1000]})


class LocalLog(SaksiClient):
    """``SaksiClient`` over a ``RecordLog`` of this process (no HTTP)."""

    def __init__(self, service: RecordLog, log_key: VerifierKey) -> None:
        super().__init__("local:", log_key, retries=0)
        self.service = service
        self._results_index: ResultsIndex | None = None

    def results(self) -> ResultsReader:
        """The results as the route reads them, on the log opened here."""
        if self._results_index is None:
            self._results_index = ResultsIndex(self.service.entries)
        log = self.service
        return ResultsReader(log.entries, log.registry.election(), self._results_index)

    def check_identity(self) -> Checkpoint:
        """The log opened here is the pinned one: its checkpoint, verified.

        Raises:
            WrongLog: its checkpoint is not signed by the pinned key and origin.
        """
        if self._identity is None:
            try:
                self._identity, _ = verify_checkpoint(
                    self.service.reader.checkpoint(), self.log_key, self.origin
                )
            except VerificationError as e:
                raise WrongLog(
                    f"the log opened here is not signed by the pinned key "
                    f"{self.log_key} ({e})"
                ) from e
        return self._identity

    def head(self, subject: str) -> tuple[int, str] | None:
        """The subject's latest (revision, payload hash), or None."""
        return self.service.entries.head_of(subject)

    def keys(self, size: int | None = None) -> dict[str, Any]:
        """The key registry as of ``size`` (default: now).

        Raises:
            Refused: a size beyond the log.
        """
        try:
            tree_size = self.service.reader.size if size is None else size
            return keys_listing(self.service.registry.registry_at(tree_size), tree_size)
        except LedgerError as e:
            raise _refused(e) from e

    def submit(self, envelope: dict[str, Any]) -> Receipt:
        """Check, append and commit ``envelope``; verify its receipt.

        Raises:
            Refused: the log refused it (``cause`` says why).
            VerificationError: the receipt does not prove what was submitted.
        """
        self.check_identity()
        try:
            submission = self.service.writer.prepare(envelope)
            receipt = self.service.ledger.submit(submission)
        except (VerificationError, LedgerError) as e:
            raise _refused(e) from e
        return self.verify_receipt(receipt.to_json(), submission.record.payload)
