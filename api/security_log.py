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
client chose that no schema constrains. A failed write to the stream never
fails a request.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["SecurityLog"]


class SecurityLog:
    """Writes security events as JSON lines to ``stream``."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.time) -> None:
        self.stream = stream
        self.clock = clock
        self._lock = threading.Lock()

    def write(self, fields: dict[str, Any]) -> None:
        """One event line, stamped with the time."""
        line = {
            "time": dt.datetime.fromtimestamp(self.clock(), dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "log": "security",
            **fields,
        }
        text = json.dumps(line, separators=(",", ":")) + "\n"
        try:
            with self._lock:
                self.stream.write(text)
                self.stream.flush()
        except (OSError, ValueError):  # a closed or full log never fails a request
            pass
