"""Alerts held while they last (``monitor.alerting``), on an injected clock.

An event stays active for the hold period after its last occurrence, then
``expire`` resolves it; a condition is active while it holds. Every sink hears
of each change exactly once; ``AlertLog`` writes each as one JSON line.
"""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest

from monitor.alerting import ALERTS, Alert, AlertBook, AlertLog

T0 = 1_707_915_600.0  # 2024-02-14T13:00:00Z
HOLD = 900.0


class Clock:
    """A clock that moves only when told."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A sink keeping every change it hears of."""

    def __init__(self) -> None:
        self.changes: list[tuple] = []

    def raised(self, alert, at, until):
        self.changes.append(("raised", alert, at, until))

    def resolved(self, alert, at):
        self.changes.append(("resolved", alert, at))

    def of(self, what: str) -> list[tuple]:
        return [c for c in self.changes if c[0] == what]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sinks() -> list[Recorder]:
    return [Recorder(), Recorder()]


@pytest.fixture
def book(clock, sinks) -> AlertBook:
    return AlertBook(sinks, clock, HOLD)


REVOKED = Alert(
    "revoked-key-write",
    "entry 41 was written by a revoked key",
    "entry 41",
    {"index": 41, "subject": "results/ppwp/3171011001001"},
)
STALL = Alert("log-not-growing", "the log has not grown for 400 s", "log")


# --- events ---------------------------------------------------------------------


def test_an_event_is_active_for_the_hold_period_then_resolved_once(book, clock, sinks):
    book.event(REVOKED)
    assert book.active() == [(REVOKED, T0)]
    clock.now = T0 + HOLD - 0.001
    book.expire()
    assert book.active() == [(REVOKED, T0)]
    clock.now = T0 + HOLD
    book.expire()
    assert book.active() == []
    clock.now = T0 + 10 * HOLD
    book.expire()  # nothing left to resolve
    for sink in sinks:
        assert sink.changes == [
            ("raised", REVOKED, T0, T0 + HOLD),
            ("resolved", REVOKED, T0 + HOLD),
        ]


def test_a_repeated_event_is_not_raised_again_but_extends_its_hold(book, clock, sinks):
    book.event(REVOKED)
    clock.now = T0 + 500
    again = Alert(REVOKED.name, "entry 41 again", REVOKED.key, {"index": 41})
    book.event(again)
    assert len(sinks[0].of("raised")) == 1
    # active since the first occurrence
    assert book.active() == [(again, T0)]
    clock.now = T0 + HOLD  # the first hold would have ended here
    book.expire()
    assert sinks[0].of("resolved") == []
    clock.now = T0 + 500 + HOLD
    book.expire()
    # resolved once, as last reported
    assert sinks[0].of("resolved") == [("resolved", again, T0 + 500 + HOLD)]
    assert book.raised_count["revoked-key-write"] == 2


def test_an_event_after_it_resolved_is_raised_anew(book, clock, sinks):
    book.event(REVOKED)
    clock.now = T0 + HOLD
    book.expire()
    clock.now = T0 + HOLD + 5
    book.event(REVOKED)
    assert [c[0] for c in sinks[0].changes] == ["raised", "resolved", "raised"]
    assert book.active() == [(REVOKED, T0 + HOLD + 5)]


def test_events_with_other_keys_or_names_are_separate_alerts(book, sinks):
    other_entry = Alert("revoked-key-write", "entry 42", "entry 42")
    same_key_other_name = Alert("unauthorized-write", "entry 41", "entry 41")
    for alert in (REVOKED, other_entry, same_key_other_name):
        book.event(alert)
    assert {a.fingerprint for a, _ in book.active()} == {
        "revoked-key-write/entry 41",
        "revoked-key-write/entry 42",
        "unauthorized-write/entry 41",
    }
    assert len(sinks[0].of("raised")) == 3


def test_expire_resolves_only_the_events_whose_hold_passed(book, clock, sinks):
    book.event(REVOKED)
    clock.now = T0 + 600
    later = Alert("fork", "split view", "checkpoint")
    book.event(later)
    book.condition(STALL, True)
    clock.now = T0 + HOLD
    book.expire()
    assert [a for a, _ in book.active()] == [later, STALL]
    assert sinks[0].of("resolved") == [("resolved", REVOKED, T0 + HOLD)]


# --- conditions -----------------------------------------------------------------


