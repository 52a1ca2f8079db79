"""Cluster write benchmark: signed appends through the members of one log.

    python -m bench.cluster [--count 8000] [--batch-rounds 2] [--kills 10]
                            [--out BENCHMARKS.md]

In one run, on 127.0.0.1, every server started and stopped here:

* signed appends, one envelope per request and 100 per batch request, with 64
  and 256 concurrent clients, on SQLite (one ``saksi serve``, the baseline) and
  on PostgreSQL with ``saksi serve --workers 1``, ``2`` and ``4`` (each worker
  a member of the log's cluster, all on one address), each on a fresh log:
  appends/s, p50/p99 request latency, and the CPU (user + system, from /proc)
  of the server processes, of PostgreSQL and of the load generator;
* takeover: ``--workers 3`` under a steady paced load, the worker holding the
  sequencer lease SIGKILLed ``--kills`` times: from each kill to the lease's
  token moving on, and to the first acknowledged write sent after the kill.

The load generator and the records are ``bench.http``'s (each record a
``keys.grant/v1`` the log's admin signs). PostgreSQL is a throwaway cluster
under /tmp (``tests.pg.PgCluster``). Prints the section; ``--out`` writes it
into BENCHMARKS.md (``cluster``), with the issue's targets judged and what
a 16-core machine would do, from the CPU per append.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from bench.http import (
    PASS,
    Connection,
    bench_env,
    envelopes,
    free_port,
    pct,
    progress,
    saksi,
    start_server,
)
from bench.report import machine, write_section
from cli.local import DB_FILE
from keys import load_key_file
from ledger.storage.lease import LEASE_TTL

if TYPE_CHECKING:
    from tests.pg import PgCluster

CLIENTS = (64, 256)
WORKERS = (1, 2, 4)
BATCH = 100
ORIGIN = "bench.saksi.example/cluster"
_TICK = os.sysconf("SC_CLK_TCK")
_RETRY_PAUSE = 1.0  # after a 503 or 429: the Retry-After the server gives
_ANSWER_TIMEOUT = 120.0  # one request's answer at most, then sent again


# ---------------------------------------------------------------- CPU, /proc


def _stat(path: str) -> list[str] | None:
    try:
        text = Path(path).read_text()
    except OSError:  # the process or thread is gone
        return None
    return text.rsplit(")", 1)[1].split()


def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                out += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children")
                        .read_text().split()]  # fmt: skip
    return out


def _tree(pid: int) -> dict[int, tuple[float, float]]:
    """Each live process of ``pid``'s tree: (its own CPU s, its reaped children's)."""
    out: dict[int, tuple[float, float]] = {}
    todo = [pid]
    while todo:
        current = todo.pop()
        fields = _stat(f"/proc/{current}/stat")
        if fields is None:
            continue
        own = (int(fields[11]) + int(fields[12])) / _TICK
        reaped = (int(fields[13]) + int(fields[14])) / _TICK
        out[current] = (own, reaped)
        todo += _children(current)
    return out


def _threads(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of ``pid``."""
    out: dict[int, float] = {}
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            fields = _stat(f"/proc/{pid}/task/{task}/stat")
            if fields is not None:
                out[int(task)] = (int(fields[11]) + int(fields[12])) / _TICK
    return out


def _total(tree: dict[int, tuple[float, float]]) -> float:
    # A process that exits moves its time into its parent's reaped share,
    # so the sum over the tree never loses what a dead worker spent.
    return sum(own + reaped for own, reaped in tree.values())


def _role(name: str) -> str:
    """What a serving process's thread does, from its Python name."""
    if name == "MainThread":
        return "event loop"
    if name == "saksi-sequencer":
        return "sequencer"
    if name == "saksi-pump":
        return "pump"
    if name.startswith(("uvloop_", "asyncio_", "ThreadPoolExecutor")):
        return "executor"
    return "other"


@dataclass(frozen=True)
class Usage:
    """CPU seconds spent over one measured stretch, by whom."""

    seconds: float  # wall clock
    server: float  # every process of the served log (a killed one included)
    members: dict[int, float]  # each serving process's own
    roles: dict[int, dict[str, float]]  # each serving process's, by thread role
    database: float  # every PostgreSQL process
    database_busiest: float  # its busiest single process (a backend)
    load: float  # this process (the load generator)


class Meter:
    """Reads /proc at the start of a stretch and again at its end."""

    def __init__(self, server: Server, database_pid: int | None) -> None:
        self._server, self._db = server, database_pid
        self._wall, self._load = time.perf_counter(), time.process_time()
        self._tree = _tree(server.pid)
        self._threads = {p: _threads(p) for p in server.members()}
        self._dbtree = _tree(database_pid) if database_pid else {}

    def read(self, names: dict[int, str]) -> Usage:
        """What was spent since this meter was made (``names``: thread names)."""
        tree = _tree(self._server.pid)
        dbtree = _tree(self._db) if self._db else {}
        members: dict[int, float] = {}
        roles: dict[int, dict[str, float]] = {}
        for pid in self._server.members():
            members[pid] = (
                tree.get(pid, (0.0, 0.0))[0] - self._tree.get(pid, (0.0, 0.0))[0]
            )
            before = self._threads.get(pid, {})
            spent: dict[str, float] = collections.defaultdict(float)
            for tid, seconds in _threads(pid).items():
                role = "event loop" if tid == pid else _role(names.get(tid, ""))
                spent[role] += seconds - before.get(tid, 0.0)
            roles[pid] = dict(spent)
        busiest = max(
            (
                own - self._dbtree.get(p, (0.0, 0.0))[0]
                for p, (own, _) in dbtree.items()
            ),
            default=0.0,
        )
        return Usage(
            seconds=time.perf_counter() - self._wall,
            server=_total(tree) - _total(self._tree),
            members=members,
            roles=roles,
            database=_total(dbtree) - _total(self._dbtree),
            database_busiest=busiest,
            load=time.process_time() - self._load,
        )


