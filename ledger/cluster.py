"""Many ``saksi serve`` processes on one PostgreSQL database, one sequencer at a time.

Every process of a cluster is a ``ClusterLog``: it serves reads from the signed
tree in the database (``ledger.read.stored.StoredTree``, checked as a read-only
process checks it) and accepts writes. A write is checked in full where it
arrives (``prepare``: envelope, schema, window, every signature, against the
key registry replayed from entries proven in the signed tree), then queued in
the database's write queue with a MAC (``QueueCodec``) and waited for. The
lease holder hands its own writes straight to its sequencer instead
(``ClusterWriter._decide_here``): no queue row, no outcome row, the same
decisions and the same receipts.

Exactly one process at a time integrates: the one that holds the sequencer
lease (``ledger.storage.lease``). It runs the ordinary ``Sequencer`` (the
record gate's steps 7 to 9, group commit, the checkpoint), fed from the queue
by a ``Pump``; every transaction it commits first checks its fencing token, and
stores the outcome of every queued submission it decides (and takes them off
the queue) in the same transaction. A receipt is therefore given only after
the durable commit, by the process that queued the write, from the signed tree
in the database: it proves the entry and checks that it holds the submitted
record before answering (``_Receipts``: the writes one commit decided get
theirs together, from one look at the tree and one read of their entries).

When the sequencer dies, its lease runs out (``LEASE_TTL``) and another
process takes it (``Candidate``): a new term, with a new sequencer and gate
recovered from the signed tree by the start-up checks. What the dead one had
queued but not committed is still in the queue and is decided by the next;
what it had committed is answered from its stored outcomes. A sequencer that
lost its lease (paused, cut off) commits nothing, ever: its fencing token no
longer matches inside the transaction.

Why a queue table: it needs nothing but the database the log already trusts
for durability; a queued write survives the death of the sequencer (no
forwarding to a process that may be gone, no discovery); ``NOTIFY`` is
delivered only when a transaction commits, so it wakes the other side at the
right moment, and both sides poll as well, so a lost notification costs a poll
interval, never a write.

Queue rows and outcomes carry an HMAC-SHA256 under a key derived from the log
key (as the seal is, ``ledger.seal``): every member holds the log key (each
may have to sequence), and a row inserted or edited by anyone else is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import math
import struct
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, NamedTuple

from ledger.admission import (
    DEFAULT_SKEW,
    SUBMISSION_WEIGHT,
    RecordGate,
    Submission,
    prepare_submission,
)
from ledger.commit import Committed, Outcome
from ledger.cosigning import WitnessEndpoint, Witnessing
from ledger.errors import (
    IntegrityFailure,
    LeaseLost,
    LedgerError,
    Pushback,
    Refused,
    StorageUnavailable,
)
from ledger.health import LogHealth, WitnessHealth
from ledger.ledger import AppendReceipt
from ledger.publisher import CheckpointPublisher
from ledger.read.entries import EntryReader
from ledger.read.proof_builder import (
    FullTileCache,
    NodeReader,
    build_inclusion_proof,
)
from ledger.read.reader import LogReader
from ledger.read.registry import RegistryReader
from ledger.read.stored import StoredTree
from ledger.read.tree import SignedTree
from ledger.read.witnessed import StoredWitnessed
from ledger.sequencer import Sequencer, SequencerConfig
from ledger.storage.queue import DONE_CHANNEL, QUEUE_CHANNEL, QueueRow
from ledger.storage.sql import SqlStorage
from ledger.telemetry import WriterEvents
from verifier.dsse import envelope_to_json, parse_envelope
from verifier.errors import VerificationError
from verifier.note import NoteSigner, VerifierKey
from verifier.proof_check import verify_inclusion
from verifier.record import parse_log_entry, parse_record
from verifier.registry import KeyRegistry
from verifier.rfc6962 import hash_leaf
from verifier.rules.state import ElectionState
from verifier.schema_registry import get_schema

__all__ = [
    "Candidate",
    "ClusterLog",
    "ClusterWriter",
    "Pump",
    "QueueCodec",
    "derive_queue_key",
]

log = logging.getLogger("saksi.cluster")

_KEY_MESSAGE = "saksi/queue-key/v1\n{origin} has no size here\n"
_BODY_TAG = b"saksi queue row v1\x00"
_OUTCOME_TAG = b"saksi queue outcome v1\x00"
_ID = struct.Struct(">q")
# What a refusal carries besides its cause and text, back to the member that
# answers it (the API puts them in the problem document).
_CARRIED = ("revision", "payload_hash", "path")
_NULLABLE = ("revision", "payload_hash")


def derive_queue_key(signer: NoteSigner, origin: str) -> bytes:
    """The 32-byte key of the write queue's MACs, from the log's signing key.

    Raises:
        IntegrityFailure: the signer is not deterministic.
    """
    message = _KEY_MESSAGE.format(origin=origin).encode("utf-8")
    first, second = signer.sign(message), signer.sign(message)
    if not hmac.compare_digest(first, second):
        raise IntegrityFailure(
            "the log signer is not deterministic: no queue key can be derived"
        )
    return hashlib.sha256(b"saksi queue key\x00" + first).digest()


class QueueCodec:
    """Queue rows and outcomes as bytes, each with its MAC."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, *parts: bytes) -> bytes:
        return hmac.new(self._key, b"".join(parts), hashlib.sha256).digest()

    def _outcome_mac(self, tag: int, body: bytes) -> bytes:
        # Bound to its queue row: an outcome moved to another row fails.
        return self._mac(_OUTCOME_TAG, _ID.pack(tag), body)

    def submission(self, submission: Submission) -> tuple[bytes, bytes]:
        """A checked submission as a queue row's ``(body, mac)``."""
        body = json.dumps(
            {
                "envelope": envelope_to_json(submission.envelope),
                "signers": list(submission.signers),
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode("utf-8")
        return body, self._mac(_BODY_TAG, body)

    def restore(self, body: bytes, mac: bytes) -> Submission:
        """The submission a queue row holds, as the process that queued it checked it.

        The signatures and the schema are not checked again: the MAC says a
        member checked them (the window is checked again by the gate).

        Raises:
            IntegrityFailure: the MAC does not match (a row nobody of the
                cluster wrote), or the row does not parse.
        """
        if not hmac.compare_digest(self._mac(_BODY_TAG, body), mac):
            raise IntegrityFailure("a write queue row does not carry a valid MAC")
        try:
            doc = json.loads(body)
            envelope = parse_envelope(doc["envelope"])
            record = parse_record(envelope.payload)
            schema = get_schema(record.schema)
            signers = tuple(str(s) for s in doc["signers"])
        except (ValueError, KeyError, TypeError, VerificationError) as e:
            raise IntegrityFailure(
                "a write queue row with a valid MAC does not parse "
                f"({type(e).__name__})"
            ) from e
        return Submission(envelope, record, schema, signers)

    def outcome(
        self, tag: int, index: int | None, duplicate: bool, error: Exception | None
    ) -> QueueRow:
        """The stored outcome of queue row ``tag``."""
        if error is None:
            doc: dict[str, Any] = {"index": index, "duplicate": duplicate}
        else:
            doc = {
                "cause": str(getattr(error, "cause", "internal-error")),
                "detail": str(error)[:1000],
            }
            extra = {
                name: getattr(error, name)
                for name in _CARRIED
                if isinstance(getattr(error, name, None), int | str)
                or (name in _NULLABLE and hasattr(error, name))
            }
            if extra:
                doc["extra"] = extra
            retry = getattr(error, "retry_after", None)
            if isinstance(retry, int | float):
                doc["retry_after"] = float(retry)
        body = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
        return tag, body, self._outcome_mac(tag, body)

    def read_outcome(self, tag: int, body: bytes, mac: bytes) -> tuple[int, bool]:
        """The entry a queued submission became: ``(index, duplicate)``.

        Raises:
            Refused: the sequencer refused it (its problem type and text).
            Pushback: it was refused for now (retry).
            IntegrityFailure: the outcome's MAC does not match, or it is malformed.
        """
        if not hmac.compare_digest(self._outcome_mac(tag, body), mac):
            raise IntegrityFailure("a write outcome does not carry a valid MAC")
        try:
            doc = json.loads(body)
            if "cause" in doc:
                cause, detail = str(doc["cause"]), str(doc["detail"])
                if "retry_after" in doc:
                    raise Pushback(detail, retry_after=float(doc["retry_after"]))
                extra = doc.get("extra", {})
                raise Refused(
                    cause, detail, **{k: extra[k] for k in _CARRIED if k in extra}
                )
            index, duplicate = doc["index"], doc["duplicate"]
        except (ValueError, KeyError, TypeError) as e:
            raise IntegrityFailure(
                "a write outcome with a valid MAC does not parse"
            ) from e
        if type(index) is not int or index < 0 or type(duplicate) is not bool:
            raise IntegrityFailure("a write outcome names no entry")
        return index, duplicate


class Pump:
    """Feeds the write queue to this process's sequencer while it holds the lease."""

    def __init__(
        self,
        storage: SqlStorage,
        codec: QueueCodec,
        sequencer: Sequencer[Submission],
        *,
        batch: int = 8192,
        max_in_flight: int = 50_000,
        failed: Callable[[list[int], BaseException], None] | None = None,
    ) -> None:
        self._storage = storage
        self._codec = codec
        self._sequencer = sequencer
        # Told which queued submissions a failed commit left undecided (this
        # process's own waiters answer 503 at once instead of waiting).
        self._failed = failed
        self._backoff = False
        self._batch = batch
        self._max_in_flight = max_in_flight
        self._in_flight: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="saksi-pump", daemon=True
        )

    def start(self) -> None:
        """Start pumping."""
        self._thread.start()

    def stop(self) -> None:
        """Stop pumping (what is in flight is the sequencer's to finish)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        listener = self._storage.listener(QUEUE_CHANNEL)
        try:
            while not self._stop.is_set():
                try:
                    took = self._pump_once()
                except LedgerError as e:
                    log.warning("the write queue could not be read: %s", e)
                    took = 0
                except Exception:  # a bug: never leave the queue undrained
                    log.exception("pumping the write queue failed")
                    took = 0
                    self._backoff = True
                if self._stop.is_set():
                    return
                if self._backoff:  # a commit failed: let the database recover
                    self._backoff = False
                    self._stop.wait(0.5)
                    continue
                if self._wake.is_set():
                    self._wake.clear()
                    continue
                listener.wait(0.02 if took else 0.5)
        finally:
            listener.close()

    def _pump_once(self) -> int:
        with self._lock:
            in_flight = len(self._in_flight)
        if in_flight >= self._max_in_flight:
            return 0
        rows = self._storage.queued(self._batch + in_flight)
        with self._lock:
            fresh = [r for r in rows if r[0] not in self._in_flight]
        if not fresh:
            return 0
        items: list[Submission] = []
        tags: list[int] = []
        broken: list[QueueRow] = []
        for tag, body, mac in fresh:
            try:
                items.append(self._codec.restore(body, mac))
                tags.append(tag)
            except IntegrityFailure as e:
                log.error("write queue row %d refused: %s", tag, e)
                broken.append(
                    self._codec.outcome(
                        tag, None, False, StorageUnavailable(f"not queued intact: {e}")
                    )
                )
        if broken:
            self._storage.settle_queue(broken)
        if not items:
            return len(broken)
        try:
            future = self._sequencer.submit(items, tags)
        except LedgerError as e:  # full, or this term ended
            log.info("queue not handed over now: %s", e)
            return 0
        with self._lock:
            self._in_flight.update(tags)

        def done(f: Future[list[Outcome]], tags: list[int] = tags) -> None:
            with self._lock:
                self._in_flight.difference_update(tags)
            error = f.exception()
            if error is not None:
                self._backoff = True
                if self._failed is not None:
                    self._failed(tags, error)
            self._wake.set()

        future.add_done_callback(done)
        return len(items)


class _Waiting:
    """Submissions queued in one turn of an event loop, waiting to be inserted."""

    __slots__ = ("items", "scheduled", "waiters")

    def __init__(self) -> None:
        self.items: list[tuple[bytes, bytes]] = []
        self.waiters: list[asyncio.Future[tuple[int, bool]]] = []
        self.scheduled = False


class QueueClient:
    """Queues checked submissions and waits for the sequencer's outcomes."""

    def __init__(
        self,
        storage: SqlStorage,
        codec: QueueCodec,
        *,
        max_waiting: int = 20_000,
        max_backlog: int = 100_000,
        timeout: float = 30.0,
    ) -> None:
        self._storage = storage
        self._codec = codec
        self._max_waiting = max_waiting
        # The whole cluster's queue, as last counted (every second or so): a
        # queue that nobody drains (no sequencer) stops growing at this size.
        self._max_backlog = max_backlog
        self.backlog = 0
        self._counted = 0.0
        self._timeout = timeout
        # When the database last failed this process's outcome reads: a
        # submission not decided in time meanwhile is answered 503
        # storage-unavailable, not overloaded.
        self._failed_at = -math.inf
        # Outcomes handed over, deleted by the next read (see take_outcomes).
        self._delivered: list[int] = []
        self._lock = threading.Lock()
        self._waiting: dict[
            int, tuple[asyncio.AbstractEventLoop, asyncio.Future[tuple[int, bool]]]
        ] = {}
        self._turns: dict[asyncio.AbstractEventLoop, _Waiting] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._collect, name="saksi-outcomes", daemon=True
        )
        self._thread.start()

    @property
    def timeout(self) -> float:
        """Seconds a write waits for its outcome before it is answered 503."""
        return self._timeout

    @property
    def waiting(self) -> int:
        """Submissions of this process waiting for their outcome."""
        with self._lock:
            return len(self._waiting)

    async def decide(self, submission: Submission) -> tuple[int, bool]:
        """Queue ``submission``; the entry it became: ``(index, duplicate)``.

        Raises:
            Refused, Pushback, StorageUnavailable: refused, or not decided.
        """
        if self.waiting >= self._max_waiting:
            raise Pushback("too many appends waiting; retry shortly", retry_after=1.0)
        if self.backlog >= self._max_backlog:
            raise Pushback(
                f"the cluster's write queue holds {self.backlog:,} submissions; "
                "retry shortly",
                retry_after=2.0,
            )
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[tuple[int, bool]] = loop.create_future()
        turn = self._turns.get(loop)
        if turn is None:
            turn = self._turns[loop] = _Waiting()
        turn.items.append(self._codec.submission(submission))
        turn.waiters.append(waiter)
        if not turn.scheduled:
            turn.scheduled = True
            loop.call_soon(self._flush, loop, turn)
        began = time.monotonic()
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), self._timeout)
        except TimeoutError:
            waiter.cancel()  # its outcome, when it comes, is nobody's
            if self._failed_at >= began:
                raise StorageUnavailable(
                    f"not decided within {self._timeout:g} s: the database failed "
                    "meanwhile; send it again: a repeat is answered with its entry"
                ) from None
            raise Pushback(
                f"not decided within {self._timeout:g} s (the sequencer is changing "
                "hands?); send it again: a repeat is answered with its entry",
                retry_after=1.0,
            ) from None

    def _flush(self, loop: asyncio.AbstractEventLoop, turn: _Waiting) -> None:
        items, waiters = turn.items, turn.waiters
        turn.items, turn.waiters, turn.scheduled = [], [], False
        task = loop.run_in_executor(None, self._storage.enqueue, items)

        def queued(f: asyncio.Future[list[int]]) -> None:
            error = f.exception()
            if error is not None:
                for w in waiters:
                    if not w.done():
                        w.set_exception(error)
                return
            with self._lock:
                for tag, w in zip(f.result(), waiters, strict=True):
                    self._waiting[tag] = (loop, w)

        task.add_done_callback(queued)

    def _collect(self) -> None:
        listener = self._storage.listener(DONE_CHANNEL)
        try:
            while not self._stop.is_set():
                listener.wait(0.1)
                try:
                    self._collect_once()
                except Exception:  # a bug: never leave writers waiting for good
                    log.exception("collecting write outcomes failed")
        finally:
            listener.close()

    def _collect_once(self) -> None:
        self._count_backlog()
        with self._lock:
            tags = list(self._waiting)
        delivered = self._delivered
        if not tags and not delivered:
            return
        try:
            rows = self._storage.take_outcomes(tags, delivered)
        except LedgerError as e:
            self._failed_at = time.monotonic()
            log.warning("outcomes not read: %s", e)
            return
        self._delivered = [tag for tag, _, _ in rows]
        for tag, body, mac in rows:
            with self._lock:
                entry = self._waiting.pop(tag, None)
            if entry is None:
                continue
            loop, waiter = entry
            try:
                result: tuple[int, bool] | Exception = self._codec.read_outcome(
                    tag, body, mac
                )
            except (LedgerError, VerificationError) as e:
                result = e
            _answer(loop, waiter, result)
        self._forget_abandoned()

    def _count_backlog(self) -> None:
        now = time.monotonic()
        if now - self._counted < 1.0:
            return
        self._counted = now
        with contextlib.suppress(LedgerError):
            self.backlog = self._storage.queue_length()

    def fail(self, tags: Sequence[int], error: BaseException) -> None:
        """Answer this process's waiters for ``tags`` with ``error`` now.

        For a commit that failed: what it held stays queued (and may still be
        logged later: a client that sends it again gets that entry).
        """
        with self._lock:
            entries = [self._waiting.pop(t, None) for t in tags]
        for entry in entries:
            if entry is not None:
                loop, waiter = entry
                result = error if isinstance(error, Exception) else Exception(error)
                _answer(loop, waiter, result)

    def _forget_abandoned(self) -> None:
        with self._lock:
            gone = [t for t, (_, w) in self._waiting.items() if w.done()]
            for tag in gone:
                del self._waiting[tag]

    def close(self) -> None:
        """Stop collecting outcomes."""
        self._stop.set()
        self._thread.join(timeout=5)