def test_a_condition_raises_when_it_starts_and_resolves_when_it_stops(
    book, clock, sinks
):
    book.condition(STALL, False)  # not holding, never held: nothing
    assert sinks[0].changes == []
    book.condition(STALL, True)
    clock.now = T0 + 30
    book.condition(STALL, True)  # still holding: no change
    clock.now = T0 + 10 * HOLD
    book.expire()  # a condition has no hold period
    assert book.active() == [(STALL, T0)]
    clock.now = T0 + 10 * HOLD + 1
    book.condition(Alert("log-not-growing", "", "log"), False)
    book.condition(STALL, False)
    assert book.active() == []
    for sink in sinks:
        # raised with no end; resolved as it was raised (not the empty summary
        # of the alert passed to say it stopped)
        assert sink.changes == [
            ("raised", STALL, T0, None),
            ("resolved", STALL, T0 + 10 * HOLD + 1),
        ]
    assert book.raised_count["log-not-growing"] == 1


def test_raised_count_counts_occurrences_from_zero_for_every_alert(book, clock):
    assert book.raised_count == dict.fromkeys(ALERTS, 0)
    for _ in range(3):
        book.event(REVOKED)
        clock.now += 1
    book.condition(STALL, True)
    book.condition(STALL, True)
    book.condition(STALL, False)
    book.condition(STALL, True)
    assert book.raised_count["revoked-key-write"] == 3
    assert book.raised_count["log-not-growing"] == 2
    assert sum(book.raised_count.values()) == 5


def test_a_book_without_sinks_still_keeps_the_active_alerts(clock):
    book = AlertBook([], clock, HOLD)
    book.event(REVOKED)
    assert book.active() == [(REVOKED, T0)]


# --- Alert ----------------------------------------------------------------------


def test_alert_severity_and_fingerprint():
    assert REVOKED.severity == "critical"
    assert Alert("many-revisions", "x", "s").severity == "warning"
    assert REVOKED.fingerprint == "revoked-key-write/entry 41"
    assert Alert("fork", "x").fingerprint == "fork/"


def test_every_alert_name_is_a_label_with_a_known_severity():
    assert ALERTS
    for name, severity in ALERTS.items():
        assert severity in {"critical", "warning"}
        assert name == name.lower()
        assert name.replace("-", "").isalpha()


def test_an_alert_must_have_a_known_name():
    with pytest.raises(ValueError, match="no-such-alert"):
        Alert("no-such-alert", "x")


# --- AlertLog -------------------------------------------------------------------


def _lines(stream: io.StringIO) -> list[dict]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_alert_log_writes_one_json_line_per_change(clock):
    stream = io.StringIO()
    book = AlertBook([AlertLog(stream)], clock, HOLD)
    book.event(REVOKED)
    book.event(REVOKED)  # no change: no line
    clock.now = T0 + HOLD
    book.expire()
    firing, resolved = _lines(stream)
    assert firing == {
        "time": "2024-02-14T13:00:00.000+00:00",
        "log": "monitor-alert",
        "status": "firing",
        "alert": "revoked-key-write",
        "severity": "critical",
        "summary": "entry 41 was written by a revoked key",
        "key": "entry 41",
        "details": {"index": 41, "subject": "results/ppwp/3171011001001"},
        "until": "2024-02-14T13:15:00.000+00:00",
    }
    assert resolved == {
        "time": "2024-02-14T13:15:00.000+00:00",
        "log": "monitor-alert",
        "status": "resolved",
        "alert": "revoked-key-write",
        "severity": "critical",
        "key": "entry 41",
    }


def test_alert_log_condition_lines_have_no_until(clock):
    stream = io.StringIO()
    book = AlertBook([AlertLog(stream)], clock, HOLD)
    book.condition(STALL, True)
    (firing,) = _lines(stream)
    assert "until" not in firing
    assert firing["status"] == "firing"
    assert firing["details"] == {}


def test_alert_log_times_are_rfc3339_utc():
    stream = io.StringIO()
    AlertLog(stream).raised(REVOKED, T0 + 0.25, None)
    (line,) = _lines(stream)
    when = dt.datetime.fromisoformat(line["time"])
    assert when == dt.datetime(2024, 2, 14, 13, 0, 0, 250_000, tzinfo=dt.UTC)


def test_alert_log_lines_are_compact_and_sorted():
    stream = io.StringIO()
    AlertLog(stream).resolved(REVOKED, T0)
    text = stream.getvalue()
    assert ", " not in text
    assert ": " not in text
    keys = list(json.loads(text))
    assert keys == sorted(keys)


def test_a_broken_alert_log_does_not_stop_the_book(clock):
    stream = io.StringIO()
    stream.close()  # writing raises ValueError
    other = Recorder()
    book = AlertBook([AlertLog(stream), other], clock, HOLD)
    book.event(REVOKED)
    assert other.of("raised") == [("raised", REVOKED, T0, T0 + HOLD)]
