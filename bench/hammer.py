"""The hammer: many writers and readers against a served log, every answer verified.

    python -m bench.hammer [--backend sqlite|postgres] [--writers 64]
        [--appends 20000] [--seconds S] [--write-rate R] [--repeat 0.1]
        [--readers 4] [--kills K] [--json] [--out BENCHMARKS.md]

A fresh log is made with ``saksi init``, a real witness (``saksi-verify
witness``) cosigns its checkpoints, and ``saksi serve`` runs it on 127.0.0.1
(SQLite, or a throwaway PostgreSQL cluster). A canary key is granted, and:

* **writers** (``--writers``) append signed ``monitor.canary/v1`` records, each
  its own subject, one envelope per request; ``--repeat`` of the requests (10%
  by default) send again an envelope already acknowledged, which must answer
  200 with the index it got the first time. Every receipt is checked: its leaf
  hash is the hash of its entry, the entry holds the payload sent, and its
  inclusion proof leads to its checkpoint, signed by the log's key;
* **a checker** follows the log as an observer does (the verifier's
  ``TrustedLog`` with the witness's key in its policy): each new checkpoint
  must be witnessed and consistent with the last (a proof built from the tiles);
  every acknowledged entry must then be proven included in a witnessed
  checkpoint from the tiles, and the time from its receipt to that checkpoint
  is its merge delay;
* **a full reader** reads every entry bundle from entry 0 and recomputes the
  root of each witnessed checkpoint it reaches (the Trillian cross-check);
  acknowledged entries must be in it byte for byte;
* **random readers** (``--readers``) ask for inclusion proofs of random
  entries and hash tiles, and verify what they get.

With ``--kills K`` the server is killed with SIGKILL at K random moments during
the appends and started again (R1 of RELIABILITY.md): a write whose answer was
lost is sent again until it has a definite answer, and at the end the tree must
have grown by exactly the number of distinct payloads sent.

It stops after ``--appends`` acknowledged appends or ``--seconds``, whichever
comes first, then waits for a witnessed checkpoint covering every receipt.
Every error is counted by kind. The server's resident memory and open files
are sampled during the run (a soak must keep them flat). Only 127.0.0.1 is
used; everything it starts is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import datetime as dt
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.http import PASS, ROOT, Connection, free_port, progress, wait_ready
from bench.report import machine, write_section
from keys import Ed25519Signer
from verifier.canary import CANARY, canary_subject
from verifier.checkpoint import verify_inclusion_in_checkpoint
from verifier.cosignature import WitnessPolicy
from verifier.dsse import envelope_to_json, sign_envelope
from verifier.errors import VerificationError
from verifier.fullaudit.tree import TreeHasher
from verifier.note import VerifierKey
from verifier.observe import catch_up
from verifier.proof_check import verify_inclusion
from verifier.record import (
    RECORD_PAYLOAD_TYPE,
    format_timestamp,
    parse_log_entry,
    record_payload,
)
from verifier.rfc6962 import hash_leaf
from verifier.tile_client import FetchError, TileHashes, TileLog, http_fetch
from verifier.tile_format import TILE_WIDTH, parse_tile, tile_path
from verifier.trusted_log import Fork, TrustedLog

__all__ = ["Plan", "Served", "hammer", "main", "served_log"]

ORIGIN = "hammer.saksi.example/log"
_POST, _CHECKPOINT = "POST /v1/entries", "GET /log/checkpoint"
# A request whose answer never came: the server went away or cut it.
_LOST = (OSError, IndexError, ValueError, asyncio.IncompleteReadError, TimeoutError)


@dataclass
class Plan:
    """How hard to hammer, and for how long."""

    writers: int = 64
    appends: int = 20_000
    seconds: float | None = None
    write_rate: float = 0.0  # appends/s over all writers; 0: as fast as it goes
    repeat: float = 0.1
    readers: int = 4
    read_rate: float = 0.0  # reads/s over all random readers; 0: as fast
    kills: int = 0
    sample_every: float = 5.0
    seed: int = 20240214
    settle: float = 120.0  # seconds allowed for the last receipts to be witnessed


# ---------------------------------------------------------------- the server


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAKSI_")}
    env.update(
        SAKSI_KEY_PASSPHRASE=PASS,
        SAKSI_KEY_RATE="1000000",
        SAKSI_KEY_BURST="1000000",
        SAKSI_CLIENT_RATE="1000000",
        SAKSI_CLIENT_BURST="1000000",
        SAKSI_KEEP_ALIVE_TIMEOUT="3600",
        SAKSI_MAX_CONNECTIONS="4096",
        SAKSI_MAX_IN_FLIGHT="4096",
    )
    env.update(extra or {})
    return env


def _run(*args: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed: {out.stderr[-2000:]}")
    return out.stdout


class Served:
    """A log served on 127.0.0.1 with one witness: start, kill, start again."""

    def __init__(self, work: Path, db: str | None) -> None:
        self.work = work
        self.dir = work / "log"
        self.db = db
        self.env = _env()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: subprocess.Popen[bytes] | None = None
        self.witness: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        init = ["-m", "api", "init", "--origin", ORIGIN, "--dir", str(self.dir)]
        init += ["--kdf", "interactive"]
        if db:
            init += ["--db", db]
        _run(*init, env=self.env)
        self.log_key = VerifierKey.parse(
            (self.dir / "log.vkey").read_text(encoding="utf-8").strip()
        )
        witness = json.loads(
            _run(
                "-m",
                "verifier",
                "witness-key",
                "--name",
                "witness.hammer.example",
                "--out",
                str(work / "witness.key"),
                "--json",
                env=self.env,
            )
        )
        self.witness_vkey = str(witness["vkey"])
        self.policy = WitnessPolicy((VerifierKey.parse(self.witness_vkey),), 1)
        self.witness_port = free_port()
        self.log = self.dir / "server.log"

    def start_witness(self) -> None:
        self.witness = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "verifier",
                "witness",
                "--log-key",
                str(self.dir / "log.vkey"),
                "--key-file",
                str(self.work / "witness.key"),
                "--listen",
                f"127.0.0.1:{self.witness_port}",
                "--state",
                str(self.work / "witness-state"),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> None:
        """``saksi serve`` on the same port; returns once it answers."""
        flags = ["--dir", str(self.dir), "--listen", f"127.0.0.1:{self.port}"]
        if self.db:
            flags += ["--db", self.db]
        flags += [
            "--witness",
            f"http://127.0.0.1:{self.witness_port}",
            self.witness_vkey,
            "--no-access-log",
        ]
        with self.log.open("ab") as log:
            self.server = subprocess.Popen(
                [sys.executable, "-m", "api", "serve", *flags],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=log,
            )
        wait_ready(self.url + "/healthz", timeout=120)

    @property
    def pid(self) -> int:
        assert self.server is not None
        return self.server.pid

    def kill(self) -> None:
        """SIGKILL the server (no clean shutdown of any kind)."""
        assert self.server is not None
        self.server.send_signal(signal.SIGKILL)
        self.server.wait(timeout=60)

    def restart(self) -> None:
        self.kill()
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        for process in (self.server, self.witness):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def canary_signer(self) -> Ed25519Signer:
        """A fresh key, granted the ``canary`` role by the log's admin."""
        signer = Ed25519Signer.generate("hammer-canary")
        _run(
            "-m",
            "api",
            "keys",
            "grant",
            "--url",
            self.url,
            "--log-key",
            str(self.dir / "log.vkey"),
            "--public-key",
            signer.public_key.hex(),
            "--role",
            "canary",
            "--admin-key",
            str(self.dir / "admin.key"),
            "--holder",
            "the hammer",
            env=self.env,
        )
        return signer

    def check(self) -> dict[str, Any]:
        """``saksi check`` of the stored log (the operator's full check)."""
        args = ["-m", "api", "check", "--dir", str(self.dir), "--json"]
        if self.db:
            args += ["--db", self.db]
        return dict(json.loads(_run(*args, env=self.env)))

    def audit(self, state: Path) -> dict[str, Any]:
        """``saksi-verify audit`` of the served log, as an observer runs it."""
        return dict(
            json.loads(
                _run(
                    "-m",
                    "verifier",
                    "audit",
                    "--log",
                    self.url,
                    "--key",
                    str(self.dir / "log.vkey"),
                    "--state",
                    str(state),
                    "--witness",
                    self.witness_vkey,
                    "--json",
                    "--workers",
                    "1",
                    env=self.env,
                )
            )
        )