def _answer(
    loop: asyncio.AbstractEventLoop,
    waiter: asyncio.Future[tuple[int, bool]],
    result: tuple[int, bool] | Exception,
) -> None:
    """Resolve ``waiter`` in its loop (from another thread); a loop gone is fine."""
    with contextlib.suppress(RuntimeError):  # the loop was closed meanwhile
        loop.call_soon_threadsafe(_settle, waiter, result)


def _settle(waiter: asyncio.Future[Any], result: object) -> None:
    """Give a waiter its result, or raise its error in it (if it still waits)."""
    if waiter.done():  # its writer went away
        return
    if isinstance(result, BaseException):
        waiter.set_exception(result)
    else:
        waiter.set_result(result)


class _Term(NamedTuple):
    """A sequencer term of this process, and the gate that decides its writes."""

    sequencer: Sequencer[Submission]
    gate: RecordGate


class FollowedGate:
    """The key registry and election state as of the latest signed tree.

    What the API asks of a writer's gate (``registry``, ``election``,
    ``public_key``), replayed from entries proven in the signed tree. The API
    asks on its event loop: the answer is the registries as last replayed,
    never a database read or a wait, and a thread of its own brings them
    forward when the signed tree last checked (``signed_size``) has grown;
    ``catch_up`` does it at once.

    While this process holds the sequencer lease, the answer is its term's
    own gate instead (``own``): built from proven entries when the term began
    and brought forward by each of its commits, it is the latest there is,
    and every member replaying every record the sequencer just admitted was
    a sixth of the lease holder's time (key grants written one a request).
    """

    def __init__(
        self,
        registries: RegistryReader,
        signed_size: Callable[[], int],
        own: Callable[[], _Term | None] = lambda: None,
    ) -> None:
        self._registries = registries
        self._signed_size = signed_size  # of the tree last checked: no reads
        # This process's term while it runs: its gate's registries are kept
        # current by every commit here (as a single process's writer keeps
        # them), so nothing is replayed meanwhile. Once it ends they are
        # still asked until the replay has caught up with what it committed.
        self._own = own
        self._last: _Term | None = None
        self._due = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = threading.Lock()
        self._failure: IntegrityFailure | None = None

    def _now(self) -> tuple[KeyRegistry, ElectionState]:
        if self._failure is not None:  # a stored record no longer replays
            raise self._failure
        own = self._own()
        if own is not None:
            self._last = own
            return own.gate.registry, own.gate.election
        snapshot = self._registries.snapshot()
        last = self._last
        if last is not None:
            if snapshot is None or snapshot[2] < last.sequencer.state.size:
                self.follow()
                return last.gate.registry, last.gate.election
            self._last = None
        if snapshot is None:
            return self._registries.live()
        keys, state, size = snapshot
        if size < self._signed_size():
            self.follow()
        return keys, state

    def follow(self) -> None:
        """Bring the registries forward soon, in the gate's own thread.

        Not while this process's own term runs (its gate is current): once the
        term ends, the first question asked of the gate brings them forward.
        """
        if self._own() is not None:
            return
        if self._thread is None:
            with self._started:
                if self._thread is None and not self._stop.is_set():
                    self._thread = threading.Thread(
                        target=self._run, name="saksi-registry", daemon=True
                    )
                    self._thread.start()
        self._due.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._due.wait()
            self._due.clear()
            if self._stop.is_set():
                return
            try:
                self._registries.live()
            except IntegrityFailure as e:  # every later read raises it
                log.error("the key registry no longer replays: %s", e)
                self._failure = e
                return
            except LedgerError as e:  # the next read asks again, after a pause
                log.warning("key registry not brought forward: %s", e)
                self._stop.wait(0.5)
            except Exception:  # a bug: keep following, never die silently
                log.exception("bringing the key registry forward failed")
                self._stop.wait(0.5)

    def catch_up(self) -> None:
        """Bring the registries to the latest signed tree now (blocking).

        Raises:
            IntegrityFailure: a stored registry record no longer replays.
            StorageUnavailable: the database cannot be read.
        """
        if self._own() is not None:  # the sequencer's own: the latest there is
            return
        self._registries.live()

    @property
    def registry(self) -> KeyRegistry:
        """The key registry now."""
        return self._now()[0]

    @property
    def election(self) -> ElectionState:
        """The region registry and candidate lists now."""
        return self._now()[1]

    def public_key(self, keyid: str) -> bytes | None:
        """The key of ``keyid`` if the registry ever granted it."""
        return self.registry.public_key(keyid)

    def close(self) -> None:
        """Stop following."""
        self._stop.set()
        self._due.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)