def _py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profile:
    """py-spy sampling each serving process over a case, waits included.

    Tells each thread's name (so /proc's CPU can be put to the sequencer, the
    event loop...) and how much of the wall clock the sequencer thread and
    each event loop were busy: working, waiting for the database or for the
    GIL, as opposed to waiting for work. Nothing if py-spy is not installed.
    """

    RATE = 50  # samples per second per process

    def __init__(self, pids: list[int], directory: Path) -> None:
        self._spies: dict[int, tuple[subprocess.Popen[bytes], Path]] = {}
        spy = _py_spy()
        if spy is None:
            return
        for pid in pids:
            out = directory / f"profile-{pid}.txt"
            out.unlink(missing_ok=True)
            self._spies[pid] = (
                subprocess.Popen(
                    [spy, "record", "--pid", str(pid), "--idle", "--threads",
                     "--nonblocking", "--rate", str(self.RATE), "--format", "raw",
                     "--output", str(out)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                ),
                out,
            )  # fmt: skip

    def stop(self) -> tuple[dict[int, str], dict[int, dict[str, float]]]:
        """Thread names by tid, and each process's busy share by role (0 to 1)."""
        names: dict[int, str] = {}
        busy: dict[int, dict[str, float]] = {}
        for pid, (spy, out) in self._spies.items():
            spy.send_signal(signal.SIGINT)  # it writes what it sampled, then exits
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
                continue
            samples: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
            with contextlib.suppress(OSError):
                for line in out.read_text(errors="replace").splitlines():
                    stack, _, count = line.rpartition(" ")
                    head, *frames = stack.split(";")
                    found = re.match(r"thread \((\d+)\): (.*)", head)
                    if not found or not count.isdigit():
                        continue
                    tid, name = int(found[1]), found[2]
                    names[tid] = name
                    role = "event loop" if tid == pid else _role(name)
                    samples[role][0] += int(count)
                    samples[role][1] += int(count) * (not _idle(role, frames))
            busy[pid] = {r: b / n for r, (n, b) in samples.items() if n}
        return names, busy


def _idle(role: str, frames: list[str]) -> bool:
    """Whether a sampled stack is a thread waiting for work (not for I/O)."""
    leaf = frames[-1] if frames else ""
    if role == "event loop":  # in the loop's own C code: polling (or parsing)
        return leaf.startswith(("Runner.run", "BaseEventLoop.run_forever"))
    if role == "sequencer":  # waiting on its condition for submissions
        return any(
            f.startswith("Sequencer._run") and nxt.startswith("Condition.wait")
            for f, nxt in itertools.pairwise(frames)
        )
    if role == "executor":
        return leaf.startswith("_worker")
    return False


# ---------------------------------------------------------------- servers


class Server:
    """One ``saksi serve`` (``--workers N``) of a log, started and stopped here."""

    def __init__(
        self, log_dir: Path, workers: int, env: dict[str, str], db: str | None = None
    ) -> None:
        self.log_dir, self.workers, self.env, self.db = log_dir, workers, env, db
        self.output = log_dir.parent / f"serve-{workers}.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> Server:
        """Serve, and return once every worker serves and /healthz answers.

        Raises:
            RuntimeError: it stopped, or did not serve within ``timeout``.
        """
        self.port = free_port()
        flags = ["--no-security-log"]
        if self.db:
            flags += ["--db", self.db]
        if self.workers > 1:
            flags += ["--workers", str(self.workers)]
        with self.output.open("ab") as out:
            self.proc = start_server(
                self.log_dir, self.port, *flags, env=self.env, output=out
            )
        self.wait_serving(self.workers, timeout)
        return self

    def serving(self) -> int:
        """How many processes have said they serve (replacements included)."""
        return self.output.read_text(errors="replace").count("saksi: serving ")

    def wait_serving(self, count: int, timeout: float) -> None:
        """Wait until ``count`` processes have said they serve and /healthz answers.

        Raises:
            RuntimeError: the server stopped, or ``timeout`` passed.
        """
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"saksi serve stopped:\n{self.tail()}")
            if self.serving() >= count:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                        return
            if time.monotonic() > deadline:
                raise RuntimeError(f"saksi serve did not serve:\n{self.tail()}")
            time.sleep(0.1)

    def members(self) -> list[int]:
        """The processes that serve: the workers, or the server itself."""
        return sorted(_children(self.pid)) if self.workers > 1 else [self.pid]

    def tail(self, lines: int = 30) -> str:
        text = self.output.read_text(errors="replace") if self.output.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def problems(self) -> collections.Counter[str]:
        """The warnings and errors it logged, by message (numbers masked)."""
        text = self.output.read_text(errors="replace") if self.output.exists() else ""
        found: collections.Counter[str] = collections.Counter()
        for line in text.splitlines():
            if line.startswith(("WARNING", "ERROR", "CRITICAL", "Traceback")):
                found[re.sub(r"\d+", "N", line)[:200]] += 1
        return found

    def stop(self) -> None:
        """SIGTERM, then SIGKILL (the workers too) after 30 s; never raises."""
        if self.proc is None:
            return
        workers = self.members() if self.workers > 1 else []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in workers:  # a worker left behind: only if it is still ours
            with contextlib.suppress(OSError):
                if str(self.log_dir) in Path(f"/proc/{pid}/cmdline").read_text():
                    os.kill(pid, signal.SIGKILL)


def new_log(directory: Path, db: str | None, env: dict[str, str]) -> Any:
    """``saksi init`` of a log in ``directory`` (on ``db`` if given); its admin key."""
    args = ["init", "--origin", ORIGIN, "--dir", str(directory), "--kdf", "interactive"]
    saksi(*args, *(["--db", db] if db else []), env=env)
    return load_key_file(directory / "admin.key", PASS.encode())


