"""Several ``saksi serve`` processes on one PostgreSQL database, run by a test.

``Member`` is one process on a free 127.0.0.1 port (its stderr in a file);
``leader`` finds which one holds the sequencer lease, from the lease row.
``grant_envelope`` makes the n-th distinct record an admin signs (a key grant),
the same bytes every time it is asked for, so a retry is a true repeat;
``write_through`` writes them over the live members until told to stop (in
``writer_threads``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from ledger.storage.sql import SqlStorage
from saksi_client import Receipt, SaksiClient
from tests.helpers import ROOT, cli_env, run_saksi
from verifier.dsse import envelope_to_json, sign_envelope
from verifier.note import VerifierKey
from verifier.record import RECORD_PAYLOAD_TYPE, format_timestamp, record_payload

PASS = "cluster-passphrase"
ORIGIN = "cluster.saksi.example/log"


def init_cluster_log(directory: Path, db_url: str) -> None:
    """``saksi init`` of a log with one admin key, on ``db_url``."""
    made = run_saksi(
        "init", "--db", db_url, "--origin", ORIGIN, "--dir", str(directory),
        "--kdf", "interactive", "--admins", "1", passphrase=PASS,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Member:
    """One ``saksi serve`` process of the cluster."""

    def __init__(self, directory: Path, db_url: str, name: str, *extra: str) -> None:
        self.directory, self.db_url, self.name = directory, db_url, name
        self.extra = extra
        self.log_path = directory.parent / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 60) -> Member:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        with self.log_path.open("ab") as log_file:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "api", "serve", "--db", self.db_url,
                 "--dir", str(self.directory), "--listen", f"127.0.0.1:{port}",
                 "--no-access-log", "--no-security-log", *self.extra],
                env=cli_env(PASS), cwd=ROOT,
                stdout=subprocess.DEVNULL, stderr=log_file,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):  # noqa: S310
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(self.log()) from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        if self.alive():
            self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.alive():
            self.signal(signal.SIGCONT)  # a stopped process cannot stop itself
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def lease(db_url: str) -> tuple[int, int | None, float]:
    """The lease row: (token, the holder's pid, seconds until it runs out)."""
    storage = SqlStorage.open(db_url)
    try:
        state = storage.lease_state()
    finally:
        storage.close()
    assert state is not None
    parts = state.holder.split(":")
    pid = int(parts[-2]) if len(parts) >= 3 else None
    return state.token, pid, state.expires_in


def leader(
    db_url: str, members: list[Member], after: int = -1, timeout: float = 30
) -> tuple[Member, int]:
    """The member that holds a live lease with a token above ``after``."""
    deadline = time.monotonic() + timeout
    while True:
        token, pid, left = lease(db_url)
        if token > after and left > 0:
            for member in members:
                if member.alive() and member.pid == pid:
                    return member, token
        if time.monotonic() > deadline:
            raise AssertionError(f"no member took the lease (token {token})")
        time.sleep(0.05)


ISSUED = format_timestamp(dt.datetime.now(dt.UTC))


def grant_envelope(admin: Any, n: int) -> dict[str, Any]:
    """The n-th distinct grant record ``admin`` signs (the same for the same n)."""
    public = hashlib.sha256(b"cluster test key %d" % n).digest()
    keyid = hashlib.sha256(public).hexdigest()
    payload = record_payload(
        schema="keys.grant/v1",
        subject=f"keys/{keyid}",
        revision=0,
        prev=None,
        issued_at=ISSUED,
        body={
            "keyid": keyid,
            "public_key": base64.b64encode(public).decode(),
            "role": "tps",
            "scope": "3171011001001",
            "holder": f"officer {n}",
        },
    )
    return envelope_to_json(sign_envelope(RECORD_PAYLOAD_TYPE, payload, [admin]))


def write_through(
    members: list[Member],
    key: VerifierKey,
    admin,
    stop: threading.Event,
    acked: dict[int, Receipt],
    start: int,
) -> None:
    """Write distinct records round-robin over live members, retrying each
    (through the next member) until it is acknowledged."""
    n = start
    while not stop.is_set():
        envelope = grant_envelope(admin, n)
        for attempt in range(200):
            member = members[(n + attempt) % len(members)]
            if not member.alive():
                continue
            try:
                acked[n] = SaksiClient(member.url, key, timeout=10, retries=0).submit(
                    envelope
                )
                break
            except Exception:
                time.sleep(0.05)
        n += 2


def writer_threads(
    members: list[Member],
    key: VerifierKey,
    admin,
    stop: threading.Event,
    acked: dict[int, Receipt],
    count: int = 2,
) -> list[threading.Thread]:
    """``count`` threads of ``write_through``, each its own records (not started)."""
    return [
        threading.Thread(
            target=write_through, args=(members, key, admin, stop, acked, i)
        )
        for i in range(count)
    ]
