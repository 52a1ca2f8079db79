"""Reading entry bundles ahead gives exactly what reading them one by one gives.

``TileLog.entries(start, end, ahead)`` fetches up to ``ahead`` further bundles
in threads while the caller works (the monitor does, so a busy log's answer
time overlaps its checks). Whatever ``ahead``, the entries come in order, each
bundle at the width ``end`` fixes, a fetch error comes where its bundle would
and nothing after it is yielded, and stopping early leaves nothing fetched
without bound.
"""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier.tile_client import FetchError, TileLog
from verifier.tile_format import entries_path, format_entry_bundle


def _entries(n: int) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(n)]


def _served(
    n: int, failing: str | None = None, slow: float = 0.0
) -> tuple[TileLog, list[str]]:
    """A log of ``n`` entries serving its bundles (for size n) from memory."""
    entries = _entries(n)
    files = {}
    for index in range(0, n, 256):
        part = entries[index : index + 256]
        files[entries_path(index // 256, len(part))] = format_entry_bundle(part)
    fetched: list[str] = []
    lock = threading.Lock()

    def fetch(path: str) -> bytes:
        with lock:
            fetched.append(path)
        if slow:
            time.sleep(slow)
        if path == failing:
            raise FetchError(f"{path}: HTTP 503", 503)
        if path not in files:
            raise FetchError(f"{path}: HTTP 404", 404)
        return files[path]

    return TileLog(fetch), fetched


@settings(max_examples=120, deadline=None)
@given(st.integers(1, 1500), st.data())
def test_reading_ahead_yields_what_reading_in_turn_yields(n, data):
    start = data.draw(st.integers(0, n - 1), label="start")
    ahead = data.draw(st.integers(0, 6), label="ahead")
    log, _ = _served(n)
    in_turn = list(log.entries(start, n))
    got = list(log.entries(start, n, ahead))
    assert got == in_turn
    assert [e for _, bundle in got for e in bundle] == _entries(n)[start:]
    assert got[0][0] == start


def test_a_failed_fetch_raises_where_its_bundle_would():
    n = 256 * 6
    log, _ = _served(n, failing=entries_path(3))
    got = []

    def read() -> None:
        for first, bundle in log.entries(0, n, ahead=4):
            got.append((first, len(bundle)))

    with pytest.raises(FetchError, match="503"):
        read()
    # The three bundles before the failed one, and none after it.
    assert got == [(0, 256), (256, 256), (512, 256)]


def test_stopping_early_fetches_at_most_ahead_more():
    n = 256 * 40
    log, fetched = _served(n, slow=0.01)
    reading = log.entries(0, n, ahead=3)
    next(reading)
    reading.close()
    time.sleep(0.2)  # anything already under way ends
    # The one read, and at most ``ahead`` + 1 started beside it; never all 40.
    assert 1 <= len(fetched) <= 5


def test_reading_ahead_overlaps_a_slow_log():
    # Ten bundles each answered after 50 ms: read in turn they take 0.5 s of
    # waiting; read four ahead, the waits overlap. Counted, not timed: the
    # fetches in flight at once.
    n = 256 * 10
    in_flight = 0
    most = 0
    lock = threading.Lock()
    log, _ = _served(n)
    inner = log.fetch

    def fetch(path: str) -> bytes:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        try:
            time.sleep(0.05)
            return inner(path)
        finally:
            with lock:
                in_flight -= 1

    log.fetch = fetch
    assert len(list(log.entries(0, n, ahead=4))) == 10
    assert 2 <= most <= 5
    most = 0
    assert len(list(log.entries(0, n))) == 10
    assert most == 1
