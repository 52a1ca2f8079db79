"""What the writer reports while it works, for whoever watches it (the metrics).

The ledger knows nothing of Prometheus: the sequencer calls the methods of a
``WriterEvents`` (by default one that does nothing), and the service plugs in
one that records them (``api.metrics``). A report never blocks or fails the
writer.
"""

from __future__ import annotations

__all__ = ["WriterEvents"]


class WriterEvents:
    """The writer's reports; this base class ignores them all."""

    def committed(self, entries: int, seconds: float) -> None:
        """A batch of ``entries`` new entries committed in ``seconds``."""

    def failed(self, cause: str) -> None:
        """A batch or a refresh was not committed: ``cause`` is the error's cause.

        ``storage-unavailable`` (the database), ``signer-unavailable`` (the
        log key) or ``integrity-failure`` (writes are stopped).
        """