@contextmanager
def served_log(
    backend: str, work: Path | None = None, db: str | None = None
) -> Iterator[Served]:
    """A fresh log served with its witness; everything started is stopped after.

    On ``postgres`` the log goes into ``db`` if given, else into a throwaway
    cluster started here.
    """
    tmp = Path(tempfile.mkdtemp(prefix="saksi-hammer-")) if work is None else work
    cluster = None
    if backend == "postgres" and db is None:
        from tests.pg import PgCluster, find_pg_bin

        bindir = find_pg_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL (initdb, pg_ctl) is not installed")
        cluster = PgCluster(bindir)
        cluster.start()
        db = cluster.new_database()
    elif backend not in ("sqlite", "postgres"):
        raise ValueError(f"unknown backend {backend!r}: sqlite or postgres")
    served = Served(tmp, db)
    try:
        served.start_witness()
        served.start()
        yield served
    finally:
        served.stop()
        if cluster is not None:
            cluster.stop()


# ---------------------------------------------------------------- the run


@dataclass
class Tally:
    """What the hammer saw; every list and counter is reported."""

    acked: int = 0
    repeats: int = 0
    repeat_mismatches: int = 0
    receipts_verified: int = 0
    receipt_failures: int = 0
    unknown: int = 0  # answers lost (connection cut): sent again later
    recovered: int = 0  # of those, already in the log when sent again
    reads: int = 0
    read_failures: int = 0
    checkpoints: int = 0
    consistency_checks: int = 0
    forks: int = 0
    inclusion_verified: int = 0
    inclusion_failures: int = 0
    full_read_entries: int = 0
    full_read_roots: int = 0
    full_read_mismatches: int = 0
    lost: int = 0  # acknowledged, yet not read back at their index with their bytes
    kills: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    # Per endpoint: requests sent, and those answered (any status below 500).
    asked: collections.Counter[str] = field(default_factory=collections.Counter)
    answered: collections.Counter[str] = field(default_factory=collections.Counter)
    latencies: list[float] = field(default_factory=list)
    merge_delays: list[float] = field(default_factory=list)
    samples: list[tuple[float, int, int]] = field(default_factory=list)

    def error(self, kind: str) -> None:
        self.errors[kind] += 1


