"""The canary: a record every few seconds, timed to a witnessed checkpoint.

With a key granted the ``canary`` role, the monitor signs a
``monitor.canary/v1`` record (``verifier.canary``) every ``interval`` seconds
and submits it through the Python client (which checks the log's identity and
verifies the receipt). Then it reads the log's checkpoint until one that
satisfies the witness policy covers the canary's entry: the time from
submission to that is the merge delay, a histogram in the monitor's metrics.
A canary refused, lost or not witnessed within ``timeout`` is a failure.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

from saksi_client import Refused, SaksiClient, TransportError
from verifier.canary import CANARY, canary_subject
from verifier.dsse import EnvelopeSigner
from verifier.errors import VerificationError
from verifier.record import format_timestamp
from verifier.tile_client import FetchError, TileLog
from verifier.trusted_log import TrustedLog

__all__ = ["Canary"]

log = logging.getLogger("saksi.monitor.canary")


class Canary:
    """Writes canaries and measures their merge delay until ``stop``."""

    def __init__(
        self,
        client: SaksiClient,
        signer: EnvelopeSigner,
        keyid: str,
        tiles: TileLog,
        trusted: TrustedLog,
        *,
        interval: float,
        observe: Callable[[float], None],
        failed: Callable[[str], None],
        timeout: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.signer = signer
        self.keyid = keyid
        self.tiles = tiles
        self.trusted = trusted
        self.interval = interval
        self.observe = observe
        self.failed = failed
        self.timeout = timeout
        self.clock = clock
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="canary", daemon=True)

    def start(self) -> None:
        """Write canaries in a thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the canary in flight."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.timeout + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.once()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def once(self) -> float | None:
        """Write one canary; its merge delay in seconds, or None if it failed."""
        now = self.clock()
        sequence = int(now * 1000)
        payload = SaksiClient.record(
            CANARY.name,
            canary_subject(self.keyid, sequence),
            {
                "sequence": sequence,
                "sent_at": format_timestamp(dt.datetime.fromtimestamp(now, dt.UTC)),
            },
        )
        sent = time.monotonic()
        try:
            receipt = self.client.submit(SaksiClient.sign(payload, [self.signer]))
        except Refused as e:
            return self._failed(f"refused: {e.cause}")
        except (TransportError, VerificationError) as e:
            return self._failed(f"not written: {type(e).__name__}")
        self.sent += 1
        deadline = sent + self.timeout
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                checkpoint, _ = self.trusted.verify(self.tiles.checkpoint())
            except (FetchError, VerificationError):
                checkpoint = None  # not (yet) witnessed as the policy asks
            if checkpoint is not None and checkpoint.size > receipt.index:
                delay = time.monotonic() - sent
                self.observe(delay)
                return delay
            self._stop.wait(0.05)
        if self._stop.is_set():
            return None
        return self._failed(
            f"entry {receipt.index} not in a witnessed checkpoint after "
            f"{self.timeout:g} s"
        )

    def _failed(self, why: str) -> float | None:
        """Count a failed canary (its delay: None)."""
        log.warning("canary failed: %s", why)
        self.failed(why)
        return None