class LogDb:
    """A connection of its own to a log's database, for what the run counts."""

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self._engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self._conn = self._engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        )

    def _one(self, sql: str) -> Any:
        import sqlalchemy as sa

        return self._conn.execute(sa.text(sql)).one()

    def size(self) -> int:
        """The signed tree's size (the head row)."""
        return int(self._one("SELECT size FROM tree_head WHERE id = 1")[0])

    def commits(self) -> int:
        """Checkpoints stored: one per commit of the sequencer."""
        return int(self._one("SELECT count(*) FROM checkpoints")[0])

    def lease(self) -> tuple[int, int | None]:
        """The lease's token, and its holder's pid (``host:pid:random``)."""
        token, holder = self._one(
            "SELECT token, holder FROM sequencer_lease WHERE id = 1"
        )
        parts = str(holder).split(":")
        return int(token), int(parts[-2]) if len(parts) >= 3 else None

    def queue_length(self) -> int:
        """Rows in the write queue: queued, not yet decided."""
        return int(self._one("SELECT count(*) FROM write_queue")[0])

    def close(self) -> None:
        self._conn.close()
        self._engine.dispose()


class Sampler:
    """Calls ``read`` every ``interval`` s in a thread; keeps (time, value)."""

    def __init__(self, read: Callable[[], Any], interval: float) -> None:
        self.samples: list[tuple[float, Any]] = []
        self._read, self._interval = read, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # a failed read is a gap
                self.samples.append((time.perf_counter(), self._read()))
            self._stop.wait(self._interval)

    def stop(self) -> list[tuple[float, Any]]:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.samples


# ---------------------------------------------------------------- the load


@dataclass
class Tally:
    """What the clients saw; every envelope is acknowledged once at most."""

    acked: int = 0  # envelopes answered with a receipt (201, or 200: a repeat)
    repeats: int = 0  # of those, answered 200 (an answer lost, then sent again)
    pushed_back: int = 0  # envelopes answered 503 or 429 (sent again)
    cut: int = 0  # requests whose answer never came (sent again)
    failed: collections.Counter[str] = field(default_factory=collections.Counter)
    unsent: int = 0  # envelopes left when the time ran out
    latencies: list[float] = field(default_factory=list)  # answered requests
    acks: list[tuple[float, float]] = field(default_factory=list)  # (sent, answered)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.acked / self.seconds if self.seconds else 0.0


def _body(unit: list[bytes], batch: bool) -> bytes:
    return b'{"envelopes": [' + b",".join(unit) + b"]}" if batch else unit[0]


def _settle_answer(
    unit: list[bytes], status: int, answer: bytes, batch: bool, tally: Tally
) -> list[bytes]:
    """Count one answer; the envelopes to send again."""
    if status in (503, 429):  # the whole request, all its envelopes
        tally.pushed_back += len(unit)
        return unit
    if not batch:
        if status in (200, 201):
            tally.acked += 1
            tally.repeats += status == 200
        else:
            tally.failed[f"HTTP {status}"] += 1
        return []
    if status != 200:
        tally.failed[f"batch HTTP {status}"] += len(unit)
        return []
    again = []
    for envelope, result in zip(unit, json.loads(answer)["results"], strict=True):
        each = int(result["status"])
        if each in (200, 201):
            tally.acked += 1
            tally.repeats += each == 200
        elif each in (503, 429):
            tally.pushed_back += 1
            again.append(envelope)
        else:
            tally.failed[f"{each} {result['problem'].get('type', '')}"] += 1
    return again


async def drive(
    port: int,
    units: Iterable[list[bytes]],
    clients: int,
    *,
    batch: bool,
    seconds: float,
    rate: float = 0.0,
    stop: asyncio.Event | None = None,
    tally: Tally | None = None,
) -> Tally:
    """Send every unit (one request each) with ``clients`` concurrent clients.

    A unit pushed back (503, 429) or cut (no answer) is sent again; within a
    batch only the envelopes pushed back. ``rate`` paces the requests over all
    clients (per second; 0: as fast as answered). Stops sending after
    ``seconds`` or once ``stop`` is set. Counts into ``tally`` if given (to
    watch it while it runs).
    """
    tally = Tally() if tally is None else tally
    source = iter(units)
    again: collections.deque[list[bytes]] = collections.deque()
    busy = 0
    start = time.perf_counter()
    deadline = start + seconds
    slot = start

    def take() -> list[bytes] | None:
        return again.popleft() if again else next(source, None)

    async def client() -> None:
        nonlocal busy, slot
        connection = Connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline and not (stop and stop.is_set()):
                unit = take()
                if unit is None:
                    if not busy:
                        return
                    await asyncio.sleep(0.01)  # an answer may send some again
                    continue
                if rate:  # the next free slot; no debt piles up while stalled
                    now = time.perf_counter()
                    mine = max(slot, now)
                    slot = mine + 1 / rate
                    if mine > now:
                        await asyncio.sleep(mine - now)
                busy += 1
                sent = time.perf_counter()
                try:
                    status, answer = await asyncio.wait_for(
                        connection.exchange(
                            "POST",
                            "/v1/entries/batch" if batch else "/v1/entries",
                            _body(unit, batch),
                        ),
                        _ANSWER_TIMEOUT,
                    )
                except (OSError, EOFError, IndexError, ValueError, TimeoutError):
                    # asyncio.IncompleteReadError is an EOFError.
                    tally.cut += 1
                    connection.close()
                    connection = Connection("127.0.0.1", port)
                    again.append(unit)
                    await asyncio.sleep(0.05)
                    continue
                finally:
                    busy -= 1
                answered = time.perf_counter()
                acked = tally.acked
                resend = _settle_answer(unit, status, answer, batch, tally)
                if status in (200, 201):
                    tally.latencies.append(answered - sent)
                if tally.acked > acked:
                    tally.acks.append((sent, answered))
                if resend:
                    again.append(resend)
                    await asyncio.sleep(_RETRY_PAUSE)
        finally:
            connection.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    tally.seconds = time.perf_counter() - start
    tally.unsent = sum(len(u) for u in again) + sum(len(u) for u in source)
    return tally


# ---------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One configuration, client count and request size, measured."""

    backend: str  # "sqlite" or "postgres"
    workers: int
    clients: int
    batch: int
    tally: Tally
    usage: Usage
    growth: int  # how much the signed tree grew over the case
    commits: int  # the sequencer's commits (checkpoints) over the case
    holder: int  # the serving process that sequenced (held the lease)
    busy: dict[int, dict[str, float]]  # wall share busy, by process and role
    queue: tuple[float, int] | None  # the write queue's mean and max length

    @property
    def label(self) -> str:
        if self.backend == "sqlite":
            return "SQLite, one process"
        return f"PostgreSQL, --workers {self.workers}"

    @property
    def complete(self) -> bool:
        """Every envelope acknowledged, and the tree grew by exactly those."""
        t = self.tally
        return self.growth == t.acked and not t.failed and not t.unsent