class ClusterWriter:
    """A cluster member's write interface: check here, decide in the sequencer."""

    def __init__(
        self,
        cluster: ClusterLog,
        clock: Callable[[], float],
        *,
        skew: dt.timedelta = DEFAULT_SKEW,
        max_age: dt.timedelta | None = None,
    ) -> None:
        self._cluster = cluster
        self._looked = 0.0
        self._receipts = _Receipts(cluster.receipts)
        self._here = _Here(lambda: cluster.queue.timeout)
        self.gate = FollowedGate(
            cluster.registry, cluster.signed_size, cluster.own_term
        )
        self.clock = clock
        self.skew = skew
        self.max_age = max_age

    def observe(self, events: WriterEvents) -> None:
        """Report every commit and failure of this process's sequencer terms."""
        self._cluster.observe(events)

    def prepare(self, envelope: bytes | dict[str, Any]) -> Submission:
        """Check an envelope in full (``prepare_submission``), here.

        A key granted moments ago in another process may not be in this
        process's registry yet: the signed tree is looked at again once
        before a signature by an unknown key is refused.

        Raises:
            VerificationError, EntryRejected: see ``prepare_submission``.
        """
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        known = self.gate.public_key

        def lookup(keyid: str) -> bytes | None:
            key = known(keyid)
            # At most four looks a second, however many unknown keys arrive.
            if key is None and time.monotonic() - self._looked >= 0.25:
                self._looked = time.monotonic()
                self._cluster.tree.refresh()
                self.gate.catch_up()
                key = self.gate.public_key(keyid)
            return key

        return prepare_submission(envelope, lookup, now, self.skew, self.max_age)

    async def submit(self, submission: Submission) -> AppendReceipt:
        """Decide one checked submission; its receipt once it is durable.

        In the process that holds the sequencer lease, its own sequencer
        decides it, with no trip through the write queue; in any other (or
        when the term here ends first), through the queue.

        Raises:
            Refused, Pushback, StorageUnavailable, IntegrityFailure.
        """
        committed = await self._decide_here(submission)
        if committed is not None and committed.index >= committed.commit.first:
            return self._cluster.commit_receipt(committed)
        if committed is not None:  # a repeat: proven as any member proves it
            return await self._receipts.get(committed.index, True, submission)
        decided = await self._cluster.queue.decide(submission)
        return await self._receipts.get(*decided, submission)

    async def _decide_here(self, submission: Submission) -> Committed | None:
        """The entry this process's sequencer made it; None if none runs here."""
        sequencer = self._cluster.candidate.sequencer
        if sequencer is None or not sequencer.running:
            return None
        return await self._here.decide(sequencer, submission)


