"""Crash safety: SIGKILL the sequencer under concurrent load, 20 times per backend.

Clients in this process talk to a ledger in a child process over 127.0.0.1. After
every kill the child is restarted. At the end: every acknowledged entry is at the
index it was given with the same bytes, indices are contiguous, each stored
checkpoint is consistent with the next, and the full check passes.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ledger.fullcheck import check_log
from ledger.ledger import Ledger
from ledger.storage.sql import SqlStorage
from tests.conftest import ORIGIN, FixedClock, create_log
from tests.helpers import ROOT
from verifier.checkpoint import verify_checkpoint
from verifier.proof_check import verify_consistency

KILLS = 20
CLIENTS = 8


def start_child(url: str, tmp: Path, n: int) -> tuple[subprocess.Popen[bytes], int]:
    port_file = tmp / f"port-{n}"
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.crash_server", url, str(port_file)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not port_file.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("crash server did not start")
        time.sleep(0.02)
    return child, int(port_file.read_text())


def client(
    port: int,
    rng: random.Random,
    acked: dict[bytes, int],
    unacked: list[bytes],
    lock: threading.Lock,
) -> None:
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    except OSError:
        return
    stream = sock.makefile("rwb")
    while True:
        with lock:
            retry = unacked.pop() if unacked and rng.random() < 0.3 else None
        data = retry or rng.randbytes(rng.randint(100, 900))
        try:
            stream.write(data.hex().encode() + b"\n")
            stream.flush()
            line = stream.readline()
        except OSError:
            line = b""
        if not line:
            with lock:
                unacked.append(data)  # unknown outcome: present once or absent
            break
        parts = line.decode().split()
        if parts[0] == "ERR":
            continue
        with lock:
            previous = acked.setdefault(data, int(parts[0]))
        assert previous == int(parts[0]), "an entry got two different indices"
    sock.close()


@pytest.mark.slow
def test_sigkill_under_load_loses_nothing(db_url, signer, tmp_path):
    create_log(db_url, signer).close()
    rng = random.Random(20241114)
    acked: dict[bytes, int] = {}
    unacked: list[bytes] = []
    lock = threading.Lock()
    for n in range(KILLS):
        child, port = start_child(db_url, tmp_path, n)
        threads = [
            threading.Thread(
                target=client,
                args=(port, random.Random(rng.random()), acked, unacked, lock),
            )
            for _ in range(CLIENTS)
        ]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.2, 0.8))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        for t in threads:
            t.join(timeout=60)
    assert len(acked) > KILLS * 10, "the load was too light to mean anything"

    storage = SqlStorage.open(db_url)
    ledger = Ledger.of_entries(
        storage, signer, signer.verifier_key, ORIGIN, clock=FixedClock()
    )
    ledger.start()  # the start-up check: stored tiles rebuild the signed root
    try:
        size = ledger.size
        stored = {row.index: row.data for row in storage.iter_entries()}
        assert sorted(stored) == list(range(size)), "indices are not contiguous"
        for data, index in acked.items():
            assert stored[index] == data, f"acknowledged entry {index} lost or changed"
        positions = {data: index for index, data in stored.items()}
        assert len(positions) == size, "an entry is stored twice"
        notes = [cp for cp in storage.iter_checkpoints()]
        assert notes[-1].size == size
        previous = None
        for cp in notes:
            checkpoint, _ = verify_checkpoint(cp.note, signer.verifier_key, ORIGIN)
            if previous is not None and previous.size > 0:
                proof = ledger.reader.consistency_proof(previous.size, checkpoint.size)
                verify_consistency(
                    previous.size,
                    checkpoint.size,
                    previous.root_hash,
                    checkpoint.root_hash,
                    proof,
                )
            previous = checkpoint
        report = check_log(storage, signer.verifier_key, ORIGIN)
        assert report.ok, report.problems
        print(
            f"\n{storage.dialect}: {KILLS} kills, {len(acked)} acknowledged, "
            f"{size} stored, {len(notes)} checkpoints consistent"
        )
    finally:
        ledger.close()
        storage.close()
