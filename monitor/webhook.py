"""Alert delivery to webhooks in Alertmanager's format, retried, never lost.

Each change is POSTed as a JSON list of alerts, exactly what Alertmanager's
``POST /api/v2/alerts`` takes (``labels``, ``annotations``, ``startsAt``,
``endsAt``): point it at Alertmanager, or at any receiver that reads that
format. Firing alerts are sent again every ``resend_seconds`` while active
(with ``endsAt`` three periods ahead, as Prometheus does), so a receiver that
was down learns the current state when it is back.

Delivery runs in a thread per URL. A failed POST (refused, 5xx, a hang past the
timeout) is retried with exponential back-off up to ``max_backoff`` seconds.
An alert that has waited longer than ``dead_after`` seconds, or that would
overflow the queue, goes to the dead-letter file (one JSON line each: URL,
alert, reason), as does everything pending at shutdown: each alert is
delivered or written there, and the counters say how many of each.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from monitor.alerting import Alert

__all__ = ["Webhooks", "am_alert"]

Post = Callable[[str, bytes, float], int]
MAX_PENDING = 10_000


def _time(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="milliseconds")


def am_alert(
    alert: Alert, starts: float, ends: float | None, origin: str
) -> dict[str, Any]:
    """``alert`` as one element of Alertmanager's ``POST /api/v2/alerts`` body."""
    out: dict[str, Any] = {
        "labels": {
            "alertname": "SaksiMonitorFinding",
            "alert": alert.name,
            "severity": alert.severity,
            "source": "saksi-monitor",
            "log": origin,
            "key": alert.key,
        },
        "annotations": {
            "summary": alert.summary,
            "details": json.dumps(alert.details, sort_keys=True)[:4000],
            "runbook": "README.md#saksimonitorfinding",
        },
        "startsAt": _time(starts),
    }
    if ends is not None:
        out["endsAt"] = _time(ends)
    return out