class _Here:
    """The submissions of one event-loop turn, handed to this process's sequencer.

    As the single-process writer hands them over (``Ledger.submit_async``):
    one ``Sequencer.submit`` for all the submissions a turn of the event loop
    checked, one wake-up when their commit is decided, and one timer for the
    turn, instead of a future, a task and a timer each.
    """

    def __init__(self, timeout: Callable[[], float]) -> None:
        self._timeout = timeout
        self._turns: dict[
            tuple[asyncio.AbstractEventLoop, int],
            list[tuple[Submission, asyncio.Future[Committed | None]]],
        ] = {}

    async def decide(
        self, sequencer: Sequencer[Submission], submission: Submission
    ) -> Committed | None:
        """The entry ``sequencer`` made it; None if its term ended first.

        Raises:
            Pushback: not decided within the queue's timeout, or the
                sequencer's queue is full.
            IntegrityFailure: writes are stopped.
            Exception: the gate's refusal of it.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Committed | None] = loop.create_future()
        key = (loop, id(sequencer))
        turn = self._turns.get(key)
        if turn is None:
            turn = self._turns[key] = []
            loop.call_soon(self._flush, loop, key, sequencer)
        turn.append((submission, waiter))
        return await waiter

    def _flush(
        self,
        loop: asyncio.AbstractEventLoop,
        key: tuple[asyncio.AbstractEventLoop, int],
        sequencer: Sequencer[Submission],
    ) -> None:
        turn = self._turns.pop(key, [])
        waiters = [w for _, w in turn]
        try:
            future = sequencer.submit([s for s, _ in turn])
        except (LeaseLost, StorageUnavailable):  # the term is ending: the queue
            _settle_all(waiters, None)
            return
        except Exception as e:  # full, writes stopped (or a bug): each is told
            _settle_all(waiters, e)
            return
        timeout = self._timeout()
        expiry = loop.call_later(timeout, _expire, waiters, timeout)

        def done(f: Future[list[Outcome]]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop was closed meanwhile
                loop.call_soon_threadsafe(_resolve_here, f, waiters, expiry)

        future.add_done_callback(done)


def _settle_all(
    waiters: Sequence[asyncio.Future[Committed | None]],
    result: Committed | BaseException | None,
) -> None:
    for waiter in waiters:
        _settle(waiter, result)


def _expire(
    waiters: Sequence[asyncio.Future[Committed | None]], timeout: float
) -> None:
    _settle_all(
        waiters,
        Pushback(
            f"not decided within {timeout:g} s; send it again: a repeat is "
            "answered with its entry",
            retry_after=1.0,
        ),
    )


def _resolve_here(
    future: Future[list[Outcome]],
    waiters: Sequence[asyncio.Future[Committed | None]],
    expiry: asyncio.TimerHandle,
) -> None:
    expiry.cancel()
    error = future.exception()
    if isinstance(error, LeaseLost):  # fenced: nothing of it was committed here
        _settle_all(waiters, None)
        return
    if error is not None:
        _settle_all(waiters, error)
        return
    for waiter, outcome in zip(waiters, future.result(), strict=True):
        _settle(waiter, None if isinstance(outcome, LeaseLost) else outcome)


_Decided = tuple[int, bool, Submission]  # (index, duplicate, the submission)


class _Receipts:
    """Receipts made together for the writes decided together.

    The outcomes of one commit wake their writers in the same turn of the
    event loop; their receipts are then made in one call in a thread (one
    look at the signed tree, one read of their entries, one node reader for
    their proofs) instead of one call, and as many database reads, each.
    """

    def __init__(
        self, make: Callable[[Sequence[_Decided]], list[AppendReceipt | LedgerError]]
    ) -> None:
        self._make = make
        self._turns: dict[
            asyncio.AbstractEventLoop,
            list[tuple[_Decided, asyncio.Future[AppendReceipt]]],
        ] = {}

    async def get(
        self, index: int, duplicate: bool, submission: Submission
    ) -> AppendReceipt:
        """The receipt of entry ``index``, made with the others of this turn."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[AppendReceipt] = loop.create_future()
        turn = self._turns.get(loop)
        if turn is None:
            turn = self._turns[loop] = []
            loop.call_soon(self._flush, loop)
        turn.append(((index, duplicate, submission), waiter))
        return await waiter

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        turn = self._turns.pop(loop, [])
        task = loop.run_in_executor(None, self._make, [d for d, _ in turn])

        def made(f: asyncio.Future[list[AppendReceipt | LedgerError]]) -> None:
            error = (
                StorageUnavailable("the receipts were not made (shutting down)")
                if f.cancelled()
                else f.exception()
            )
            results: Sequence[AppendReceipt | BaseException] = (
                [error] * len(turn) if error is not None else f.result()
            )
            for (_, waiter), result in zip(turn, results, strict=True):
                _settle(waiter, result)

        task.add_done_callback(made)


