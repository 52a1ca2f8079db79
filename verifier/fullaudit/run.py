"""Running an audit over a log's entry bundles, on every core.

``examine`` (one entry alone: parsing, schema, signatures, arithmetic, and a
form against the election state) runs in worker processes, one entry bundle per
task; ``Auditor.apply`` (what needs the log before the entry) runs here, in log
order. Each worker is told the keys the registry has learned since its last
task, so it can check most signatures itself; a signature by a key granted too
recently for the worker to know is checked by the auditor against its registry
at that position. Likewise each worker is told the election-state records
(regions, candidate lists, parties) applied since its last task and decides
forms against that state; the auditor takes the verdict when its own state is
at the same version and decides the form again when not. The outcome is exactly
the sequential one.

Tasks go round-robin to the workers with at most ``DEPTH`` in flight each, so
memory stays bounded whatever the log's size.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from multiprocessing.connection import Connection
from typing import Any

from verifier.fullaudit.auditor import Auditor
from verifier.fullaudit.examiner import Examined, examine
from verifier.record import parse_record
from verifier.rules.state import ElectionState

__all__ = ["ExaminerPool", "default_workers", "run_audit"]

DEPTH = 3  # tasks in flight per worker


def default_workers() -> int:
    """One worker per core, none on a single core."""
    cores = os.cpu_count() or 1
    return cores if cores > 1 else 0


def _worker(conn: Connection, skew: Any) -> None:  # noqa: ANN401 (a timedelta)
    keys: dict[str, bytes] = {}
    state, version = ElectionState(), 0
    while True:
        task = conn.recv()
        if task is None:
            return
        first, entries, learned, records = task
        indices = _indices(first, len(entries))
        keys.update(learned)
        for payload in records:  # accepted by the auditor: they parse
            state.apply(parse_record(payload))
            version += 1
        election = (state, version)
        conn.send(
            [
                _without_body(examine(i, e, keys.get, skew, election))
                for i, e in zip(indices, entries, strict=True)
            ]
        )


def _indices(first: int | Sequence[int], count: int) -> Sequence[int]:
    """The indices of a bundle's entries: from ``first`` on, or as listed."""
    return range(first, first + count) if isinstance(first, int) else first


def _without_body(examined: Examined) -> Examined:
    """A form the election state has decided, sent back without its body.

    What the auditor still reads of it is its stage; the rest is in the
    payload bytes, which it parses again only if it must decide the form again.
    """
    record = examined.record
    if record is not None and examined.state_version >= 0:
        stage = record.body.get("stage")
        examined.record = dataclasses.replace(record, body={"stage": stage})
    return examined


class ExaminerPool:
    """Worker processes, each fed by a thread of its own.

    Tasks are sent while results are read, so neither side ever waits on a full
    pipe for the other. A pool serves one auditor (it tracks what each worker
    has been told of it); after an error part-way through, close it.
    """

    def __init__(
        self,
        workers: int,
        skew: Any,  # noqa: ANN401 (a timedelta)
        method: str | None = None,
    ) -> None:
        # ``fork`` by default (fast; the audit forks before it starts any
        # thread). A process with threads of its own passes ``forkserver``.
        available = multiprocessing.get_all_start_methods()
        if method is None or method not in available:
            method = "fork" if "fork" in available else None
        context: Any = multiprocessing.get_context(method)
        self.conns: list[Connection] = []
        self.procs = []
        for _ in range(workers):
            mine, theirs = context.Pipe()
            proc = context.Process(target=_worker, args=(theirs, skew), daemon=True)
            proc.start()
            theirs.close()
            self.conns.append(mine)
            self.procs.append(proc)
        self.told = [0] * workers  # how many of the auditor's keys each knows
        self.told_state = [0] * workers  # how many state records each has applied
        self.outboxes: list[queue.Queue[Any]] = [queue.Queue() for _ in range(workers)]
        self.feeders = [
            threading.Thread(target=_feed, args=(conn, box), daemon=True)
            for conn, box in zip(self.conns, self.outboxes, strict=True)
        ]
        for feeder in self.feeders:
            feeder.start()

    def send(self, worker: int, task: Any) -> None:  # noqa: ANN401
        """Queue ``task`` for ``worker``."""
        self.outboxes[worker].put(task)

    def close(self) -> None:
        """Stop the workers (after what they were sent)."""
        for box in self.outboxes:
            box.put(None)
        for feeder in self.feeders:
            feeder.join(timeout=5)
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()


def _feed(conn: Connection, box: queue.Queue[Any]) -> None:
    while True:
        task = box.get()
        try:
            conn.send(task)
        except OSError:
            return  # the worker is gone; the reader will notice
        if task is None:
            return


def run_audit(
    bundles: Iterable[tuple[int | Sequence[int], list[bytes]]],
    auditor: Auditor,
    workers: int = 0,
    progress: Callable[[int], None] | None = None,
    save_every: int = 0,
    *,
    pool: ExaminerPool | None = None,
    on_applied: Callable[[Examined], None] | None = None,
) -> None:
    """Apply every entry of ``bundles`` ((first index, entries), in order).

    A selection (``Auditor(sparse=True)``) gives each bundle's indices as a
    list instead of its first index.

    With ``workers`` > 0 (or a ``pool`` the caller keeps) the entries are
    examined in worker processes. With ``save_every`` > 0 the auditor's state
    is saved, unconfirmed, after about that many entries at a time: an
    interrupted audit resumes from the last step, and the store's write-ahead
    log stays small. ``on_applied`` is called with each entry once applied (a
    form decided by a worker carries its stage, not its whole body).
    """
    show = progress or (lambda _done: None)
    after = on_applied or (lambda _examined: None)
    saved = auditor.size

    def applied(done: int) -> None:
        nonlocal saved
        if save_every > 0 and auditor.size - saved >= save_every:
            auditor.save(confirmed=False)
            saved = auditor.size
        show(done)

    if workers <= 0 and pool is None:
        for first, entries in bundles:
            for index, entry in zip(
                _indices(first, len(entries)), entries, strict=True
            ):
                examined = examine(
                    index,
                    entry,
                    auditor.public_key,
                    auditor.skew,
                    (auditor.election, auditor.state_version),
                )
                auditor.apply(examined)
                after(examined)
            applied(auditor.size)
        return
    own = pool is None
    working = pool or ExaminerPool(workers, auditor.skew)
    try:
        for results in _examined(working, iter(bundles), auditor):
            for item in results:
                auditor.apply(item)
                after(item)
            applied(results[-1].index + 1 if results else auditor.size)
    finally:
        if own:
            working.close()


def _examined(
    pool: ExaminerPool,
    bundles: Iterator[tuple[int | Sequence[int], list[bytes]]],
    auditor: Auditor,
) -> Iterator[list[Examined]]:
    """Results in bundle order, keeping every worker busy."""
    in_flight: deque[int] = deque()  # which worker holds each pending task
    turn = 0
    exhausted = False
    while True:
        while not exhausted and len(in_flight) < DEPTH * len(pool.conns):
            try:
                first, entries = next(bundles)
            except StopIteration:
                exhausted = True
                break
            learned = auditor.keys[pool.told[turn] :]
            pool.told[turn] = len(auditor.keys)
            records = auditor.state_records[
                pool.told_state[turn] - auditor.state_base :
            ]
            pool.told_state[turn] = auditor.state_version
            auditor.state_told(min(pool.told_state))
            pool.send(turn, (first, entries, learned, records))
            in_flight.append(turn)
            turn = (turn + 1) % len(pool.conns)
        if not in_flight:
            return
        yield pool.conns[in_flight.popleft()].recv()