class _State:
    """Shared between the writers, the checker and the readers."""

    def __init__(self, served: Served, signer: Ed25519Signer, plan: Plan) -> None:
        self.served = served
        self.signer = signer
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.tally = Tally()
        self.lock = threading.Lock()
        self.sequence = 0
        self.stop = threading.Event()
        self.writing = True
        # payload digest -> index, for every acknowledged payload
        self.index_of: dict[bytes, int] = {}
        # index -> (leaf hash, receipt time): not yet shown in a witnessed checkpoint
        self.pending: dict[int, tuple[bytes, float]] = {}
        # index -> leaf hash: not yet read back by the full reader
        self.unread: dict[int, bytes] = {}
        # The leaf hash of every entry the full reader has read, from 0: a
        # receipt that comes after its entry was read (a write whose first
        # answer was lost, answered again later) is checked against it.
        self.read_leaves: list[bytes] = []
        self.reservoir: list[bytes] = []  # acknowledged bodies to repeat
        self.retry: list[tuple[bytes, bytes]] = []  # (digest, body): outcome unknown
        self.witnessed_size = 0
        self.witnessed_root = b""
        self.started = time.monotonic()

    def finished(self) -> bool:
        """Whether the writers are to stop (another may have reached the count)."""
        return not self.writing

    def next_body(self) -> tuple[bytes, bytes]:
        """A new signed canary: (payload digest, request body)."""
        with self.lock:
            self.sequence += 1
            sequence = self.sequence
        now = format_timestamp(dt.datetime.now(dt.UTC))
        payload = record_payload(
            schema=CANARY.name,
            subject=canary_subject(self.signer.keyid, sequence),
            revision=0,
            prev=None,
            issued_at=now,
            body={"sequence": sequence, "sent_at": now},
        )
        envelope = sign_envelope(RECORD_PAYLOAD_TYPE, payload, [self.signer])
        body = json.dumps(envelope_to_json(envelope)).encode()
        return hash_leaf(payload), body


def _payload_digest(body: bytes) -> bytes:
    return hash_leaf(base64.b64decode(json.loads(body)["payload"]))


def _receipt(state: _State, digest: bytes, answer: bytes) -> tuple[int, bytes] | None:
    """Check one receipt; its index and leaf hash, or None (counted) if it fails."""
    tally = state.tally
    try:
        receipt = json.loads(answer)
        entry = base64.b64decode(receipt["entry"], validate=True)
        leaf = hash_leaf(entry)
        if leaf.hex() != receipt["leaf_hash"]:
            raise VerificationError("the receipt's leaf hash is not its entry's")
        logged = parse_log_entry(entry)
        if hash_leaf(logged.envelope.payload) != digest:
            raise VerificationError("the receipt's entry holds another payload")
        index = int(receipt["index"])
        verify_inclusion_in_checkpoint(
            receipt["checkpoint"].encode(),
            state.served.log_key,
            ORIGIN,
            index,
            leaf,
            [bytes.fromhex(h) for h in receipt["inclusion_proof"]],
        )
    except (ValueError, KeyError, TypeError, VerificationError) as e:
        tally.receipt_failures += 1
        tally.error(f"receipt: {type(e).__name__}")
        return None
    tally.receipts_verified += 1
    return index, leaf