class Candidate:
    """Takes the sequencer lease when it is free, and runs a term while held."""

    def __init__(
        self,
        storage: SqlStorage,
        start_term: Callable[[], Sequencer[Submission]],
        codec: QueueCodec,
        *,
        failed: Callable[[list[int], BaseException], None] | None = None,
        interval: float | None = None,
        tick: Callable[[], object] | None = None,
        ended: Callable[[], None] | None = None,
    ) -> None:
        self._storage = storage
        self._start_term = start_term
        self._ended = ended  # called as each term ends, after its sequencer stops
        self._failed = failed
        # Called every interval besides: the member looks at the signed tree,
        # so its health (the checkpoint's age) is current without any reads.
        self._tick = tick
        self._codec = codec
        self._interval = interval or storage.lease_ttl / 5
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.sequencer: Sequencer[Submission] | None = None
        self._pump: Pump | None = None
        self.terms = 0
        self.failure: LedgerError | None = None
        self._thread = threading.Thread(
            target=self._run, name="saksi-candidate", daemon=True
        )

    @property
    def active(self) -> bool:
        """True while this process is the cluster's sequencer."""
        sequencer = self.sequencer
        return sequencer is not None and sequencer.running

    def start(self) -> None:
        """Start contending for the lease."""
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.sequencer is None:
                    self._try_take()
                else:
                    self._keep()
            except LedgerError as e:
                log.warning("sequencer lease: %s", e)
            except Exception:  # a bug: keep contending, never die silently
                log.exception("contending for the sequencer lease failed")
            if self._tick is not None:
                with contextlib.suppress(LedgerError):
                    self._tick()
            self._stop.wait(self._interval)

    def _try_take(self) -> None:
        token = self._storage.take_lease()
        if token is None:
            return
        log.info("took the sequencer lease (token %d)", token)
        # The start-up checks may take longer than the lease runs: renew it
        # meanwhile, so nobody else takes over a term that is starting.
        started = threading.Event()

        def renew() -> None:
            while not started.wait(self._interval):
                self._storage.renew_lease()

        keeper = threading.Thread(target=renew, name="saksi-lease-start", daemon=True)
        keeper.start()
        try:
            sequencer = self._start_term()
        except LedgerError as e:
            self.failure = e
            log.error("could not start sequencing (token %d): %s", token, e)
            self._storage.drop_lease()
            if isinstance(e, IntegrityFailure):
                self._stop.wait(self._storage.lease_ttl * 6)
            return
        finally:
            started.set()
            keeper.join()
        pump = Pump(self._storage, self._codec, sequencer, failed=self._failed)
        pump.start()
        with self._lock:
            self.sequencer, self._pump = sequencer, pump
            self.terms += 1
            self.failure = None

    def _keep(self) -> None:
        sequencer = self.sequencer
        if sequencer is None:
            return
        renewed = self._storage.renew_lease() if sequencer.running else False
        if renewed is None:
            return  # not known now: ask again next time
        if renewed and sequencer.running:
            return
        log.warning("this process is no longer the sequencer")
        self._end_term()

    def _end_term(self) -> None:
        with self._lock:
            sequencer, pump = self.sequencer, self._pump
            self.sequencer, self._pump = None, None
        if pump is not None:
            pump.stop()
        if sequencer is not None:
            if sequencer.failure is not None:
                self.failure = sequencer.failure
            with contextlib.suppress(LedgerError):
                sequencer.stop()
            if self._ended is not None:
                self._ended()
        self._storage.drop_lease()

    def stop(self) -> None:
        """Stop contending; end a term in progress and give the lease up."""
        self._stop.set()
        self._thread.join(timeout=30)
        self._end_term()


