"""Collecting witness cosignatures for the log's checkpoints (C2SP tlog-witness).

Each time the tree head changes, the log sends its new checkpoint to every
configured witness with a consistency proof from the size that witness last
cosigned, checks each cosignature it gets back against the witness's pinned
cosigner key, and publishes the checkpoint with the cosignatures attached:
``/log/checkpoint`` serves that note from then on. A witness that answers 409
says which size it holds; the log retries once with a proof from that size. A
witness that is down or refuses costs its cosignature, never the log's
availability: the checkpoint is published with whatever cosignatures came back,
and observers' own quorum decides whether that is enough. While the head stays
the same it is sent again every ``refresh`` seconds, so the cosignatures' times
tell observers the log is alive (``saksi-verify checkpoint --max-age``).

A witness that claims a size larger than the log's is a loud error: the log was
rolled back (a restored backup?) or someone else signs with its key.

With ``keep``, each checkpoint that came back cosigned is also stored for the
log's other processes, which serve it once proven (``ledger.read.witnessed``).
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ledger.errors import IntegrityFailure, LedgerError
from ledger.health import WitnessHealth
from verifier.cosignature import WitnessPolicy, verify_cosigned
from verifier.errors import VerificationError
from verifier.note import VerifierKey, parse_note
from verifier.witness_protocol import format_add_checkpoint

__all__ = ["WitnessEndpoint", "WitnessHealth", "Witnessing", "parse_witnesses"]

log = logging.getLogger("saksi.witnessing")

Post = Callable[[str, bytes, float], tuple[int, bytes]]
MAX_ANSWER = 64 * 1024


@dataclass(frozen=True, slots=True)
class WitnessEndpoint:
    """A witness: where it listens (its add-checkpoint prefix) and its key."""

    url: str
    key: VerifierKey


def parse_witnesses(specs: Sequence[str]) -> list[WitnessEndpoint]:
    """``URL VKEY`` strings (from ``--witness`` or ``SAKSI_WITNESSES``).

    Raises:
        ValueError: not a URL and a cosigner key (type 0x04).
    """
    out = []
    for spec in specs:
        url, _, text = spec.strip().partition(" ")
        if not url.startswith(("http://", "https://")) or not text.strip():
            raise ValueError(f"witness {spec[:80]!r}: expected 'URL VKEY'")
        try:
            key = VerifierKey.parse(text.strip())
        except VerificationError as e:
            raise ValueError(f"witness {url}: not a verifier key: {e}") from e
        if not key.is_cosigner:
            raise ValueError(f"witness {url}: {key.name} is not a cosigner key")
        out.append(WitnessEndpoint(url.rstrip("/"), key))
    return out


def http_post(url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
    """POST ``body``; (status, answer). Network errors raise ``OSError``."""
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read(MAX_ANSWER)
    except urllib.error.HTTPError as e:
        return e.code, e.read(MAX_ANSWER)


@dataclass
class _Known:
    size: int = 0  # what the witness last cosigned, as far as the log knows
    ok: int = 0
    failed: int = 0
    last_error: str = ""
    last_ok_at: float | None = None


@dataclass
class Witnessing:
    """Witnesses the head of ``head()`` whenever it changes, in a thread."""

    head: Callable[[], tuple[int, bytes]]  # (size, signed note)
    consistency_proof: Callable[[int, int], list[bytes]]
    log_key: VerifierKey
    origin: str
    endpoints: Sequence[WitnessEndpoint]
    post: Post = http_post
    timeout: float = 5.0
    interval: float = 0.2
    refresh: float = 60.0  # seconds between rounds while the head stays the same
    clock: Callable[[], float] = time.time
    # Where each cosigned checkpoint is kept for the log's other processes
    # (``SqlStorage.put_witnessed``; see ``ledger.read.witnessed``).
    keep: Callable[[int, bytes], None] | None = None
    _known: dict[str, _Known] = field(default_factory=dict)
    _published: bytes | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self._known = {e.url: _Known() for e in self.endpoints}
        self._pool = ThreadPoolExecutor(max(1, len(self.endpoints)))

    def published(self) -> bytes | None:
        """The latest witnessed checkpoint (None before the first round)."""
        return self._published

    def status(self) -> list[dict[str, object]]:
        """Per witness: its name, URL, last cosigned size and counters."""
        return [
            {
                "witness": e.key.name,
                "url": e.url,
                "cosigned_size": self._known[e.url].size,
                "cosignatures": self._known[e.url].ok,
                "failures": self._known[e.url].failed,
                "last_error": self._known[e.url].last_error,
            }
            for e in self.endpoints
        ]

    def health(self) -> tuple[WitnessHealth, ...]:
        """Each witness's counters and the time of its last cosignature."""
        return tuple(
            WitnessHealth(
                e.key.name,
                self._known[e.url].size,
                self._known[e.url].ok,
                self._known[e.url].failed,
                self._known[e.url].last_ok_at,
            )
            for e in self.endpoints
        )

    def ahead(self, size: int) -> list[str]:
        """The witnesses that have cosigned a larger tree than ``size``, a line each.

        After a round, a witness that answered 409 with a larger size is one
        the log has shown more than it now holds: a rollback, or its key signed
        another tree.
        """
        return [
            f"witness {e.key.name} has cosigned size {self._known[e.url].size}"
            for e in self.endpoints
            if self._known[e.url].size > size
        ]

    def begin(self) -> None:
        """Run the first round now, then witness in the background.

        A witness that has cosigned a larger tree than ``head()`` holds stops
        it here, before anything else happens.

        Raises:
            IntegrityFailure: a witness holds a larger tree (a rollback).
        """
        size, note = self.head()
        self.round(size, note)
        ahead = self.ahead(size)
        if ahead:
            self.stop()
            raise IntegrityFailure(
                f"the log is at size {size} but {'; '.join(ahead)}: the "
                "database was rolled back, or the log key signed another tree"
            )
        self.start(witnessed=note)

    def start(self, witnessed: bytes | None = None) -> None:
        """Witness in the background until ``stop``.

        ``witnessed`` is a note whose round has just run (the first one, in the
        caller's thread): it is not sent again until it is due for a refresh.
        """
        self._thread = threading.Thread(
            target=self._run, args=(witnessed,), name="witnessing", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop after the round in progress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout * 2 + 1)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self, witnessed: bytes | None = None) -> None:
        done: bytes | None = witnessed
        last = time.monotonic() if witnessed is not None else 0.0
        while not self._stop.is_set():
            try:
                size, note = self.head()
            except LedgerError as e:  # the head cannot be read now: next time
                log.warning("witnessing: the signed head is not readable: %s", e)
                self._stop.wait(self.interval)
                continue
            # An idle log is witnessed again now and then, so that its
            # cosignatures stay fresh: observers can tell it from a frozen view.
            if note != done or time.monotonic() - last >= self.refresh:
                try:
                    self.round(size, note)
                    done, last = note, time.monotonic()
                except Exception:  # a bug here must not kill the thread silently
                    log.exception("witnessing round failed")
            self._stop.wait(self.interval)

    def round(self, size: int, note: bytes) -> bytes:
        """Send ``note`` (of tree ``size``) to every witness and publish it.

        Returns the note with the cosignatures that verified.
        """
        lines = self._pool.map(lambda e: self._cosign(e, size, note), self.endpoints)
        witnessed = note + b"".join(line for line in lines if line)
        self._published = witnessed
        if self.keep is not None and witnessed != note:
            try:
                self.keep(size, witnessed)
            except LedgerError as e:  # the next round stores a newer one
                log.warning("the witnessed checkpoint was not stored: %s", e)
        return witnessed

    def _cosign(self, endpoint: WitnessEndpoint, size: int, note: bytes) -> bytes:
        known = self._known[endpoint.url]
        for _ in range(2):
            old = known.size
            if old > size:
                known.failed += 1
                known.last_error = f"the witness holds size {old}, the log {size}"
                log.error(
                    "witness %s has cosigned size %d but the log is at %d: the log "
                    "was rolled back or its key signed another tree",
                    endpoint.key.name,
                    old,
                    size,
                )
                return b""
            proof = self.consistency_proof(old, size) if 0 < old < size else []
            body = format_add_checkpoint(old, proof, note)
            try:
                status, answer = self.post(
                    endpoint.url + "/add-checkpoint", body, self.timeout
                )
            except OSError as e:
                return self._failed(known, endpoint, f"unreachable: {e}")
            if status == 409:
                try:
                    known.size = int(answer.decode("ascii").strip())
                except ValueError:
                    return self._failed(known, endpoint, "409 without a size")
                continue
            if status != 200:
                detail = answer[:200].decode("utf-8", "replace").strip()
                return self._failed(known, endpoint, f"HTTP {status}: {detail}")
            line = self._check(endpoint, note, answer)
            if line is None:
                return self._failed(known, endpoint, "an invalid cosignature")
            known.size, known.ok = size, known.ok + 1
            known.last_ok_at = self.clock()
            return line
        return self._failed(known, endpoint, "409 twice")

    def _check(
        self, endpoint: WitnessEndpoint, note: bytes, answer: bytes
    ) -> bytes | None:
        """The witness's own line from ``answer`` if its cosignature verifies."""
        try:
            verify_cosigned(
                note + answer,
                self.log_key,
                self.origin,
                WitnessPolicy((endpoint.key,), 1),
            )
            mine = [
                s
                for s in parse_note(note + answer).signatures
                if (s.name, s.key_id) == (endpoint.key.name, endpoint.key.key_id)
            ]
        except VerificationError:
            return None
        return mine[0].to_line().encode("utf-8")

    @staticmethod
    def _failed(known: _Known, endpoint: WitnessEndpoint, why: str) -> bytes:
        known.failed += 1
        known.last_error = why
        log.warning("witness %s did not cosign: %s", endpoint.key.name, why)
        return b""
