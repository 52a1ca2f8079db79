"""A served log under load, and the small filesystems its faults happen on.

``served`` starts ``saksi serve`` as a subprocess on 127.0.0.1 and yields the
process with its URL, so a test can fault it and see that the same process
recovers. ``Writers`` are threads that each keep one HTTP connection and submit
real signed records (key grants by the log's admin) as fast as they are
answered, noting every answer with the phase of the fault it was sent and
answered in. ``check_stored`` opens the log after the server stopped and checks
that every acknowledged record is at its index with its bytes.

``small_tmpfs`` and ``ext4_image`` mount a filesystem the test owns; both need
the right to mount (root, or CAP_SYS_ADMIN) and skip with the reason otherwise.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from keys import Ed25519Signer
from ledger.fullcheck import check_log
from ledger.storage.sql import SqlStorage
from saksi_client import SaksiClient, grant_body
from tests.helpers import ROOT
from verifier.note import VerifierKey

PROBLEM = "application/problem+json"
STORAGE_UNAVAILABLE = "/problems/storage-unavailable"


# -- the server -------------------------------------------------------------------


@dataclass
class Server:
    """One ``saksi serve`` process and where it answers."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def served(
    directory: Path, db_url: str, env: dict[str, str], *extra: str
) -> Iterator[Server]:
    """``saksi serve`` for the block (stopped with SIGTERM, killed if it hangs).

    Its stderr goes to ``serve.log`` beside the log directory.
    """
    port = free_port()
    log_path = directory.parent / "serve.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--db", db_url,
             "--dir", str(directory), "--listen", f"127.0.0.1:{port}",
             "--no-access-log", "--no-security-log", *extra],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )  # fmt: skip
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(server.url + "/healthz", timeout=1):  # noqa: S310
                    break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(server.stderr()) from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield server
    finally:
        stop_server(server)


def stop_server(server: Server) -> None:
    """SIGTERM, then SIGKILL if it has not stopped within 30 s."""
    if server.process.poll() is not None:
        return
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


# -- the load ---------------------------------------------------------------------


@dataclass
class Answer:
    """One submission: when it was sent and answered, in which fault phase."""

    sent: float
    answered: float
    sent_phase: str
    answered_phase: str
    status: int | None  # None: no answer (the outcome is unknown)
    problem_type: str | None = None
    content_type: str = ""
    index: int | None = None
    entry: bytes = b""