# How often, at most, the lease holder looks at the stored tree after its
# commits: each look has a fixed cost (reads, a signature), and looking after
# every commit cost a quarter of the throughput; once a second (the lease
# tick alone) made the looks, and the key registry's replay, bursts that held
# the GIL long enough to more than double the slowest answers (p99).
FOLLOW_EVERY_S = 0.1


class _Published:
    """A member's tree source: the signed tree, and its witnessed checkpoint.

    The tree is the one in the database (checked by ``StoredTree``) or, in
    the lease holder, its sequencer's latest when that is larger: its reads
    are then as fresh as the receipts it gives (a client that just got one
    finds at least that tree), as one writing process's are. Never a smaller
    tree than one served before, when a term ends. The witnessed checkpoint
    is there where witnesses are configured (``ClusterLog._witnessed_note``).
    """

    def __init__(
        self, tree: StoredTree, local: Callable[[], SignedTree | None]
    ) -> None:
        self._tree = tree
        self._local = local
        self._served: SignedTree | None = None
        self._lock = threading.Lock()
        self.witnessed: Callable[[], bytes | None] | None = None

    def tree(self) -> SignedTree:
        best = self._tree.tree()  # raises if the stored tree failed its checks
        local = self._local()
        if local is not None and local.size > best.size:
            best = local
        with self._lock:
            served = self._served
            if served is not None and served.size >= best.size:
                return served
            self._served = best
        return best

    def published(self) -> bytes | None:
        witnessed = self.witnessed
        return None if witnessed is None else witnessed()


class _TermTree:
    """The tree a term's sequencer last committed, as a ``TreeSource``."""

    def __init__(self, sequencer: Sequencer[Submission]) -> None:
        self._sequencer = sequencer

    def tree(self) -> SignedTree:
        return self._sequencer.tree()

    def published(self) -> bytes | None:
        return None