async def _write(
    state: _State, connection: Connection, digest: bytes, body: bytes, repeat: bool
) -> Connection:
    """Send one envelope; account for its answer. Returns the connection to use next."""
    tally = state.tally
    started = time.perf_counter()
    tally.asked[_POST] += 1
    try:
        status, answer = await asyncio.wait_for(
            connection.exchange("POST", "/v1/entries", body), 60
        )
    except _LOST as e:
        connection.close()
        if isinstance(e, ConnectionRefusedError):
            tally.error("POST: connection refused")  # never sent: nothing to know
        else:
            # The answer is lost: the record is in the log once, or not at all.
            tally.unknown += 1
            tally.error(f"POST: answer lost ({type(e).__name__})")
        with state.lock:
            state.retry.append((digest, body))
        await asyncio.sleep(0.05)
        return Connection("127.0.0.1", state.served.port)
    tally.latencies.append(time.perf_counter() - started)
    if status < 500:
        tally.answered[_POST] += 1
    if status in (200, 201):
        checked = _receipt(state, digest, answer)
        if checked is None:
            return connection
        index, leaf = checked
        with state.lock:
            known = state.index_of.get(digest)
            if known is None:
                state.index_of[digest] = index
                state.pending[index] = (leaf, time.monotonic())
                if index < len(state.read_leaves):
                    if state.read_leaves[index] != leaf:
                        tally.full_read_mismatches += 1
                        tally.error(f"full read: entry {index} is not its receipt's")
                else:
                    state.unread[index] = leaf
                tally.acked += 1
                if status == 200:
                    tally.recovered += 1  # an unknown outcome that had landed
                if len(state.reservoir) < 4096:
                    state.reservoir.append(body)
                else:
                    state.reservoir[state.rng.randrange(4096)] = body
            elif known != index or status != 200:
                tally.repeat_mismatches += 1
                tally.error(f"repeat answered {status} at {index}, first at {known}")
        if repeat:
            tally.repeats += 1
        return connection
    try:
        cause = str(json.loads(answer).get("type", "")).rsplit("/", 1)[-1]
    except ValueError:
        cause = "not problem+json"
    tally.error(f"POST {status} {cause}")
    if status in (429, 503):
        with state.lock:
            state.retry.append((digest, body))
        await asyncio.sleep(0.05)
    return connection


async def _writer(state: _State, pace: Callable[[], float]) -> None:
    plan = state.plan
    connection = Connection("127.0.0.1", state.served.port)
    try:
        while state.writing:
            delay = pace()
            if delay > 0:
                await asyncio.sleep(delay)
            if state.finished():
                break
            with state.lock:
                again = state.retry.pop() if state.retry else None
                repeat = (
                    again is None
                    and state.reservoir
                    and state.rng.random() < plan.repeat
                )
                old = state.rng.choice(state.reservoir) if repeat else None
            if again is not None:
                digest, body = again
            elif old is not None:
                digest, body = _payload_digest(old), old
            else:
                digest, body = state.next_body()
            connection = await _write(state, connection, digest, body, old is not None)
            if state.tally.acked >= plan.appends:
                state.writing = False
    finally:
        connection.close()


def _pacer(rate: float, workers: int) -> Callable[[], float]:
    """Seconds each worker waits before its next request, for ``rate`` in all."""
    if rate <= 0:
        return lambda: 0.0
    gap = workers / rate
    return lambda: gap