def measure(
    work: Path,
    workers: int,
    cases: Sequence[tuple[int, int, int]],
    *,
    cluster: PgCluster | None = None,
    seconds: float = 180,
) -> list[Case]:
    """Appends on a fresh log: SQLite (``cluster`` None) or ``--workers`` members.

    ``cases`` are (clients, envelopes per request, envelopes); each runs on
    the same served log, in order, with its records signed before the log is
    served.

    Raises:
        RuntimeError: the server did not start or stopped.
    """
    env = bench_env()
    db = cluster.new_database() if cluster is not None else None
    work.mkdir(parents=True, exist_ok=True)
    admin = new_log(work / "log", db, env)
    signed = [envelopes(admin, n, f"w{workers}c{c}b{b}-") for c, b, n in cases]
    server = Server(work / "log", workers, env, db)
    logdb = LogDb(db or f"sqlite:///{work / 'log' / DB_FILE}")
    out: list[Case] = []
    try:
        server.start()
        pg_pid = _postmaster(cluster) if cluster is not None else None
        for (clients, batch, _count), bodies in zip(cases, signed, strict=True):
            progress(f"  {clients} clients, {batch} per request: {len(bodies):,}")
            units = [bodies[i : i + batch] for i in range(0, len(bodies), batch)]
            size, commits = logdb.size(), logdb.commits()
            queue_db = LogDb(db) if db else None
            queue = Sampler(queue_db.queue_length, 0.1) if queue_db else None
            profile = Profile(server.members(), work)
            try:
                meter = Meter(server, pg_pid)
                tally = asyncio.run(
                    drive(server.port, units, clients, batch=batch > 1, seconds=seconds)
                )
            finally:
                names, busy = profile.stop()
                lengths = [v for _, v in queue.stop()] if queue else []
                if queue_db is not None:
                    queue_db.close()
            usage = meter.read(names)
            holder = logdb.lease()[1] if db else server.pid
            out.append(
                Case(
                    "postgres" if db else "sqlite",
                    workers,
                    clients,
                    batch,
                    tally,
                    usage,
                    logdb.size() - size,
                    logdb.commits() - commits,
                    holder or 0,
                    busy,
                    (statistics.fmean(lengths), max(lengths)) if lengths else None,
                )
            )
            progress(f"    {_brief(out[-1])}")
    finally:
        server.stop()
        logdb.close()
        for problem, count in server.problems().most_common(8):
            progress(f"  server logged {count}x: {problem}")
    return out


def _postmaster(cluster: PgCluster) -> int:
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


def _brief(case: Case) -> str:
    t = case.tally
    if not t.latencies:
        return f"nothing acknowledged; failed {dict(t.failed)}"
    return (
        f"{t.rate:,.0f} appends/s, p50 {statistics.median(t.latencies) * 1000:.1f} ms"
        f", p99 {pct(t.latencies, 0.99) * 1000:.1f} ms; acked {t.acked}, tree +"
        f"{case.growth} in {case.commits} commits, 503s {t.pushed_back}, cut "
        f"{t.cut}, failed {sum(t.failed.values())}, unsent {t.unsent}"
    )


# ---------------------------------------------------------------- takeover


@dataclass(frozen=True)
class Kill:
    """One SIGKILL of the lease holder: seconds from the kill to each event."""

    lease_moved: float | None  # the lease's token moved on (None: not in time)
    first_ack: float | None  # a write sent after the kill was acknowledged
    replaced: float | None  # a replacement worker said it serves
    cut: int  # requests whose answer the kill cut off (sent again)
    size: int  # entries in the log when it was killed


@dataclass(frozen=True)
class Takeover:
    """The kills, and what the load saw over all of them."""

    kills: list[Kill]
    tally: Tally
    growth: int
    workers: int
    rate: float
    clients: int


def measure_takeover(
    work: Path,
    cluster: PgCluster,
    kills: int,
    *,
    workers: int = 3,
    rate: float = 300.0,
    clients: int = 32,
    settle: float = 3.0,
    timeout: float = 60.0,
) -> Takeover:
    """Members under a paced load; the lease holder SIGKILLed ``kills`` times.

    Before each kill every worker serves (the last one killed replaced) and
    ``settle`` seconds pass; the holder is the pid in the lease row.

    Raises:
        RuntimeError: the server did not start, or the lease holder is not
            one of its workers.
    """
    env = bench_env()
    db = cluster.new_database()
    work.mkdir(parents=True, exist_ok=True)
    admin = new_log(work / "log", db, env)
    # Enough records for the whole stretch at the pace asked, bounded.
    needed = int(rate * (settle * 2 + kills * (settle + 12)))
    bodies = envelopes(admin, min(needed, 200_000), "takeover-")
    server = Server(work / "log", workers, env, db)
    logdb = LogDb(db)
    try:
        server.start()
        before = logdb.size()
        tally = Tally()
        done = asyncio.run(
            _kill_under_load(
                server, db, bodies, tally, kills, rate, clients, settle, timeout
            )
        )
        growth = logdb.size() - before
    finally:
        server.stop()
        logdb.close()
        for problem, count in server.problems().most_common(8):
            progress(f"  server logged {count}x: {problem}")
    return Takeover(done, tally, growth, workers, rate, clients)


