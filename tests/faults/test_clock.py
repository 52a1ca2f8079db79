"""T14: the log's clock stepped back and forward under load.

The service runs with an injected clock (``RecordLog``'s) behind a real HTTP
server on 127.0.0.1. While writer threads append signed records over HTTP, a
stepper moves that clock an hour or two back and forward, over and over. The
records claim ``issued_at`` times near the true time, a little off, or far in
the future. Afterwards:

* no checkpoint time ever went back: the stored checkpoints' times strictly
  increase with their size, every checkpoint is at least as new as every entry
  in it (RFC 6962 §3.5; the mammoth2025h1 incident), and the time ``/healthz``
  reports never decreased while it was watched;
* every logged entry's ``issued_at`` lies in its window measured against the
  ``logged_at`` it carries (no later than ``logged_at`` plus the allowed skew,
  no older than its schema allows), and ``logged_at`` never decreases along
  the log: what an observer's audit checks (check 5, ``issued-at``);
* every record claiming a time beyond any the clock reached was refused, with
  422 ``issued-at-window``; nothing answered 5xx.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import random
import threading

import httpx
import nacl.signing

from api.settings import ApiSettings
from keys import Ed25519Signer
from ledger.admission import DEFAULT_SKEW
from tests.api.conftest import Api, LiveServer
from tests.evidence import scale
from tests.recordlog import ADMINS, START, RecordLog, envelope_bytes
from verifier.record import (
    format_timestamp,
    parse_log_entry,
    parse_record,
    record_payload,
)
from verifier.registry import GRANT

HOUR = 3600.0
# Where the stepper puts the log's clock, relative to the true time.
STEPS = [HOUR, -HOUR, 0.0, 2 * HOUR, -2 * HOUR, 60.0, -60.0, 0.0]
# The oldest issued_at the writer takes (its --max-age), shorter than the schema's.
MAX_AGE = dt.timedelta(hours=3)
# What the writers claim as issued_at, relative to the true time. The last is
# beyond the furthest step plus the skew: always refused. The one before it is
# in the window of the clock's lower readings but older than MAX_AGE before
# the time entries carry once the clock has been seen at +2 h: refused by the
# writer's check at the time logged (a check at the reading that prepared it
# alone would let it in).
CLAIMS = [0.0, -120.0, 120.0, -1800.0, -2.5 * HOUR, 4 * HOUR]
ALWAYS_OUT = 4 * HOUR


def _grant(sequence: int, claim: float) -> bytes:
    """A grant of a fresh key signed by an admin, claiming ``START + claim``."""
    officer = Ed25519Signer(
        f"clock{sequence}", bytes(nacl.signing.SigningKey.generate())
    )
    issued = dt.datetime.fromtimestamp(START + claim, dt.UTC)
    payload = record_payload(
        schema=GRANT.name,
        subject=f"keys/{officer.keyid}",
        revision=0,
        prev=None,
        issued_at=format_timestamp(issued),
        body={
            "keyid": officer.keyid,
            "public_key": base64.b64encode(officer.public_key).decode(),
            "role": "tps",
            "scope": f"3171011{sequence % 1000000:06d}",
            "holder": f"clock test {sequence}",
        },
    )
    return envelope_bytes(payload, ADMINS[:1])


class SteppingClock:
    """A clock that jumps at every read: the next of ``STEPS`` from the true time.

    The worst a stepped clock can do: the reading that checks a record's window,
    the one stamped on its entry and the one on the checkpoint all differ.
    """

    def __init__(self) -> None:
        self._reads = itertools.count()
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            n = next(self._reads)
        return START + STEPS[n % len(STEPS)] + n * 0.001


def test_clock_steps_never_move_checkpoints_back_or_admit_out_of_window(
    db_url, signer, evidence
):
    log = RecordLog(db_url, signer)
    log.close()
    log.clock = SteppingClock()  # type: ignore[assignment]
    log.max_age = MAX_AGE
    log.open()
    api = Api(log, ApiSettings(client_rate=1e6, client_burst=1e6, key_rate=1e6,
                               key_burst=1e6))  # fmt: skip
    server = LiveServer(api.client.app)
    attempts = scale(400, 20_000)
    counter = itertools.count()
    answers: list[tuple[float, int, str]] = []
    made_at_seen: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=server.url, timeout=60) as client:
            while (n := next(counter)) < attempts:
                claim = rng.choice(CLAIMS)
                response = client.post(
                    "/v1/entries",
                    content=_grant(n, claim),
                    headers={"content-type": "application/json"},
                )
                cause = ""
                if response.status_code >= 400:
                    cause = response.json().get("type", "").rsplit("/", 1)[-1]
                with lock:
                    answers.append((claim, response.status_code, cause))

    def watcher() -> None:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            while not stop.wait(0.01):
                made_at_seen.append(
                    client.get("/healthz").json()["checkpoint_made_at_ms"]
                )

    helpers = [threading.Thread(target=watcher)]
    writers = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    try:
        for thread in helpers + writers:
            thread.start()
        for thread in writers:
            thread.join(timeout=600)
    finally:
        stop.set()
        for thread in helpers:
            thread.join(timeout=60)
        server.stop()

    try:
        assert len(answers) == attempts
        statuses = {status for _, status, _ in answers}
        assert statuses <= {201, 422}, statuses
        assert {cause for _, status, cause in answers if status == 422} == {
            "issued-at-window"
        }
        out = [status for claim, status, _ in answers if claim == ALWAYS_OUT]
        assert out, "no record claimed a time beyond every clock"
        assert set(out) == {422}, "a record beyond every clock was accepted"
        accepted = sum(status == 201 for _, status, _ in answers)
        refused_in_range = sum(
            status == 422 for claim, status, _ in answers if claim != ALWAYS_OUT
        )
        assert accepted > attempts // 4, "the load was too light to mean anything"
        assert refused_in_range > 0, "the clock never left the writers' window"

        # The time /healthz showed never went back.
        assert made_at_seen == sorted(made_at_seen), "a checkpoint time went back"

        # Every entry's issued_at in its window against its own logged_at.
        storage = log.storage
        previous_logged = None
        for row in storage.iter_entries():
            entry = parse_log_entry(row.data)
            record = parse_record(entry.envelope.payload)
            logged = dt.datetime.fromisoformat(entry.logged_at.replace("Z", "+00:00"))
            issued = dt.datetime.fromisoformat(record.issued_at.replace("Z", "+00:00"))
            assert issued <= logged + DEFAULT_SKEW, (row.index, record.issued_at)
            if row.index > 0:  # genesis was logged before MAX_AGE was set
                assert issued >= logged - MAX_AGE, (row.index, record.issued_at)
            assert previous_logged is None or logged >= previous_logged, row.index
            previous_logged = logged
        last_logged_ms = int(previous_logged.timestamp() * 1000)

        # Checkpoint times strictly increase and are never older than an entry.
        checkpoints = list(storage.iter_checkpoints())
        times = [cp.made_at_ms for cp in checkpoints]
        assert times == sorted(set(times)), "two checkpoints went back in time"
        logged_ms = {}
        for row in storage.iter_entries():
            at = parse_log_entry(row.data).logged_at
            stamp = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
            logged_ms[row.index] = int(stamp.timestamp() * 1000)
        for cp in checkpoints:
            if cp.size:
                assert cp.made_at_ms >= logged_ms[cp.size - 1], (
                    f"checkpoint of size {cp.size} is older than its last entry"
                )
        assert log.ledger.tree().head.made_at_ms >= last_logged_ms
    finally:
        log.close()
    evidence.record(
        "T14",
        attempts=len(out),
        detected=len(out),
        backend=storage.dialect,
        steps=len(STEPS),
        submissions=attempts,
        accepted=accepted,
        refused_while_stepped=refused_in_range,
        checkpoints=len(checkpoints),
        checkpoints_back_in_time=0,
        entries_outside_window=0,
    )
