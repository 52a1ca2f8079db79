"""Alerts: raised by the monitor's checks, held while they last, sent everywhere.

An ``Alert`` has a name from a closed set (``ALERTS``: the metric label), a
severity, a one-line summary and details (the entry, subject, key or region it
is about, and the evidence file of a fork). ``AlertBook`` keeps the active
ones: an event (a write by a revoked key) stays active for the hold period
after its last occurrence; a condition (the log not growing) stays active
while it holds. Every change goes to each sink: a JSON line in the alert log,
the metrics, and the webhooks (``monitor.webhook``).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

__all__ = ["ALERTS", "Alert", "AlertBook", "AlertLog", "Sink"]

# name -> severity. The names are the ``alert`` label of the monitor's metrics.
ALERTS: dict[str, str] = {
    "fork": "critical",
    "invalid-checkpoint": "critical",
    "log-serves-garbage": "critical",
    "log-unreachable": "warning",
    "revoked-key-write": "critical",
    "unauthorized-write": "critical",
    "audit-finding": "critical",
    "corrections-concentrated": "warning",
    "corrections-by-one-key": "warning",
    "changed-under-signed-recap": "warning",
    "total-decreased-without-correction": "critical",
    "many-revisions": "warning",
    "outside-timetable": "warning",
    "key-in-many-regions": "warning",
    "reading-differs": "warning",
    "log-not-growing": "critical",
}


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: what, how bad, a summary, and where to look."""

    name: str
    summary: str
    key: str = ""  # what makes two alerts of one name different (subject, ...)
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in ALERTS:
            raise ValueError(f"no alert named {self.name!r}")

    @property
    def severity(self) -> str:
        """``critical`` or ``warning`` (``ALERTS``)."""
        return ALERTS[self.name]

    @property
    def fingerprint(self) -> str:
        """Name and key: one active alert per fingerprint."""
        return f"{self.name}/{self.key}"


class Sink(Protocol):
    """Where alert changes go."""

    def raised(self, alert: Alert, at: float, until: float | None) -> None:
        """``alert`` became active at ``at`` (until ``until`` unless raised again)."""
        ...

    def resolved(self, alert: Alert, at: float) -> None:
        """``alert`` ended at ``at``."""
        ...


def _time(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="milliseconds")


class AlertLog:
    """Each alert change as one JSON line (``log``: ``monitor-alert``)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def _write(self, line: dict[str, Any]) -> None:
        text = json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n"
        with self._lock:
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):  # a full disk does not stop the checks
                pass

    def raised(self, alert: Alert, at: float, until: float | None) -> None:
        """One ``firing`` line."""
        self._write(
            {
                "time": _time(at),
                "log": "monitor-alert",
                "status": "firing",
                "alert": alert.name,
                "severity": alert.severity,
                "summary": alert.summary,
                "key": alert.key,
                "details": alert.details,
                **({} if until is None else {"until": _time(until)}),
            }
        )

    def resolved(self, alert: Alert, at: float) -> None:
        """One ``resolved`` line."""
        self._write(
            {
                "time": _time(at),
                "log": "monitor-alert",
                "status": "resolved",
                "alert": alert.name,
                "severity": alert.severity,
                "key": alert.key,
            }
        )


class AlertBook:
    """The active alerts, each held until it ends; tells every sink of changes."""

    def __init__(
        self,
        sinks: Sequence[Sink],
        clock: Callable[[], float],
        hold_seconds: float,
    ) -> None:
        self._sinks = list(sinks)
        self._clock = clock
        self._hold = hold_seconds
        self._lock = threading.Lock()
        # fingerprint -> (alert, since, until; None: while its condition holds)
        self._active: dict[str, tuple[Alert, float, float | None]] = {}
        self.raised_count: dict[str, int] = dict.fromkeys(ALERTS, 0)

    def event(self, alert: Alert) -> None:
        """Something happened: active now, for the hold period."""
        now = self._clock()
        until = now + self._hold
        with self._lock:
            known = self._active.get(alert.fingerprint)
            since = now if known is None else known[1]
            self._active[alert.fingerprint] = (alert, since, until)
            self.raised_count[alert.name] += 1
        if known is None:
            self._tell("raised", alert, now, until)

    def condition(self, alert: Alert, holds: bool) -> None:
        """A state: active while ``holds``; resolved when it stops holding."""
        now = self._clock()
        with self._lock:
            known = alert.fingerprint in self._active
            if holds and not known:
                self._active[alert.fingerprint] = (alert, now, None)
                self.raised_count[alert.name] += 1
            elif not holds and known:
                alert = self._active.pop(alert.fingerprint)[0]
        if holds and not known:
            self._tell("raised", alert, now, None)
        elif not holds and known:
            self._tell("resolved", alert, now)

    def expire(self) -> None:
        """Resolve the events whose hold has passed."""
        now = self._clock()
        with self._lock:
            ended = [
                alert
                for alert, _, until in self._active.values()
                if until is not None and until <= now
            ]
            for alert in ended:
                del self._active[alert.fingerprint]
        for alert in ended:
            self._tell("resolved", alert, now)

    def active(self) -> list[tuple[Alert, float]]:
        """Every active alert, with when it became active."""
        with self._lock:
            return [(alert, since) for alert, since, _ in self._active.values()]

    def snapshot(self) -> list[dict[str, Any]]:
        """The active alerts as JSON-able data (``restore`` takes it back)."""
        with self._lock:
            return [
                {
                    "name": alert.name,
                    "summary": alert.summary,
                    "key": alert.key,
                    "details": alert.details,
                    "since": since,
                    "until": until,
                }
                for alert, since, until in self._active.values()
            ]

    def restore(self, saved: list[dict[str, Any]]) -> None:
        """Make the alerts of a ``snapshot`` active again (a restarted monitor).

        Nothing is sent: the sinks were told when they were raised. Unknown
        names are skipped (a state written by another version).
        """
        with self._lock:
            for item in saved:
                if item.get("name") not in ALERTS:
                    continue
                alert = Alert(
                    item["name"],
                    str(item.get("summary", "")),
                    str(item.get("key", "")),
                    dict(item.get("details") or {}),
                )
                until = item.get("until")
                self._active[alert.fingerprint] = (
                    alert,
                    float(item.get("since", 0.0)),
                    None if until is None else float(until),
                )

    def _tell(
        self, what: str, alert: Alert, at: float, until: float | None = None
    ) -> None:
        for sink in self._sinks:
            if what == "raised":
                sink.raised(alert, at, until)
            else:
                sink.resolved(alert, at)