def http_post(url: str, body: bytes, timeout: float) -> int:
    """POST JSON; the HTTP status. Network failures raise ``OSError``."""
    request = urllib.request.Request(  # noqa: S310 (an http(s) URL from the config)
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read(65536)
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


class _Queue:
    """One URL's pending alerts and the thread that delivers them."""

    def __init__(self, owner: Webhooks, url: str) -> None:
        self.owner = owner
        self.url = url
        self.pending: deque[tuple[float, dict[str, Any]]] = deque()
        self.wake = threading.Condition()
        self.thread = threading.Thread(
            target=self.run, name=f"webhook {url[:40]}", daemon=True
        )

    def put(self, alerts: Sequence[dict[str, Any]]) -> None:
        now = self.owner.clock()
        with self.wake:
            for alert in alerts:
                if len(self.pending) >= MAX_PENDING:
                    self.owner.dead(self.url, alert, "the queue is full")
                    continue
                self.pending.append((now, alert))
            self.wake.notify()

    def run(self) -> None:
        owner = self.owner
        backoff = 0.0
        while True:
            with self.wake:
                while not self.pending and not owner.stopping:
                    self.wake.wait()
            if owner.stopping:
                self.drain()
                return
            with self.wake:
                batch = [self.pending[i] for i in range(min(100, len(self.pending)))]
            body = json.dumps([alert for _, alert in batch]).encode()
            try:
                status = owner.post(self.url, body, owner.timeout)
                ok, why = 200 <= status < 300, f"HTTP {status}"
            except OSError as e:
                ok, why = False, f"unreachable: {type(e).__name__}"
            except Exception as e:  # a URL urllib rejects: counted, retried
                ok, why = False, f"not delivered: {type(e).__name__}"
            with self.wake:
                if ok:
                    for _ in batch:
                        self.pending.popleft()
                    owner.count("delivered", len(batch))
                    backoff = 0.0
                    continue
                owner.count("failed", 1)
                owner.last_error[self.url] = why
                self._expire(why)
                backoff = min(owner.max_backoff, max(0.5, backoff * 2))
                retry = time.monotonic() + backoff
                while not owner.stopping and time.monotonic() < retry:
                    self.wake.wait(retry - time.monotonic())

    def _expire(self, why: str) -> None:
        """Move alerts that waited too long to the dead-letter file (lock held)."""
        limit = self.owner.clock() - self.owner.dead_after
        while self.pending and self.pending[0][0] <= limit:
            _, alert = self.pending.popleft()
            self.owner.dead(self.url, alert, f"not delivered in time: {why}")

    def drain(self) -> None:
        """Everything still pending goes to the dead-letter file."""
        with self.wake:
            while self.pending:
                _, alert = self.pending.popleft()
                self.owner.dead(self.url, alert, "pending at shutdown")


class Webhooks:
    """Delivers alert changes to every URL; counts what was delivered and dead."""

    def __init__(
        self,
        urls: Sequence[str],
        origin: str,
        dead_letter: Path,
        *,
        timeout: float = 5.0,
        max_backoff: float = 60.0,
        dead_after: float = 3600.0,
        resend_seconds: float = 60.0,
        post: Post = http_post,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.origin = origin
        self.dead_letter = dead_letter
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.dead_after = dead_after
        self.resend_seconds = resend_seconds
        self.post = post
        self.clock = clock
        self.stopping = False
        self.counts = {"delivered": 0, "failed": 0, "dead": 0}
        self.last_error: dict[str, str] = {}
        self._lock = threading.Lock()
        self._queues = [_Queue(self, url) for url in urls]
        self._sent_at = clock()
        for queue in self._queues:
            queue.thread.start()

    # -- the Sink protocol of monitor.alerting -------------------------------------

    def raised(self, alert: Alert, at: float, until: float | None) -> None:
        """Send a firing alert."""
        ends = at + 3 * self.resend_seconds if until is None else until
        self._put([am_alert(alert, at, ends, self.origin)])

    def resolved(self, alert: Alert, at: float) -> None:
        """Send the alert as resolved (``endsAt`` now)."""
        self._put([am_alert(alert, at, at, self.origin)])

    def resend(self, active: Sequence[tuple[Alert, float]]) -> None:
        """Send the active alerts again if ``resend_seconds`` passed since last."""
        now = self.clock()
        if now - self._sent_at < self.resend_seconds or not active:
            return
        self._sent_at = now
        self._put(
            [
                am_alert(alert, since, now + 3 * self.resend_seconds, self.origin)
                for alert, since in active
            ]
        )

    def _put(self, alerts: list[dict[str, Any]]) -> None:
        for queue in self._queues:
            queue.put(alerts)

    # -- bookkeeping ---------------------------------------------------------------

    def count(self, what: str, n: int) -> None:
        """Add ``n`` to a counter (``delivered``, ``failed``, ``dead``)."""
        with self._lock:
            self.counts[what] += n

    def pending(self) -> int:
        """Alerts waiting for delivery, over every URL."""
        return sum(len(queue.pending) for queue in self._queues)

    def dead(self, url: str, alert: dict[str, Any], why: str) -> None:
        """Write ``alert`` to the dead-letter file."""
        line = json.dumps(
            {"time": _time(self.clock()), "url": url, "reason": why, "alert": alert},
            sort_keys=True,
        )
        with self._lock:
            self.dead_letter.parent.mkdir(parents=True, exist_ok=True)
            with self.dead_letter.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
                out.flush()
            self.counts["dead"] += 1  # counted once it is in the file

    def close(self, wait: float = 5.0) -> None:
        """Deliver what can be in ``wait`` seconds; the rest to the dead letters."""
        deadline = time.monotonic() + wait
        while self.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.stopping = True
        for queue in self._queues:
            with queue.wake:
                queue.wake.notify_all()
        for queue in self._queues:
            # The thread dead-letters what is left itself; one still inside a
            # POST does so when the POST returns.
            queue.thread.join(timeout=self.timeout + 1)