async def _kill_under_load(
    server: Server,
    db: str,
    bodies: list[bytes],
    tally: Tally,
    kills: int,
    rate: float,
    clients: int,
    settle: float,
    timeout: float,
) -> list[Kill]:
    stop = asyncio.Event()
    limit = settle + kills * (2 * timeout + settle) + 60
    load = asyncio.create_task(
        drive(
            server.port,
            ([b] for b in bodies),
            clients,
            batch=False,
            seconds=limit,
            rate=rate,
            stop=stop,
            tally=tally,
        )
    )
    watch_db, size_db = LogDb(db), LogDb(db)
    watch = Sampler(watch_db.lease, 0.01)
    done: list[Kill] = []
    try:
        for number in range(kills):
            await asyncio.to_thread(
                server.wait_serving, server.workers + number, timeout
            )
            await asyncio.sleep(settle)
            if load.done():
                raise RuntimeError("the load stopped (out of records?)")
            token, holder = await _holder(server, watch, timeout)
            seen, acked_at = len(watch.samples), len(tally.acks)
            cut, size = tally.cut, size_db.size()
            killed = time.perf_counter()
            os.kill(holder, signal.SIGKILL)
            moved = first = None
            while time.perf_counter() - killed < timeout:
                samples = watch.samples
                for at, (now_token, _) in samples[seen:]:
                    if moved is None and at > killed and now_token > token:
                        moved = at - killed
                seen = len(samples)
                acks = tally.acks
                for sent, answered in acks[acked_at:]:
                    if first is None and sent > killed:
                        first = answered - killed
                acked_at = len(acks)
                if moved is not None and first is not None:
                    break
                await asyncio.sleep(0.005)
            replaced = None
            with contextlib.suppress(RuntimeError):
                await asyncio.to_thread(
                    server.wait_serving, server.workers + number + 1, timeout
                )
                replaced = time.perf_counter() - killed
            done.append(Kill(moved, first, replaced, tally.cut - cut, size))
            progress(f"  kill {number + 1}/{kills}: {_kill_line(done[-1])}")
    finally:
        stop.set()
        await load
        watch.stop()
        watch_db.close()
        size_db.close()
    return done


async def _holder(server: Server, watch: Sampler, timeout: float) -> tuple[int, int]:
    """The lease's token and holder, once the holder is a live worker."""
    deadline = time.monotonic() + timeout
    while True:
        if watch.samples:
            token, holder = watch.samples[-1][1]
            if holder in server.members():
                return int(token), int(holder)
        if time.monotonic() > deadline:
            raise RuntimeError("the lease holder is not one of the workers")
        await asyncio.sleep(0.05)


def _kill_line(kill: Kill) -> str:
    return (
        f"lease moved after {_s(kill.lease_moved)}, first write acknowledged after "
        f"{_s(kill.first_ack)}, replacement serving after {_s(kill.replaced)}, "
        f"{kill.cut} requests cut"
    )


def _s(value: float | None) -> str:
    return "(none in time)" if value is None else f"{value:.2f} s"


# ---------------------------------------------------------------- the report


def _per(seconds: float, count: int) -> str:
    return f"{seconds / count * 1e6:,.0f} µs" if count else "-"


def _ms(values: list[float], q: float) -> str:
    return f"{pct(values, q) * 1000:,.1f} ms" if values else "-"


def _ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}" if base else "-"


def _cores(seconds: float, wall: float) -> str:
    return f"{seconds / wall:.2f}" if wall else "-"


def _rate_of(cases: list[Case], backend: str, workers: int, clients: int, batch: int
             ) -> float | None:  # fmt: skip
    for c in cases:
        if (c.backend, c.workers, c.clients, c.batch) == (
            backend, workers, clients, batch,
        ):  # fmt: skip
            return c.tally.rate
    return None