async def _random_reader(state: _State, pace: Callable[[], float]) -> None:
    tally = state.tally
    rng = random.Random(state.rng.random())
    connection = Connection("127.0.0.1", state.served.port)
    try:
        while not state.stop.is_set():
            delay = pace()
            await asyncio.sleep(delay if delay > 0 else 0)
            size = state.witnessed_size
            if size == 0:
                await asyncio.sleep(0.1)
                continue
            if rng.random() < 0.75:
                index = rng.randrange(size)
                path = f"/v1/proofs/inclusion?index={index}"
            else:
                tile = rng.randrange(max(1, size // TILE_WIDTH))
                width = min(TILE_WIDTH, size - tile * TILE_WIDTH)
                path = "/log/" + tile_path(0, tile, width)
            endpoint = "GET /v1/proofs/inclusion" if "?" in path else "GET /log/tile"
            tally.asked[endpoint] += 1
            try:
                status, answer = await asyncio.wait_for(
                    connection.exchange("GET", path), 60
                )
            except asyncio.CancelledError:
                tally.asked[endpoint] -= 1  # the run ended, not the server
                raise
            except _LOST as e:
                connection.close()
                connection = Connection("127.0.0.1", state.served.port)
                tally.error(f"GET: no answer ({type(e).__name__})")
                await asyncio.sleep(0.05)
                continue
            if status < 500:
                tally.answered[endpoint] += 1
            if status != 200:
                tally.error(f"GET {status}")
                continue
            tally.reads += 1
            try:
                if path.startswith("/v1/"):
                    proof = json.loads(answer)
                    verify_inclusion_in_checkpoint(
                        proof["checkpoint"].encode(),
                        state.served.log_key,
                        ORIGIN,
                        int(proof["index"]),
                        bytes.fromhex(proof["leaf_hash"]),
                        [bytes.fromhex(h) for h in proof["inclusion_proof"]],
                    )
                else:
                    parse_tile(answer, width)
            except (ValueError, KeyError, TypeError, VerificationError) as e:
                tally.read_failures += 1
                tally.error(f"read: {type(e).__name__}")
    finally:
        connection.close()


def _checker(state: _State) -> None:
    """Follow the log as an observer; prove every receipt in a witnessed checkpoint."""
    tally = state.tally
    log = TileLog(http_fetch(state.served.url + "/log", timeout=30))
    trusted = TrustedLog(state.served.log_key, ORIGIN, state.served.policy)
    last = b""
    while True:
        finishing = state.stop.is_set()
        tally.asked[_CHECKPOINT] += 1
        try:
            note = log.checkpoint()
            tally.answered[_CHECKPOINT] += 1
            if note != last:
                update = catch_up(trusted, note, log)
                last = note
                tally.checkpoints += 1
                if update.proof:
                    tally.consistency_checks += 1
                _prove(state, log, update.checkpoint.size, update.checkpoint.root_hash)
        except Fork as e:
            tally.forks += 1
            tally.error(f"checkpoint: fork ({e})")
        except VerificationError:
            pass  # not witnessed yet: the policy wants the cosignature
        except FetchError as e:
            tally.error(f"checker: {'HTTP ' + str(e.status) if e.status else 'fetch'}")
        if finishing:
            return
        state.stop.wait(0.1)


def _prove(state: _State, log: TileLog, size: int, root: bytes) -> None:
    """Every pending receipt below ``size``: proven from the tiles, delay noted."""
    now = time.monotonic()
    with state.lock:
        if size < state.witnessed_size:
            # Consistent (the observer checked it) but older than one served
            # before: the full reader keeps reading to the larger one.
            state.tally.error("checkpoint: older than one served before")
            return
        due = sorted(i for i in state.pending if i < size)
        items = [(i, *state.pending.pop(i)) for i in due]
        state.witnessed_size, state.witnessed_root = size, root
    if not items:
        return
    hashes = TileHashes(log, size, cache=256)
    for number, (index, leaf, acked_at) in enumerate(items):
        try:
            proof = hashes.inclusion_proof(index, size)
            verify_inclusion(index, size, leaf, proof, root)
        except FetchError:
            # The log is unreachable (restarting): no verdict; try again later.
            with state.lock:
                for again, leaf_again, at in items[number:]:
                    state.pending.setdefault(again, (leaf_again, at))
            state.tally.error("inclusion: tiles not fetched")
            return
        except VerificationError as e:
            state.tally.inclusion_failures += 1
            state.tally.error(f"inclusion: {type(e).__name__}")
        else:
            state.tally.inclusion_verified += 1
        state.tally.merge_delays.append(now - acked_at)


def _full_reader(state: _State) -> None:
    """Read every entry from 0; recompute each witnessed root reached."""
    tally = state.tally
    log = TileLog(http_fetch(state.served.url + "/log", timeout=30))
    tree = TreeHasher()
    while True:
        finishing = state.stop.is_set()
        size, root = state.witnessed_size, state.witnessed_root
        if size > tree.size:
            try:
                for first, entries in log.entries(tree.size, size):
                    for offset, entry in enumerate(entries):
                        index = first + offset
                        leaf = hash_leaf(entry)
                        tree.add_leaf(leaf)
                        with state.lock:
                            expected = state.unread.pop(index, None)
                            if index == len(state.read_leaves):
                                state.read_leaves.append(leaf)
                        if expected is not None and expected != leaf:
                            tally.full_read_mismatches += 1
                            tally.error(f"full read: entry {index} changed")
                        tally.full_read_entries += 1
            except Exception as e:
                # A reader that died here would leave every later entry unread.
                tally.error(f"full read: {type(e).__name__}")
                tree = TreeHasher()  # start again from entry 0
                with state.lock:
                    state.read_leaves.clear()
                state.stop.wait(0.5)
                continue
            tally.full_read_roots += 1
            if tree.root() != root:
                tally.full_read_mismatches += 1
                tally.error(f"full read: the root of {size} entries differs")
        elif finishing:
            return
        state.stop.wait(0.2)


def _sample(state: _State) -> None:
    """The server's resident memory (KiB) and open files, now."""
    try:
        pid = state.served.pid
        status = Path(f"/proc/{pid}/status").read_text()
        rss = next(
            int(line.split()[1])
            for line in status.splitlines()
            if line.startswith("VmRSS:")
        )
        files = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration, AssertionError):
        return
    state.tally.samples.append((time.monotonic() - state.started, rss, files))


async def _killer(state: _State, moments: list[int]) -> None:
    """SIGKILL the server each time the acknowledged count passes a moment."""
    for moment in moments:
        while state.writing and state.tally.acked < moment:
            await asyncio.sleep(0.01)
        if not state.writing:
            return
        await asyncio.to_thread(state.served.restart)
        state.tally.kills += 1
        progress(f"  kill {state.tally.kills}/{len(moments)} at {moment} acknowledged")


async def _drive(state: _State) -> None:
    plan = state.plan
    write_pace = _pacer(plan.write_rate, plan.writers)
    read_pace = _pacer(plan.read_rate, max(plan.readers, 1))
    threads = [
        threading.Thread(target=_checker, args=(state,), name="checker"),
        threading.Thread(target=_full_reader, args=(state,), name="full-reader"),
    ]
    for thread in threads:
        thread.start()
    tasks = [
        asyncio.create_task(_writer(state, write_pace)) for _ in range(plan.writers)
    ]
    readers = [
        asyncio.create_task(_random_reader(state, read_pace))
        for _ in range(plan.readers)
    ]
    if plan.kills:
        rng = random.Random(plan.seed + 1)
        moments = sorted(rng.randrange(1, plan.appends) for _ in range(plan.kills))
        tasks.append(asyncio.create_task(_killer(state, moments)))
    deadline = None if plan.seconds is None else state.started + plan.seconds
    next_sample = time.monotonic()
    next_report = time.monotonic() + 10
    try:
        while state.writing:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                state.writing = False
                break
            if now >= next_sample:
                _sample(state)
                next_sample = now + plan.sample_every
            if now >= next_report:
                t = state.tally
                progress(
                    f"  {now - state.started:,.0f} s: {t.acked:,} acknowledged, "
                    f"{t.reads:,} reads, witnessed size {state.witnessed_size:,}, "
                    f"{sum(t.errors.values()):,} errors"
                )
                next_report = now + 10
            await asyncio.sleep(0.05)
        await asyncio.gather(*tasks)
        await _settle(state)
        _sample(state)
    finally:
        state.writing = False
        state.stop.set()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for thread in threads:
            await asyncio.to_thread(thread.join)


async def _settle(state: _State) -> None:
    """Resolve every unknown outcome, then wait for the witnesses to cover all."""
    connection = Connection("127.0.0.1", state.served.port)
    deadline = time.monotonic() + state.plan.settle
    try:
        while time.monotonic() < deadline:
            with state.lock:
                again = state.retry.pop() if state.retry else None
            if again is None:
                break
            connection = await _write(state, connection, *again, repeat=False)
    finally:
        connection.close()
    while time.monotonic() < deadline:
        with state.lock:
            if not state.pending and not state.unread:
                return
        await asyncio.sleep(0.1)
    with state.lock:
        if state.retry:
            state.tally.error(f"no definite answer in time: {len(state.retry)} writes")
        if state.pending or state.unread:
            state.tally.error(
                f"not shown in time: {len(state.pending)} receipts not in a "
                f"witnessed checkpoint, {len(state.unread)} not read back"
            )


def hammer(served: Served, plan: Plan) -> dict[str, Any]:
    """Run ``plan`` against ``served``; every figure and error, as JSON values."""
    signer = served.canary_signer()
    before = int(json.loads(_http_get(served.url + "/healthz"))["tree_size"])
    state = _State(served, signer, plan)
    progress(
        f"hammer: {plan.writers} writers, {plan.readers} random readers, "
        f"{plan.appends:,} appends"
        + (f" or {plan.seconds:,.0f} s" if plan.seconds else "")
        + (f", {plan.kills} kills" if plan.kills else "")
    )
    asyncio.run(_drive(state))
    elapsed = time.monotonic() - state.started
    after = int(json.loads(_http_get(served.url + "/healthz"))["tree_size"])
    return _figures(state, elapsed, after - before)


def _http_get(url: str) -> bytes:
    return http_fetch(url.rsplit("/", 1)[0])(url.rsplit("/", 1)[1])


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _flat(samples: list[tuple[float, int, int]]) -> dict[str, Any]:
    """Memory and open files: first quarter of the run against the last."""
    if len(samples) < 4:
        return {"samples": len(samples)}
    quarter = max(1, len(samples) // 4)
    first, last = samples[:quarter], samples[-quarter:]
    quarters = [samples[i * quarter : (i + 1) * quarter] for i in range(4)]
    return {
        "samples": len(samples),
        "rss_mib_quarters": [
            round(statistics.median(s[1] for s in q) / 1024, 1) for q in quarters
        ],
        "rss_mib_first": statistics.median(s[1] for s in first) / 1024,
        "rss_mib_last": statistics.median(s[1] for s in last) / 1024,
        "rss_mib_max": max(s[1] for s in samples) / 1024,
        "open_files_first": statistics.median(s[2] for s in first),
        "open_files_last": statistics.median(s[2] for s in last),
        "open_files_max": max(s[2] for s in samples),
    }


def _figures(state: _State, elapsed: float, growth: int) -> dict[str, Any]:
    t = state.tally
    t.lost = len(state.unread) + t.full_read_mismatches
    figures = asdict(t)
    for name in ("latencies", "merge_delays", "samples", "errors", "asked", "answered"):
        figures.pop(name)
    distinct = len(state.index_of)
    figures.update(
        seconds=elapsed,
        appends_per_s=t.acked / elapsed if elapsed else 0.0,
        reads_per_s=t.reads / elapsed if elapsed else 0.0,
        latency_p50_ms=_ms(_pct(t.latencies, 0.5)),
        latency_p99_ms=_ms(_pct(t.latencies, 0.99)),
        merge_delay_p50_s=_pct(t.merge_delays, 0.5),
        merge_delay_p99_s=_pct(t.merge_delays, 0.99),
        merge_delay_max_s=max(t.merge_delays, default=None),
        distinct_payloads=distinct,
        tree_growth=growth,
        unresolved=len(state.retry),
        not_witnessed=len(state.pending),
        not_read_back=len(state.unread),
        errors=dict(t.errors.most_common()),
        # What an outside prober sees (RELIABILITY.md R8): answered / asked.
        availability={
            endpoint: t.answered[endpoint] / asked
            for endpoint, asked in sorted(t.asked.items())
        },
        resources=_flat(t.samples),
    )
    figures["ok"] = (
        growth == distinct
        and not state.retry
        and not state.pending
        and not state.unread
        and t.lost == 0
        and t.repeat_mismatches == 0
        and t.receipt_failures == 0
        and t.read_failures == 0
        and t.inclusion_failures == 0
        and t.full_read_mismatches == 0
        and t.forks == 0
    )
    return figures


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


# ---------------------------------------------------------------- the command


def _section(backend: str, plan: Plan, figures: dict[str, Any], command: str) -> str:
    res = figures["resources"]
    lines = [
        f"## The hammer ({backend})",
        "",
        f"Command: `{command}` (writes this section).",
        "",
        machine(
            "The hammer (this process, one asyncio loop and two observer threads) "
            "and `saksi serve` (one process) share the cores; a witness runs beside."
        ),
        "",
        "| figure | value |",
        "|---|---|",
        f"| writers, random readers | {plan.writers}, {plan.readers} (and one full "
        "reader, one checker) |",
        f"| run | {figures['seconds']:,.0f} s |",
        f"| appends acknowledged | {figures['acked']:,} "
        f"({figures['appends_per_s']:,.0f}/s) |",
        f"| repeats answered with their first index | {figures['repeats']:,} "
        f"({figures['repeat_mismatches']} mismatched) |",
        f"| reads (proofs, tiles) | {figures['reads']:,} "
        f"({figures['reads_per_s']:,.0f}/s), {figures['read_failures']} failed |",
        f"| append latency p50, p99 | {figures['latency_p50_ms']:,.1f} ms, "
        f"{figures['latency_p99_ms']:,.1f} ms |",
        f"| merge delay (receipt to witnessed checkpoint) p50, p99, max | "
        f"{figures['merge_delay_p50_s']:.2f} s, {figures['merge_delay_p99_s']:.2f} s,"
        f" {figures['merge_delay_max_s']:.2f} s |",
        f"| receipts verified, inclusion proven in a witnessed checkpoint | "
        f"{figures['receipts_verified']:,}, {figures['inclusion_verified']:,} |",
        f"| checkpoints followed, consistency proofs checked, forks | "
        f"{figures['checkpoints']:,}, {figures['consistency_checks']:,}, "
        f"{figures['forks']} |",
        f"| entries read back from 0, roots recomputed, mismatches | "
        f"{figures['full_read_entries']:,}, {figures['full_read_roots']:,}, "
        f"{figures['full_read_mismatches']} |",
        f"| tree growth vs distinct payloads | {figures['tree_growth']:,} vs "
        f"{figures['distinct_payloads']:,} |",
    ]
    if plan.kills:
        lines.append(
            f"| kills (SIGKILL, restarted), answers lost, of those already logged | "
            f"{figures['kills']}, {figures['unknown']:,}, {figures['recovered']:,} |"
        )
    if "rss_mib_first" in res:
        lines.append(
            f"| server memory (RSS) first quarter, last quarter, max | "
            f"{res['rss_mib_first']:,.0f} MiB, {res['rss_mib_last']:,.0f} MiB, "
            f"{res['rss_mib_max']:,.0f} MiB |"
        )
        lines.append(
            f"| server open files first quarter, last quarter, max | "
            f"{res['open_files_first']:,.0f}, {res['open_files_last']:,.0f}, "
            f"{res['open_files_max']:,.0f} |"
        )
    availability = figures["availability"]
    if availability:
        lines.append(
            "| answered (below 500) per endpoint | "
            + "; ".join(f"{k} {v:.2%}" for k, v in availability.items())
            + " |"
        )
    errors = figures["errors"]
    lines += [
        f"| errors | {sum(errors.values()):,}"
        + (": " + "; ".join(f"{k} x{v}" for k, v in errors.items()) if errors else "")
        + " |",
        f"| verdict | {'pass' if figures['ok'] else 'FAIL'} |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.hammer",
        description="Hammer a served log with verifying writers and readers.",
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--writers", type=int, default=64)
    parser.add_argument("--appends", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, help="stop after this long")
    parser.add_argument(
        "--write-rate",
        type=float,
        default=0.0,
        help="appends/s over all writers (default: unthrottled)",
    )
    parser.add_argument(
        "--read-rate",
        type=float,
        default=0.0,
        help="random reads/s over all readers (default: unthrottled)",
    )
    parser.add_argument("--repeat", type=float, default=0.1)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument(
        "--kills",
        type=int,
        default=0,
        help="SIGKILL and restart the server this many times",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--out", type=Path, help="write the section into this report")
    args = parser.parse_args(argv)
    if args.writers < 1 or args.appends < 1 or not 0 <= args.repeat < 1:
        parser.error("need --writers >= 1, --appends >= 1 and 0 <= --repeat < 1")
    plan = Plan(
        writers=args.writers,
        appends=args.appends,
        seconds=args.seconds,
        write_rate=args.write_rate,
        read_rate=args.read_rate,
        repeat=args.repeat,
        readers=args.readers,
        kills=args.kills,
    )
    try:
        with served_log(args.backend) as served:
            figures = hammer(served, plan)
            if figures["ok"]:
                figures["check"] = served.check().get("ok")
    except (OSError, RuntimeError) as e:
        print(f"hammer: {e}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(figures, indent=1, sort_keys=True))
    else:
        print(_section(args.backend, plan, figures, "python -m bench.hammer"))
    if args.out:
        command = "python -m bench.hammer " + " ".join(argv or sys.argv[1:])
        write_section(
            args.out,
            f"hammer-{args.backend}",
            _section(args.backend, plan, figures, command.strip()),
        )
    return 0 if figures["ok"] and figures.get("check") else 1


if __name__ == "__main__":
    raise SystemExit(main())