@dataclass
class Writers:
    """Threads that submit signed key grants to ``url`` until stopped."""

    url: str
    admin: Any  # a signer of the log's admin key
    count: int
    phase: str = "before"
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def start(self) -> None:
        for n in range(self.count):
            thread = threading.Thread(target=self._run, args=(n,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)
        assert not any(t.is_alive() for t in self._threads), "a writer hangs"
        assert not self.errors, self.errors

    def halt(self) -> None:
        """Stop the threads without checking them (cleanup after a failure)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)

    def set_phase(self, phase: str) -> float:
        """Enter ``phase``; returns the moment it began (``time.monotonic``)."""
        with self._lock:
            self.phase = phase
            return time.monotonic()

    def _envelope(self) -> dict[str, object]:
        key = Ed25519Signer("fault", os.urandom(32))
        record = SaksiClient.record(
            "keys.grant/v1",
            f"keys/{key.keyid}",
            grant_body(key.public_key, "tps", "3171", "fault test"),
        )
        return SaksiClient.sign(record, [self.admin])

    def _run(self, number: int) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=60) as client:
                while not self._stop.is_set():
                    self._once(client)
        except BaseException as e:  # reported by stop()
            self.errors.append(e)

    def _once(self, client: httpx.Client) -> None:
        envelope = self._envelope()
        sent, sent_phase = time.monotonic(), self.phase
        try:
            response = client.post("/v1/entries", json=envelope)
        except httpx.HTTPError:
            answer = Answer(sent, time.monotonic(), sent_phase, self.phase, None)
            self._note(answer)
            time.sleep(0.05)
            return
        answer = Answer(
            sent,
            time.monotonic(),
            sent_phase,
            self.phase,
            response.status_code,
            content_type=response.headers.get("content-type", ""),
        )
        if response.status_code in (200, 201):
            body = response.json()
            answer.index = int(body["index"])
            answer.entry = base64.b64decode(body["entry"])
        else:
            with contextlib.suppress(ValueError):
                answer.problem_type = response.json().get("type")
            time.sleep(0.02)  # the writer is refusing: no busy loop
        self._note(answer)

    def _note(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    # -- what happened ----------------------------------------------------------------

    def snapshot(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)

    def acked(self) -> list[Answer]:
        return [a for a in self.snapshot() if a.status in (200, 201)]

    def wait_for(
        self, what: str, done: Callable[[list[Answer]], bool], timeout: float = 60
    ) -> None:
        """Poll until ``done(answers)``; fail naming ``what`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not done(self.snapshot()):
            assert not self.errors, self.errors
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{what}: not within {timeout:.0f} s; answers by status: "
                    f"{summary(self.snapshot())}"
                )
            time.sleep(0.05)


def summary(answers: list[Answer]) -> dict[str, int]:
    """How many answers of each (phase, status, problem type)."""
    out: dict[str, int] = {}
    for a in answers:
        key = f"{a.answered_phase}:{a.status}:{a.problem_type or ''}"
        out[key] = out.get(key, 0) + 1
    return out


def acks_sent_in(phase: str, count: int) -> Callable[[list[Answer]], bool]:
    return lambda answers: (
        sum(1 for a in answers if a.sent_phase == phase and a.status == 201) >= count
    )


def refusals_in(phase: str, count: int) -> Callable[[list[Answer]], bool]:
    return lambda answers: (
        sum(1 for a in answers if a.answered_phase == phase and a.status == 503)
        >= count
    )


# -- checks -----------------------------------------------------------------------


def check_answers(answers: list[Answer], stderr: str) -> None:
    """Every answer is a receipt or a storage-unavailable 503; no traceback."""
    for a in answers:
        if a.status in (200, 201):
            continue
        assert a.status == 503, f"answered {a.status} ({a.problem_type}) in {a}"
        assert a.content_type.startswith(PROBLEM), a
        assert a.problem_type == STORAGE_UNAVAILABLE, a
    assert "Traceback" not in stderr, stderr[-4000:]
    assert "Internal error" not in stderr, stderr[-4000:]


def recovered_after(answers: list[Answer], ended: float) -> float:
    """Seconds from the fault's end to the first receipt of a later submission."""
    return min(a.answered for a in answers if a.sent >= ended and a.status == 201) - (
        ended
    )


def check_stored(db_url: str, directory: Path, origin: str, acked: list[Answer]) -> int:
    """The log after the server stopped: every receipt holds; the full check passes.

    Returns the log's size.
    """
    key = VerifierKey.parse((directory / "log.vkey").read_text().strip())
    storage = SqlStorage.open(db_url)
    try:
        stored = {row.index: row.data for row in storage.iter_entries()}
        size = storage.head().size
        assert sorted(stored) == list(range(size)), "indices are not contiguous"
        assert len(set(stored.values())) == size, "an entry is stored twice"
        for a in acked:
            assert a.index is not None
            assert stored.get(a.index) == a.entry, f"acknowledged {a.index} lost"
        report = check_log(storage, key, origin)
        assert report.ok, report.problems
        if storage.dialect == "sqlite":
            with storage.engine.connect() as conn:
                integrity = conn.exec_driver_sql("PRAGMA integrity_check").all()
            assert integrity == [("ok",)], integrity
        return size
    finally:
        storage.close()


# -- small filesystems ------------------------------------------------------------


def _mount(*args: str) -> None:
    done = subprocess.run(
        ["mount", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise OSError(done.stderr.strip() or f"mount {' '.join(args)} failed")


def _umount(path: Path) -> None:
    done = subprocess.run(
        ["umount", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:  # still busy: detach it, the kernel frees it later
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def _need_mount() -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip(
            "this fault needs a filesystem of its own: run as root (or with "
            "CAP_SYS_ADMIN) with mount(8), as CI's container does"
        )


@contextlib.contextmanager
def small_tmpfs(
    path: Path, size: str, owner: tuple[int, int] | None = None
) -> Iterator[Path]:
    """A tmpfs of ``size`` bytes (``32m``) at ``path``, unmounted afterwards."""
    _need_mount()
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0700"
    if owner is not None:
        options += f",uid={owner[0]},gid={owner[1]}"
    try:
        _mount("-t", "tmpfs", "-o", options, "saksi-fault", str(path))
    except OSError as e:
        pytest.skip(f"cannot mount a tmpfs here ({e}): this fault needs one")
    try:
        yield path
    finally:
        _umount(path)


@contextlib.contextmanager
def ext4_image(path: Path, size_mb: int) -> Iterator[Path]:
    """An ext4 filesystem in a file, on a loop device at ``path``."""
    _need_mount()
    if shutil.which("mkfs.ext4") is None or shutil.which("chattr") is None:
        pytest.skip("this fault needs mkfs.ext4 and chattr (e2fsprogs)")
    image = Path(tempfile.mkstemp(prefix="saksi-fault-", suffix=".ext4")[1])
    try:
        with image.open("r+b") as f:
            f.truncate(size_mb << 20)
        subprocess.run(
            ["mkfs.ext4", "-q", "-m", "0", str(image)], check=True, timeout=60
        )
        path.mkdir(parents=True, exist_ok=True)
        try:
            _mount("-o", "loop", str(image), str(path))
        except OSError as e:
            pytest.skip(f"cannot mount a loop device here ({e}): this fault needs one")
        try:
            yield path
        finally:
            _umount(path)
    finally:
        image.unlink(missing_ok=True)


def fill(directory: Path) -> Path:
    """Write a file into ``directory`` until its filesystem has no space left."""
    filler = directory / "filler"
    chunk = b"\0" * (64 << 10)
    with filler.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
        # The last few kilobytes too: no allocation may succeed.
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 512)
    return filler


def set_immutable(paths: list[Path], on: bool) -> None:
    """``chattr +i`` / ``-i``: writes refused even to root and to open files.

    Only files that exist (SQLite removes its WAL when the last connection
    closes).
    """
    present = [str(p) for p in paths if p.exists()]
    if present:
        subprocess.run(
            ["chattr", "+i" if on else "-i", *present], check=True, timeout=60
        )