def appends_table(cases: list[Case]) -> list[str]:
    """The appends table: rates, ratios, latency, CPU per append."""
    lines = [
        "| log | clients | envelopes per request | appends/s | vs --workers 1 "
        "| vs SQLite | p50 latency | p99 latency | server CPU per append "
        "| PostgreSQL CPU per append | load generator CPU per append |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cases:
        t, u = c.tally, c.usage
        one = _rate_of(cases, "postgres", 1, c.clients, c.batch)
        lite = _rate_of(cases, "sqlite", 1, c.clients, c.batch)
        pg = c.backend == "postgres"
        lines.append(
            f"| {c.label} | {c.clients} | {c.batch} | {t.rate:,.0f} "
            f"| {_ratio(t.rate, one) if pg else '-'} "
            f"| {_ratio(t.rate, lite) if pg else '-'} "
            f"| {_ms(t.latencies, 0.5)} | {_ms(t.latencies, 0.99)} "
            f"| {_per(u.server, t.acked)} "
            f"| {_per(u.database, t.acked) if pg else '-'} "
            f"| {_per(u.load, t.acked)} |"
        )
    return lines


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def cpu_table(cases: list[Case]) -> list[str]:
    """Cores busy over each case, by process and thread; commits; the queue."""
    lines = [
        "| log | clients | envelopes per request | each serving process (the "
        "lease holder first) | the holder's threads: sequencer / pump / event loop "
        "/ executor / other | sequencer thread busy | event loops busy (each) "
        "| PostgreSQL (its busiest process) | load generator | all "
        "| commits/s (appends per commit) | write queue rows, mean / max |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cases:
        u, wall = c.usage, c.usage.seconds
        order = sorted(u.members, key=lambda p: (p != c.holder, -u.members[p]))
        each = ", ".join(_cores(u.members[p], wall) for p in order)
        roles = u.roles.get(c.holder, {})
        threads = " / ".join(
            _cores(roles.get(r, 0.0), wall)
            for r in ("sequencer", "pump", "event loop", "executor", "other")
        )
        busy = c.busy.get(c.holder, {})
        loops = ", ".join(_share(c.busy.get(p, {}).get("event loop")) for p in order)
        database = (
            f"{_cores(u.database, wall)} ({_cores(u.database_busiest, wall)})"
            if c.backend == "postgres"
            else "-"
        )
        everything = u.server + u.database + u.load
        commits = (
            f"{c.commits / wall:,.0f} ({c.growth / c.commits:,.1f})"
            if c.commits
            else "-"
        )
        queue = f"{c.queue[0]:,.0f} / {c.queue[1]:,}" if c.queue else "-"
        lines.append(
            f"| {c.label} | {c.clients} | {c.batch} | {each} | {threads} "
            f"| {_share(busy.get('sequencer'))} | {loops if c.busy else '-'} "
            f"| {database} | {_cores(u.load, wall)} | {_cores(everything, wall)} "
            f"| {commits} | {queue} |"
        )
    return lines


def takeover_lines(result: Takeover) -> list[str]:
    """The takeover summary and each kill."""

    def row(name: str, values: list[float | None]) -> str:
        got = [v for v in values if v is not None]
        missing = len(values) - len(got)
        extra = f" ({missing} not within the wait)" if missing else ""
        if not got:
            return f"| {name} | - | -{extra} |"
        return f"| {name} | {statistics.median(got):.2f} s | {max(got):.2f} s{extra} |"

    t = result.tally
    kills = result.kills
    lines = [
        f"`saksi serve --workers {result.workers}` on PostgreSQL, {result.clients} "
        f"clients sending single envelopes paced at {result.rate:,.0f}/s in all; "
        f"{len(kills)} times, the worker the lease row names was SIGKILLed once "
        "every worker served and the load had run steadily for a few seconds. "
        f"The lease runs {LEASE_TTL:g} s; the lease of a holder whose session is "
        f"gone is taken once it went unrenewed for half of that, by a member "
        f"looking every {LEASE_TTL / 5:g} s.",
        "",
        "| from the SIGKILL to | p50 | max |",
        "|---|---|---|",
        row("the lease's token moving on", [k.lease_moved for k in kills]),
        row(
            "the first acknowledged write sent after the kill",
            [k.first_ack for k in kills],
        ),
        row("a replacement worker serving", [k.replaced for k in kills]),
        "",
        f"Over the whole stretch: {t.acked:,} appends acknowledged ({t.repeats:,} of "
        f"them answered as repeats: sent again after the kill cut their answer), "
        f"the tree grew by {result.growth:,}; {t.cut:,} requests cut by the kills, "
        f"{t.pushed_back:,} envelopes answered 503, {sum(t.failed.values()):,} failed"
        + (f" ({_failures(t)})" if t.failed else "")
        + ".",
    ]
    starts = [
        (k.size, k.first_ack - k.lease_moved)
        for k in kills
        if k.first_ack is not None and k.lease_moved is not None
    ]
    if len(starts) >= 2:
        (small, first), (large, last) = starts[0], starts[-1]
        lines += [
            "",
            "From the lease moving on to the first acknowledged write (the new "
            "term's start-up: the signed tree recovered, the record index's seal "
            "checked, the key registry replayed from the first entry): "
            f"{first:.2f} s at the first kill ({small:,} entries), {last:.2f} s "
            f"at the last ({large:,} entries). Every record of this workload is a "
            "key grant, so the registry grows with the log.",
        ]
    return lines


def _failures(t: Tally) -> str:
    return ", ".join(f"{n} {what}" for what, n in t.failed.most_common(5))


def _case(cases: list[Case], workers: int, clients: int) -> Case | None:
    for c in cases:
        if (c.backend, c.workers, c.clients, c.batch) == (
            "postgres", workers, clients, 1,
        ):  # fmt: skip
            return c
    return None


def targets(cases: list[Case], cores: int | None = None) -> list[str]:
    """The issue's two targets, each with its verdict from this run.

    Beside the two-process ratio, the most these cores allow it: every core
    busy with what an append cost at ``--workers 2`` (the servers, PostgreSQL
    and the load generator together, all on this machine), over the rate of
    one process.
    """
    cores = cores or os.cpu_count() or 1
    out = []
    for clients in CLIENTS:
        one, two = _case(cases, 1, clients), _case(cases, 2, clients)
        if one is None or two is None or not one.tally.rate or not two.tally.acked:
            continue
        a, b = one.tally.rate, two.tally.rate
        verdict = "met" if b / a >= 1.6 else "not met"
        u = two.usage
        per = (u.server + u.database + u.load) / two.tally.acked
        ceiling = cores / per if per else 0.0
        out.append(
            f"* Two processes against one, single envelopes, {clients} clients: "
            f"{b / a:.2f}x ({b:,.0f} against {a:,.0f} appends/s; target 1.6x: "
            f"{verdict}). The most {cores} cores allow two processes here: "
            f"{ceiling:,.0f} appends/s ({cores} cores over the {per * 1e6:,.0f} µs "
            f"of CPU each append took, servers, PostgreSQL and load generator "
            f"together), {ceiling / a:.2f}x one process."
        )
    for c in cases:
        if c.clients == 64 and c.batch == 1 and c.tally.latencies:
            p99 = pct(c.tally.latencies, 0.99)
            verdict = "met" if p99 < 0.1 else "not met"
            out.append(
                f"* p99 latency at 64 clients, single envelopes, {c.label}: "
                f"{p99 * 1000:,.1f} ms (target under 100 ms: {verdict})."
            )
    return out


def extrapolation(cases: list[Case], cores: int = 16) -> list[str]:
    """What ``cores`` cores, and N such machines, would do, from CPU per append.

    From the PostgreSQL case of each request size with the most appends/s:
    the members' CPU per append spreads over every core; the sequencer's
    thread and PostgreSQL's busiest process (the sequencer's session) each
    run on one core at most. Then what held the measured run back.
    """
    out = []
    for batch in (1, BATCH):
        pg = [c for c in cases if c.backend == "postgres" and c.batch == batch]
        if not pg:
            continue
        best = max(pg, key=lambda c: c.tally.rate)
        u, n = best.usage, best.tally.acked
        if not n or not best.commits:
            continue
        server, database = u.server / n, u.database / n
        sequencer = u.roles.get(best.holder, {}).get("sequencer", 0.0) / n
        session = u.database_busiest / n
        limits = {
            "the members and PostgreSQL together": (
                cores / (server + database) if server + database else 0.0
            ),
            "the sequencer's thread": 1 / sequencer if sequencer else 0.0,
            "PostgreSQL's busiest process": 1 / session if session else 0.0,
        }
        if not any(limits.values()):
            continue  # a run too short for the CPU clock to count anything
        first_value, first = min((v, k) for k, v in limits.items() if v)
        serial = min(
            [v for k, v in limits.items() if v and not k.startswith("the members")]
            or [0.0]
        )
        what = "Single envelopes" if batch == 1 else f"Batches of {batch}"
        out.append(
            f"* **{what}**, from {best.label} with {best.clients} clients "
            f"({best.tally.rate:,.0f} appends/s here). Per append: "
            f"{server * 1e6:,.0f} µs of CPU in the server processes, "
            f"{sequencer * 1e6:,.0f} µs of it in the sequencer's thread; "
            f"{database * 1e6:,.0f} µs in PostgreSQL, {session * 1e6:,.0f} µs of "
            f"it in its busiest process. By CPU alone, on one {cores}-core "
            "machine: "
            + ", ".join(f"{k} {v:,.0f}/s" for k, v in limits.items() if v)
            + f"; the first to saturate is {first}, at about {first_value:,.0f} "
            f"appends/s. Members on N {cores}-core machines, PostgreSQL on its "
            f"own: N x {_ceiling(cores, server)} for the members, "
            f"{_ceiling(cores, database)} for PostgreSQL's CPU, {serial:,.0f}/s "
            f"for the one sequencer and its session, so "
            + (
                f"beyond about {serial * server / cores:,.1f} machines more members "
                "add nothing"
                if serial * server / cores > 1
                else "one machine of members already reaches the sequencer's ceiling"
            )
            + f". {_held_back(best)}"
        )
    return out


def _ceiling(cores: int, cost: float) -> str:
    """``cores`` seconds of CPU a second over ``cost`` seconds per append."""
    if not cost:
        return "(too little CPU in this run to measure)"
    return f"{cores / cost:,.0f}/s"


def _held_back(case: Case) -> str:
    """What bounded the measured rate of ``case``, from its CPU and busy shares."""
    u, wall = case.usage, case.usage.seconds
    here = os.cpu_count() or 1
    used = (u.server + u.database + u.load) / wall
    busy = case.busy.get(case.holder, {}).get("sequencer")
    out = (
        f"Here the sequencer committed every {wall / case.commits * 1000:,.0f} ms "
        f"({case.growth / case.commits:,.1f} appends a commit), its thread using "
        f"{u.roles.get(case.holder, {}).get('sequencer', 0.0) / wall:.2f} cores"
        + (f" and busy {busy:.0%} of the time" if busy is not None else "")
        + "; "
    )
    if busy is not None and busy >= 0.7:
        out += (
            "the rest of its time is waits for PostgreSQL's round trips and for "
            "the GIL: one commit after another, its rate is a commit's latency "
            "times its size: this serial loop, not CPU, set the rate here, and "
            "more cores lift it only through the larger commits that more waiting "
            "work makes. "
        )
    else:
        out += "the sequencer was not the limit. "
    members = {p: v / wall for p, v in u.members.items()}
    top = max(members, key=lambda p: members[p])
    if used >= 0.85 * here:
        out += f"The cores were saturated ({used:.2f} of {here} busy)"
    else:
        out += f"The cores were not saturated ({used:.2f} of {here} busy)"
    if members[top] >= 0.85:
        roles = u.roles.get(top, {})
        out += (
            f"; one serving process was at its one-core (GIL) ceiling, "
            f"{members[top]:.2f} cores, {roles.get('executor', 0.0) / wall:.2f} of "
            "them in its executor threads (the write queue's inserts and the "
            "receipts: a look at the signed tree and a read of the entries per "
            "commit, a proof per envelope) and "
            f"{roles.get('event loop', 0.0) / wall:.2f} in its event loop"
        )
    if len(members) > 1 and min(members.values()) < 0.5 * members[top]:
        out += (
            "; the serving processes were loaded unevenly (the kernel hands the "
            "keep-alive connections to whichever worker accepts first)"
        )
    return out + "."


def section(
    cases: list[Case], takeover: Takeover | None, command: str, quiet: str
) -> str:
    """BENCHMARKS.md's ``cluster`` section."""
    growth_ok = all(c.complete for c in cases)
    lines = [
        "## The cluster: signed appends through N members of one PostgreSQL log",
        "",
        f"Command: `{command}` (writes this section).",
        "",
        machine(
            "Every server, PostgreSQL (a throwaway cluster on a unix socket, fsync "
            "and synchronous_commit on) and the load generator (`bench.http`'s raw "
            "keep-alive HTTP/1.1 clients, one process) share the cores. Each log is "
            "fresh; its cases run in the order listed. " + quiet
        ),
        "",
        "### Appends (each a signed keys.grant/v1, answered with a receipt proven "
        "from the signed tree)",
        "",
        *appends_table(cases),
        "",
        "Latency is per request (a batch request's answer carries its 100 "
        "receipts). CPU per append is user + system time over the case (from "
        "/proc) of every server process (the supervisor and its workers), of every "
        "PostgreSQL process and of the load generator, divided by the appends "
        "acknowledged. "
        + (
            "Every envelope was acknowledged, and each log's tree grew by exactly "
            "the appends acknowledged."
            if growth_ok
            else "NOT every envelope was acknowledged, or a tree did not grow by the "
            "appends acknowledged: "
            + "; ".join(
                f"{c.label}, {c.clients}x{c.batch}: acknowledged {c.tally.acked}, "
                f"tree +{c.growth}, failed {_failures(c.tally) or 0}, unsent "
                f"{c.tally.unsent}"
                for c in cases
                if not c.complete
            )
            + "."
        ),
    ]
    pushed = [c for c in cases if c.tally.pushed_back or c.tally.cut]
    if pushed:
        lines += [
            "",
            "Envelopes answered 503 (overloaded: too many submissions in "
            f"flight; sent again after {_RETRY_PAUSE:g} s, the Retry-After) or "
            "whose answer was cut: "
            + "; ".join(
                f"{c.label}, {c.clients}x{c.batch}: {c.tally.pushed_back:,} "
                f"envelopes answered 503, {c.tally.cut} requests cut"
                for c in pushed
            )
            + ".",
        ]
    lines += [
        "",
        "### Where the CPU went (cores busy: CPU seconds over the case's seconds)",
        "",
        *cpu_table(cases),
        "",
        "Cores busy are CPU seconds (from /proc) over the case's seconds; the "
        "threads are told apart by their Python names. *Busy* is the share of "
        "py-spy's samples (50 a second of each serving process, waits included) "
        "in which the thread was not waiting for work: a sequencer waiting for "
        "PostgreSQL or for the GIL is busy, one waiting for submissions is not; "
        "an event loop counts as idle while in its own C code (polling, and also "
        "parsing HTTP). Commits are the checkpoints stored over the case (one a "
        "commit); the write queue's length is sampled every 100 ms from the "
        "database (a row stays until the commit that decides it).",
    ]
    if not any(c.busy for c in cases):
        lines.append(
            "(py-spy was not installed for this run: no thread names or busy "
            "shares; `pip install py-spy` for them.)"
        )
    if takeover is not None:
        lines += ["", "### Takeover: the sequencer SIGKILLed", ""]
        lines += takeover_lines(takeover)
    lines += ["", "### The issue's targets", "", *targets(cases)]
    lines += [
        "",
        "### A 16-core machine, and N machines (an extrapolation)",
        "",
        "From the CPU per append measured above, assuming: it stays what it was "
        "here (measured with everything competing for the cores, so likely "
        "less on a larger, quieter machine); members scale with cores and machines "
        "(each one process per core, sharing nothing but the database); the one "
        "sequencer's thread and PostgreSQL's busiest process (the sequencer's "
        "session, whose statements run one after another) each get at most one "
        "core; the database's disk keeps up with the commits (group commit grows "
        "with the load); clients are elsewhere. The sequencer's thread shares its "
        "process's GIL with that member's requests, so its ceiling is reached "
        "sooner than one core.",
        "",
        *extrapolation(cases),
    ]
    return "\n".join(lines)


def wait_quiet(below: float, patience: float, every: float = 30.0) -> str:
    """Wait until the 1-minute load average is under ``below``; a sentence on it."""
    started = time.monotonic()
    while True:
        load = float(Path("/proc/loadavg").read_text().split()[0])
        waited = time.monotonic() - started
        if load < below:
            return f"Load average {load:.2f} when measuring began" + (
                f" (after waiting {waited / 60:.0f} min)." if waited > 1 else "."
            )
        if waited >= patience:
            return (
                f"The load average stayed above {below:g} for {waited / 60:.0f} "
                f"min ({load:.2f} when measuring began): measured anyway, on a busy "
                "machine."
            )
        progress(f"load average {load:.2f}: waiting for it to fall below {below:g}")
        time.sleep(every)


def plan(count: int, rounds: int) -> list[tuple[int, int, int]]:
    """(clients, envelopes per request, envelopes) of each case of a log."""
    single = [(clients, 1, count) for clients in CLIENTS]
    batched = [(clients, BATCH, clients * BATCH * rounds) for clients in CLIENTS]
    return single + batched


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when every append was acknowledged and counted."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--count", type=int, default=8000, help="single-envelope appends per case"
    )
    parser.add_argument(
        "--batch-rounds",
        type=int,
        default=2,
        help="batch requests per client per batched case (default 2)",
    )
    parser.add_argument(
        "--workers",
        default=",".join(map(str, WORKERS)),
        help="the PostgreSQL configurations (default 1,2,4)",
    )
    parser.add_argument("--kills", type=int, default=10, help="takeovers (default 10)")
    parser.add_argument(
        "--takeover-rate",
        type=float,
        default=300.0,
        help="appends/s of the paced load the kills happen under (default 300)",
    )
    parser.add_argument(
        "--takeover-clients",
        type=int,
        default=32,
        help="clients of that load (default 32)",
    )
    parser.add_argument(
        "--case-seconds", type=float, default=180.0, help="each case's time limit"
    )
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=1.0,
        help="measure once the 1-minute load average is below this (default 1.0)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=1500.0,
        help="seconds to wait for the load average to fall (default 1500)",
    )
    parser.add_argument("--out", type=Path, help="write the section into this report")
    args = parser.parse_args(argv)
    try:
        workers = [int(w) for w in args.workers.split(",")]
    except ValueError:
        parser.error("--workers takes numbers, e.g. 1,2,4")
    if args.count < 1 or args.batch_rounds < 1 or args.kills < 0:
        parser.error("need --count >= 1, --batch-rounds >= 1, --kills >= 0")
    if not all(1 <= w <= 16 for w in workers) or args.takeover_rate <= 0:
        parser.error("need --workers between 1 and 16 and a --takeover-rate above 0")
    from tests.pg import PgCluster, find_pg_bin

    bindir = find_pg_bin()
    if bindir is None:
        progress("cluster: PostgreSQL (initdb, pg_ctl) is not installed")
        return 3
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        quiet = wait_quiet(args.quiet_below, args.quiet_wait)
    except KeyboardInterrupt:
        progress("cluster: interrupted before measuring")
        return 130
    progress(quiet)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="saksi-cluster-"))
    cluster = PgCluster(bindir)
    cases = plan(args.count, args.batch_rounds)
    try:
        cluster.start()
        progress("SQLite, one saksi serve")
        results = measure(work / "sqlite", 1, cases, seconds=args.case_seconds)
        for n in workers:
            progress(f"PostgreSQL, saksi serve --workers {n}")
            results += measure(
                work / f"pg-{n}", n, cases, cluster=cluster, seconds=args.case_seconds
            )
        takeover = None
        if args.kills:
            progress(f"takeover: --workers 3, {args.kills} kills")
            takeover = measure_takeover(
                work / "takeover",
                cluster,
                args.kills,
                rate=args.takeover_rate,
                clients=args.takeover_clients,
            )
    except KeyboardInterrupt:
        progress(f"cluster: interrupted; servers stopped (files kept in {work})")
        return 130
    finally:
        cluster.stop()
    minutes = (time.monotonic() - started) / 60
    command = "python -m bench.cluster " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    text = section(
        results, takeover, command.strip(), f"{quiet} The run took {minutes:.0f} min."
    )
    print(text)
    if args.out:
        write_section(args.out, "cluster", text)
    ok = all(c.complete for c in results) and (
        takeover is None or takeover.growth == takeover.tally.acked
    )
    shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