class ClusterLog:
    """One process of a cluster: reads the signed tree, writes through the queue."""

    def __init__(
        self,
        storage: SqlStorage,
        signer: NoteSigner,
        verifier_key: VerifierKey,
        origin: str,
        *,
        clock: Callable[[], float] = time.time,
        config: SequencerConfig | None = None,
        skew: dt.timedelta = DEFAULT_SKEW,
        max_age: dt.timedelta | None = None,
        interval: float = 0.5,
        cache_tiles: int = 4096,
        witnesses: Sequence[WitnessEndpoint] = (),
    ) -> None:
        self.storage = storage
        self.origin = origin
        self.verifier_key = verifier_key
        self._signer = signer
        self._clock = clock
        self._config = config or SequencerConfig()
        self._skew, self._max_age = skew, max_age
        self._events = WriterEvents()
        cache = FullTileCache(cache_tiles)
        self.tree = StoredTree(
            storage,
            verifier_key,
            origin,
            cache,
            interval=interval,
            trusted=self._config.trusted,
        )
        self._source = _Published(self.tree, self._sequenced)
        self.reader = LogReader(storage, self._source, cache)
        self._paths_lock = threading.Lock()
        # The lease holder's own receipts come from its commits, not from the
        # stored tree: a thread looks at the stored tree after each of them
        # (coalesced), so that its checks and the key registry's replay go on
        # a commit at a time, never as a burst that holds the GIL.
        self._look_soon = threading.Event()
        self._closing = threading.Event()
        self._follower = threading.Thread(
            target=self._follow_commits, name="saksi-follow", daemon=True
        )
        self.entries = EntryReader(self.reader, storage)
        self.registry = RegistryReader(self.reader, storage)
        # Witnesses: the sequencer of the moment asks them and stores what
        # they cosign (``witnessing``, for its term); every member serves the
        # stored note once it has proven it (``witnessed``).
        self._endpoints = tuple(witnesses)
        self.witnessing: Witnessing | None = None
        self.witnessed: StoredWitnessed | None = None
        self._term: _Term | None = None
        if self._endpoints:
            self.witnessed = StoredWitnessed(
                storage.witnessed,
                self._source.tree,
                self.reader.consistency_proof,
                verifier_key,
                origin,
                [e.key for e in self._endpoints],
            )
            self._source.witnessed = self._witnessed_note
        self.codec = QueueCodec(derive_queue_key(signer, origin))
        self.queue = QueueClient(storage, self.codec)
        self.writer = ClusterWriter(self, clock, skew=skew, max_age=max_age)
        self.candidate = Candidate(
            storage,
            self._new_term,
            self.codec,
            failed=self.queue.fail,
            tick=self._tick,
            ended=self._term_ended,
        )

    def start(self) -> None:
        """Check the stored head, then serve and contend for the lease.

        Raises:
            IntegrityFailure: the stored head fails a check.
            StorageUnavailable: the database cannot be read.
        """
        self.tree.start()
        self.registry.election()
        if self.witnessed is not None:
            self.witnessed.refresh()
        self._follower.start()
        self.candidate.start()

    def _follow_commits(self) -> None:
        while not self._closing.is_set():
            self._look_soon.wait()
            self._look_soon.clear()
            if self._closing.is_set():
                return
            try:
                self.tree.refresh()
            except IntegrityFailure:  # the tree stopped serving: nothing to follow
                return
            except LedgerError as e:  # the next commit asks again
                log.warning("the stored tree not looked at after a commit: %s", e)
            else:
                self.writer.gate.follow()  # the replay, and its failures, are its
            self._closing.wait(FOLLOW_EVERY_S)  # commits meanwhile: one look

    def _tick(self) -> None:
        """Every lease interval: look at the stored tree and witnessed note.

        The lease holder serves its own term's note: the stored one is read
        again when the term ends (``_term_ended``), not every interval.
        """
        self.tree.tree()
        if self.witnessed is not None and self.witnessing is None:
            self.witnessed.refresh()

    def _witnessed_note(self) -> bytes | None:
        """The checkpoint this member serves: its own term's, or the stored one."""
        witnessing = self.witnessing
        own = None if witnessing is None else witnessing.published()
        if own is not None:
            return own
        return None if self.witnessed is None else self.witnessed.published()

    def _sequenced(self) -> SignedTree | None:
        """The tree this process's sequencer last committed, while it runs."""
        sequencer = self.candidate.sequencer
        if sequencer is None or not sequencer.running:
            return None
        try:
            return sequencer.tree()
        except StorageUnavailable:  # its term is starting
            return None

    def signed_size(self) -> int:
        """The size of the signed tree this member last checked (no reads).

        Raises:
            IntegrityFailure: the stored head failed its checks.
        """
        tree, failed = self.tree.last()
        if failed is not None:
            raise failed
        return 0 if tree is None else tree.size

    def observe(self, events: WriterEvents) -> None:
        """Report each term's commits and failures to ``events``."""
        self._events = events
        sequencer = self.candidate.sequencer
        if sequencer is not None:
            sequencer.events = events

    def _new_term(self) -> Sequencer[Submission]:
        storage = self.storage
        gate = RecordGate(
            storage,
            KeyRegistry(),
            ElectionState(),
            skew=self._skew,
            max_age=self._max_age,
        )
        publisher = CheckpointPublisher(self.origin, self._signer, self.verifier_key)
        sequencer: Sequencer[Submission] = Sequencer(
            storage,
            publisher,
            self._clock,
            FullTileCache(1024),
            gate,
            lambda _s: SUBMISSION_WEIGHT,
            self._config,
            outbox=self.codec.outcome,
            leased=True,
        )
        sequencer.events = self._events
        sequencer.start()
        self._term = _Term(sequencer, gate)
        if self._endpoints:
            try:
                self._witness_term(sequencer)
            except LedgerError:
                with contextlib.suppress(LedgerError):
                    sequencer.stop()
                raise
        return sequencer

    def _witness_term(self, sequencer: Sequencer[Submission]) -> None:
        """Ask the witnesses for this term's checkpoints, the first round now.

        A witness that cosigned a larger tree than the one this term starts
        from (the largest the database holds) ends the term before any write:
        the database was rolled back, or the key signed another tree.

        Raises:
            IntegrityFailure: a witness holds a larger tree.
        """
        # The served tree is the stored head now, as the term starts from it:
        # the note published is never larger than the tree the reads prove to.
        self.tree.refresh()
        proofs = LogReader(self.storage, _TermTree(sequencer), self.reader.cache)

        def current() -> tuple[int, bytes]:
            head = sequencer.head
            return head.size, head.note

        witnessing = Witnessing(
            current,
            proofs.consistency_proof,
            self.verifier_key,
            self.origin,
            self._endpoints,
            clock=self._clock,
            keep=self.storage.put_witnessed,
        )
        witnessing.begin()
        self.witnessing = witnessing

    def own_term(self) -> _Term | None:
        """This process's sequencer and its gate, while its term runs."""
        term = self._term
        if term is None:
            return None
        sequencer = term.sequencer
        if sequencer is not self.candidate.sequencer or not sequencer.running:
            return None
        return term

    def _term_ended(self) -> None:
        self._term = None
        witnessing, self.witnessing = self.witnessing, None
        if witnessing is not None:
            witnessing.stop()
        if self.witnessed is not None:
            with contextlib.suppress(LedgerError):
                self.witnessed.refresh()

    def receipts(
        self, decided: Sequence[_Decided]
    ) -> list[AppendReceipt | LedgerError]:
        """The receipt of each decided entry, or why it has none.

        Each is proven from one signed tree in the database that holds them
        all: its inclusion proof verified against the signed root, its entry
        parsed and holding the submitted record (``IntegrityFailure`` if not).

        Raises:
            StorageUnavailable: the database cannot be read, or the signed
                tree does not hold the entries yet.
            IntegrityFailure: the signed tree fails its checks.
        """
        if not decided:
            return []
        top = max(index for index, _, _ in decided)
        tree = self.tree.tree()
        deadline = time.monotonic() + 10
        while tree.size <= top:
            if time.monotonic() > deadline:
                raise StorageUnavailable(
                    f"entry {top} was decided but the signed tree does not hold "
                    "it yet; send the record again for its receipt"
                )
            tree = self.tree.refresh()
            if tree.size <= top:
                time.sleep(0.02)
        # The entries the look that reached this tree proved, and only the
        # others (repeats of older entries, a look that went further) read.
        wanted = [i for i, _, _ in decided]
        rows = self.tree.grown(wanted)
        missing = [i for i in wanted if i not in rows]
        if missing:
            rows.update(
                (row.index, row.data) for row in self.storage.read_entries_at(missing)
            )
        nodes = self.reader.nodes(tree)
        out: list[AppendReceipt | LedgerError] = []
        for index, duplicate, submission in decided:
            try:
                out.append(
                    self._proven(
                        tree, nodes, index, rows.get(index), duplicate, submission
                    )
                )
            except LedgerError as e:
                out.append(e)
        return out

    def commit_receipt(self, committed: Committed) -> AppendReceipt:
        """The receipt of an entry this process's own sequencer just appended.

        From the commit itself, as one process's writer makes it (no database
        read, so on the event loop): the signed tree it committed and the
        proofs of its run of new leaves, built once per commit (``RunPaths``)
        and shared by its entries; each proof is checked against the commit's
        signed root before it is given.

        Raises:
            IntegrityFailure: the proof does not lead to the signed root.
            OutOfRange: the entry is not one the commit appended.
        """
        commit = committed.commit
        tree = SignedTree(commit.head, commit.state)
        index = committed.index
        if commit.paths is None:
            self._look_soon.set()  # a new commit: see _follow_commits
        paths = commit.run_paths(lambda: self.reader.nodes(tree), self._paths_lock)
        proof = tuple(paths.path(index))
        leaf = hash_leaf(committed.data)
        try:
            verify_inclusion(index, tree.size, leaf, list(proof), tree.head.root)
        except VerificationError as e:
            raise IntegrityFailure(
                f"entry {index}, just committed, does not prove into its tree: {e}"
            ) from e
        return AppendReceipt(
            index,
            leaf,
            tree.size,
            tree.head.note,
            proof,
            committed.duplicate,
            committed.data,
        )

    @staticmethod
    def _proven(
        tree: SignedTree,
        nodes: NodeReader,
        index: int,
        data: bytes | None,
        duplicate: bool,
        submission: Submission,
    ) -> AppendReceipt:
        if data is None:
            raise IntegrityFailure(f"entry {index} is not stored")
        leaf = hash_leaf(data)
        proof = build_inclusion_proof(nodes, index, tree.size)
        try:
            verify_inclusion(index, tree.size, leaf, proof, tree.head.root)
            logged = parse_log_entry(data)
        except VerificationError as e:
            raise IntegrityFailure(
                f"entry {index} is not the one the signed tree holds: {e}"
            ) from e
        if hashlib.sha256(logged.envelope.payload).digest() != submission.payload_hash:
            raise IntegrityFailure(
                f"entry {index}, which the sequencer named, does not hold the "
                "submitted record"
            )
        return AppendReceipt(
            index, leaf, tree.size, tree.head.note, tuple(proof), duplicate, data
        )

    def witness_status(self) -> list[dict[str, object]]:
        """Each witness's state, as ``/v1/log`` lists it.

        The counters and errors are the asking process's: a member that does
        not sequence now shows what the served note says (sizes only).
        """
        witnessing = self.witnessing
        if witnessing is not None:
            return witnessing.status()
        return [
            {
                "witness": w.name,
                "url": e.url,
                "cosigned_size": w.cosigned_size,
                "cosignatures": w.cosignatures,
                "failures": w.failures,
                "last_error": "",
            }
            for e, w in zip(self._endpoints, self._witness_health(), strict=True)
        ]

    def _witness_health(self) -> tuple[WitnessHealth, ...]:
        witnessing = self.witnessing
        if witnessing is not None:
            return witnessing.health()
        return () if self.witnessed is None else self.witnessed.health()

    def health(self) -> LogHealth:
        """A snapshot for readiness and metrics (no database read)."""
        tree, failed = self.tree.last()
        size = 0 if tree is None else tree.size
        failure = self.candidate.failure
        stopped = None
        if failed is not None:
            stopped = "the stored head failed its checks"
        elif isinstance(failure, IntegrityFailure):
            stopped = "writes stopped (integrity failure)"
        sequencer = self.candidate.sequencer
        return LogHealth(
            integrated_size=size,
            signed_at=0.0 if tree is None else tree.head.made_at_ms / 1000,
            published_size=size,
            queue_depth=self.queue.waiting
            + (0 if sequencer is None else sequencer.queue_depth),
            stopped=stopped,
            witnesses=self._witness_health(),
            pool=self.storage.pool_status(),
            database_errors=self.storage.failures(),
            now=self._clock(),
        )

    def close(self) -> None:
        """Give the lease up, stop waiting for outcomes, close the database."""
        try:
            self._closing.set()
            self._look_soon.set()
            if self._follower.is_alive():
                self._follower.join(timeout=5)
            self.candidate.stop()  # its term's witnessing stops with it
            self.queue.close()
            self.writer.gate.close()
        finally:
            self.storage.close()
