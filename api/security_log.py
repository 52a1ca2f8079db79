"""The security event log: one JSON line for every write and every refusal.

Fields (documented in the README, "The security event log"):

* ``time`` (RFC 3339 UTC, milliseconds), ``log`` (always ``security``),
  ``event`` (``append``), ``request_id`` (as in the access log and the
  ``X-Request-Id`` header), ``route`` (the route's template), ``client`` (the
  peer's address, as the socket says it);
* ``result``: ``accepted``, ``duplicate`` or ``refused``; ``status`` (the HTTP
  status of this record's answer); ``cause`` (the problem type, refusals only);
* who: ``keyids`` and ``roles`` of the signers, only for keys the registry
  knows (a signature by an unknown key names nobody);
* what, once the record has passed its schema (so its subject is spelled as
  the schema requires): ``schema``, ``subject``, ``revision`` and
  ``payload_sha256``; and ``index``, the entry's position, for accepted and
  duplicate records.

Never: key material, a signature, a passphrase, a record body or any text a
client chose that no schema constrains.

Lines are written by a thread of their own, in batches every 50 ms: a request
only queues its event (a file write can wait on the file system's journal
while the database commits, and a request must not). The queue is bounded; if
the disk cannot keep up, events beyond it are counted as ``dropped`` (a
metric), never waited for.
A failed write never fails a request; ``close`` writes what is queued.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["SecurityLog"]

MAX_QUEUED = 100_000
# The thread writes what is queued every INTERVAL seconds, or as soon as BATCH
# events wait: waking it for every event would cost the requests more (a thread
# hand-off each) than the writing does.
INTERVAL = 0.05
BATCH = 512


class SecurityLog:
    """Writes security events as JSON lines to ``stream``, from its own thread."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.time) -> None:
        self.stream = stream
        self.clock = clock
        self.dropped = 0
        self._queued = 0  # events queued since start
        self._written = 0  # of those, written (or failed to write) by the thread
        self._queue: deque[tuple[float, dict[str, Any]]] = deque()
        self._wake = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(
            target=self._run, name="security-log", daemon=True
        )
        self._thread.start()

    def write(self, fields: dict[str, Any]) -> None:
        """Queue one event, stamped with the time now."""
        with self._wake:
            if len(self._queue) >= MAX_QUEUED:
                self.dropped += 1
                return
            self._queue.append((self.clock(), fields))
            self._queued += 1
            if len(self._queue) >= BATCH:
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                if not self._closing:
                    self._wake.wait(INTERVAL)
                events = list(self._queue)
                self._queue.clear()
                closing = self._closing
            if events:
                self._emit(events)
                with self._wake:
                    self._written += len(events)
                    self._wake.notify_all()
            if closing and not events:
                return

    def _emit(self, events: list[tuple[float, dict[str, Any]]]) -> None:
        # ``{"time":...,"log":"security",`` then the event's own members.
        text = "".join(
            '{"time":"'
            + dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="milliseconds")
            + '","log":"security",'
            + json.dumps(fields, separators=(",", ":"))[1:]
            + "\n"
            for at, fields in events
            if fields
        )
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a full disk never fails a request
            pass

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every event queued so far is written."""
        deadline = time.monotonic() + timeout
        with self._wake:
            target = self._queued
            while self._written < target and time.monotonic() < deadline:
                self._wake.wait(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        """Write everything queued, then stop the thread."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join(timeout=10)
