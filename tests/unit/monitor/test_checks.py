"""The monitor's checks of each new entry (``monitor.checks.RecordChecks``).

Real records (``record_payload``/``parse_record``) go in as the audit's
``Examined`` entries, in log order, with the audit's store (its ``recaps``
table) underneath; each check is seen to fire when it should and to stay quiet
when it should not.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest

from monitor.alerting import Alert
from monitor.checks import RecordChecks
from monitor.config import Thresholds, Window
from verifier.election import RECAP, TALLY
from verifier.fullaudit import AuditStore, Examined, Finding
from verifier.fullaudit.examiner import compact_json
from verifier.record import format_timestamp, parse_record, record_payload

T0 = dt.datetime(2024, 2, 14, 13, tzinfo=dt.UTC)
TPS = "3171011001001"
FORM = f"results/ppwp/{TPS}"
VILLAGE = "recaps/ppwp/3171011001"
CORRECTION = {"reason_code": "ocr_error", "reference": "BA-2024/017"}


def _tps(province: str = "31", n: int = 1) -> str:
    """A polling station code in ``province`` (station number ``n``)."""
    return f"{province}71011001{n:03d}"


def _tally(stage: str = "officer_confirmed", total: int = 200, **votes: int) -> dict:
    return {
        "stage": stage,
        "votes": {k.lstrip("c"): v for k, v in votes.items()}
        or {"100025": total - 50, "100026": 50},
        "total": total,
    }


class Events:
    """The checks' sink: every alert raised, in order."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def event(self, alert: Alert) -> None:
        self.alerts.append(alert)

    def names(self) -> list[str]:
        return [a.name for a in self.alerts]

    def named(self, name: str) -> list[Alert]:
        return [a for a in self.alerts if a.name == name]


class Feed:
    """Writes records into the checks as a well-behaved log would, one index each."""

    def __init__(
        self,
        thresholds: Thresholds | None = None,
        timetable: tuple[Window, ...] = (),
        store: AuditStore | None = None,
    ) -> None:
        self.store = store or AuditStore()
        self.events = Events()
        self.thresholds = thresholds or Thresholds()
        self.timetable = timetable
        self.checks = RecordChecks(self.store, self.thresholds, timetable, self.events)
        self.index = 0
        self.heads: dict[str, tuple[int, str]] = {}

    def restart(self) -> Feed:
        """A new RecordChecks on the same store, as after a restart."""
        again = Feed.__new__(Feed)
        again.store, again.thresholds = self.store, self.thresholds
        again.timetable, again.events = self.timetable, Events()
        again.checks = RecordChecks(
            self.store, self.thresholds, self.timetable, again.events
        )
        again.index, again.heads = self.index, dict(self.heads)
        return again

    def write(
        self,
        subject: str,
        body: dict[str, Any],
        *,
        at: dt.datetime | str = T0,
        signers: tuple[str, ...] = ("kpps-1",),
        findings: tuple[Finding, ...] = (),
        schema: str | None = None,
    ) -> list[str]:
        """Log the next revision of ``subject``; the names of the alerts raised."""
        if schema is None:
            schema = TALLY.name if subject.startswith("results/") else RECAP.name
        head = self.heads.get(subject)
        revision, prev = (0, None) if head is None else (head[0] + 1, head[1])
        logged = at if isinstance(at, str) else format_timestamp(at)
        record = parse_record(
            record_payload(
                schema=schema,
                subject=subject,
                revision=revision,
                prev=prev,
                issued_at=format_timestamp(T0 - dt.timedelta(minutes=1)),
                body=body,
                reason=None if revision == 0 else "a later revision",
            )
        )
        self.heads[subject] = (revision, record.payload_hash)
        examined = Examined(
            self.index,
            b"",
            findings=list(findings),
            record=record,
            logged_at=logged,
            signers=signers,
        )
        if schema in (TALLY.name, RECAP.name):
            # What the audit keeps of each form and recap before the checks
            # see it: its payload hash and its figures.
            examined.totals = compact_json(_figures(body))
            db = self.store.db
            digest = bytes.fromhex(record.payload_hash)
            db.execute("INSERT INTO payloads VALUES (?, ?)", (digest, self.index))
            db.execute(
                "INSERT INTO totals VALUES (?, ?, ?)",
                (self.index, subject, examined.totals),
            )
        self.index += 1
        before = len(self.events.alerts)
        self.checks.see(examined, findings)
        return [a.name for a in self.events.alerts[before:]]


def _figures(body: dict[str, Any]) -> dict[str, Any]:
    """The figures the audit keeps of a form or recap (``totals_of``).

    Only the members these bodies have: they omit what the checks never read.
    """
    source = body.get("totals", body)
    return {
        k: source[k]
        for k in ("valid", "invalid", "total", "votes", "parties")
        if k in source
    }


def _limits(**changes: Any) -> Thresholds:
    return dataclasses.replace(Thresholds(), **changes)


# --- a plain history raises nothing -------------------------------------------------


def test_a_form_read_confirmed_and_recapped_raises_nothing():
    feed = Feed()
    assert feed.write(FORM, _tally("machine_reading", 200)) == []
    assert feed.write(FORM, _tally("officer_confirmed", 200)) == []
    recap = {"totals": {"total": 200}, "children": {TPS: "00" * 32}}
    assert feed.write(VILLAGE, recap, signers=("ppk-1",)) == []
    assert feed.events.alerts == []


def test_records_other_than_results_are_not_checked():
    feed = Feed(_limits(max_revisions=0, key_max_regions=0))
    body = {"candidates": {"100025": {"number": 1, "name": "A"}}}
    for _ in range(3):
        assert (
            feed.write("candidates/ppwp/31", body, schema="candidates.change/v1") == []
        )
    # a results schema on a subject that names no region is not checked either
    assert feed.write("results/ppwp", _tally(), schema=TALLY.name) == []


# --- many-revisions -----------------------------------------------------------------


def test_many_revisions_fires_above_max_revisions():
    feed = Feed(_limits(max_revisions=3))
    for _ in range(4):  # revisions 0 to 3
        assert "many-revisions" not in feed.write(FORM, _tally())
    assert feed.write(FORM, _tally()) == ["many-revisions"]
    (alert,) = feed.events.named("many-revisions")
    assert alert.key == FORM
    assert alert.details == {"index": 4, "subject": FORM, "revision": 4}
    assert "5 revisions" in alert.summary


def test_many_revisions_is_per_subject():
    feed = Feed(_limits(max_revisions=1))
    for n in range(5):
        subject = f"results/ppwp/{_tps(n=n)}"
        feed.write(subject, _tally())
        assert feed.write(subject, _tally()) == []


# --- outside-timetable --------------------------------------------------------------

COUNTING = Window(
    "counting",
    T0,
    T0 + dt.timedelta(days=1),
    frozenset({TALLY.name}),
    expect_results=True,
)


def test_a_tally_inside_its_window_raises_nothing():
    feed = Feed(timetable=(COUNTING,))
    assert feed.write(FORM, _tally(), at=T0) == []
    last = T0 + dt.timedelta(days=1) - dt.timedelta(milliseconds=1)
    assert feed.write(f"results/ppwp/{_tps(n=2)}", _tally(), at=last) == []


@pytest.mark.parametrize(
    "at",
    [
        T0 - dt.timedelta(milliseconds=1),
        T0 + dt.timedelta(days=1),  # the end is not in the window
        T0 + dt.timedelta(days=30),
    ],
)
def test_a_tally_outside_every_window_raises_outside_timetable(at):
    feed = Feed(timetable=(COUNTING,))
    assert feed.write(FORM, _tally(), at=at) == ["outside-timetable"]
    (alert,) = feed.events.alerts
    assert alert.key == FORM
    assert alert.details == {"index": 0, "subject": FORM}
    assert "counting" in alert.summary


def test_a_second_window_that_lists_the_schema_allows_it():
    later = Window(
        "recount",
        T0 + dt.timedelta(days=10),
        T0 + dt.timedelta(days=11),
        frozenset({TALLY.name, RECAP.name}),
    )
    feed = Feed(timetable=(COUNTING, later))
    assert feed.write(FORM, _tally(), at=T0 + dt.timedelta(days=10, hours=1)) == []
    # a recap is only in the later window
    recap = {"totals": {"total": 200}, "children": {TPS: "00" * 32}}
    assert feed.write(VILLAGE, recap, at=T0 + dt.timedelta(hours=1)) == [
        "outside-timetable"
    ]


def test_a_schema_no_window_lists_is_not_checked_against_the_timetable():
    feed = Feed(timetable=(COUNTING,))  # lists tallies only
    recap = {"totals": {"total": 200}, "children": {TPS: "00" * 32}}
    assert feed.write(VILLAGE, recap, at=T0 - dt.timedelta(days=5)) == []


def test_no_timetable_no_timetable_check():
    feed = Feed()
    assert feed.write(FORM, _tally(), at=T0 - dt.timedelta(days=365)) == []


def test_an_unreadable_logged_at_skips_the_time_checks():
    feed = Feed(timetable=(COUNTING,))
    assert feed.write(FORM, _tally(), at="yesterday") == []


# --- key-in-many-regions ------------------------------------------------------------


def test_a_key_writing_in_more_regions_than_allowed_raises():
    feed = Feed(_limits(key_max_regions=2, key_region_digits=4))
    key = ("officer-x",)
    # two stations in regency 3171, one in 3272: two regions
    assert feed.write(f"results/ppwp/{_tps('31', 1)}", _tally(), signers=key) == []
    assert feed.write(f"results/ppwp/{_tps('31', 2)}", _tally(), signers=key) == []
    assert feed.write(f"results/ppwp/{_tps('32', 1)}", _tally(), signers=key) == []
    # another key in yet another region is its own count
    assert feed.write(f"results/ppwp/{_tps('33', 1)}", _tally(), signers=("b",)) == []
    assert feed.write(f"results/ppwp/{_tps('33', 2)}", _tally(), signers=key) == [
        "key-in-many-regions"
    ]
    (alert,) = feed.events.alerts
    assert alert.key == "key officer-x"
    assert alert.details == {"keyid": "officer-x", "regions": 3, "index": 4}


def test_key_regions_are_counted_at_the_configured_digits():
    # at 2 digits (provinces), three regencies of one province are one region
    feed = Feed(_limits(key_max_regions=1, key_region_digits=2))
    for regency in ("3171", "3172", "3173"):
        subject = f"results/ppwp/{regency}011001001"
        assert feed.write(subject, _tally(), signers=("k",)) == []
    assert feed.write(f"results/ppwp/{_tps('32')}", _tally(), signers=("k",)) == [
        "key-in-many-regions"
    ]


def test_every_signer_of_a_record_is_counted():
    feed = Feed(_limits(key_max_regions=1))
    both = ("k1", "k2")
    feed.write(f"results/ppwp/{_tps('31')}", _tally(), signers=both)
    names = feed.write(f"results/ppwp/{_tps('32')}", _tally(), signers=both)
    assert names == ["key-in-many-regions", "key-in-many-regions"]
    assert {a.key for a in feed.events.alerts} == {"key k1", "key k2"}


# --- reading-differs ----------------------------------------------------------------


def test_a_confirmation_far_from_the_machine_reading_raises_reading_differs():
    feed = Feed()
    feed.write(FORM, _tally("machine_reading", 732, c100025=652, c100026=80))
    names = feed.write(FORM, _tally("officer_confirmed", 232, c100025=152, c100026=80))
    # the total went down, but from a machine reading: that is what a
    # confirmation is for, so only the reading is reported
    assert names == ["reading-differs"]
    (alert,) = feed.events.alerts
    assert alert.key == FORM
    assert alert.details == {
        "index": 1,
        "subject": FORM,
        "differences": [["100025", 652, 152]],
    }
    assert "152" in alert.summary
    assert "652" in alert.summary


def test_a_confirmation_close_to_the_machine_reading_raises_nothing():
    feed = Feed()
    feed.write(FORM, _tally("machine_reading", 230, c100025=150, c100026=80))
    assert (
        feed.write(FORM, _tally("officer_confirmed", 200, c100025=120, c100026=80))
        == []
    )


def test_reading_differs_uses_the_configured_thresholds():
    feed = Feed(_limits(reading_difference_votes=10, reading_difference_ratio=0.05))
    feed.write(FORM, _tally("machine_reading", 230, c100025=150, c100026=80))
    assert feed.write(
        FORM, _tally("officer_confirmed", 200, c100025=120, c100026=80)
    ) == ["reading-differs"]


def test_reading_differs_compares_only_a_machine_reading_with_its_confirmation():
    feed = Feed()
    feed.write(FORM, _tally("officer_confirmed", 732, c100025=652, c100026=80))
    later = _tally("authority_correction", 232, c100025=152, c100026=80)
    later["correction"] = CORRECTION
    assert feed.write(FORM, later) == []
    # nor a machine reading with another machine reading
    other = f"results/ppwp/{_tps(n=2)}"
    feed.write(other, _tally("machine_reading", 732, c100025=652, c100026=80))
    assert feed.write(other, _tally("machine_reading", 232, c100025=152)) == []


def test_reading_differs_on_a_party_ballot():
    feed = Feed()
    subject = f"results/pdpr/{TPS}"

    def body(stage: str, party: int) -> dict:
        return {
            "stage": stage,
            "parties": {"1": {"party": party, "candidates": {"11": 40}}},
            "total": party + 40,
        }

    feed.write(subject, body("machine_reading", 400))
    assert feed.write(subject, body("officer_confirmed", 100)) == ["reading-differs"]
    assert feed.events.alerts[0].details["differences"] == [["party 1", 400, 100]]


# --- total-decreased-without-correction ---------------------------------------------


def test_a_total_lowered_without_a_correction_raises():
    feed = Feed()
    feed.write(FORM, _tally("officer_confirmed", 200))
    assert feed.write(FORM, _tally("authority_correction", 150)) == [
        "total-decreased-without-correction"
    ]
    (alert,) = feed.events.alerts
    assert alert.key == FORM
    assert alert.details == {"index": 1, "subject": FORM, "before": 200, "after": 150}
    assert alert.severity == "critical"


def test_a_total_lowered_with_a_correction_on_record_raises_nothing():
    feed = Feed()
    feed.write(FORM, _tally("officer_confirmed", 200))
    corrected = _tally("authority_correction", 150) | {"correction": CORRECTION}
    assert feed.write(FORM, corrected) == []


def test_a_total_lowered_after_a_machine_reading_raises_nothing():
    feed = Feed()
    feed.write(FORM, _tally("machine_reading", 200))
    assert feed.write(FORM, _tally("officer_confirmed", 190)) == []


def test_a_total_that_grows_or_stays_raises_nothing():
    feed = Feed()
    feed.write(FORM, _tally("officer_confirmed", 200))
    assert feed.write(FORM, _tally("recount", 200)) == []
    assert feed.write(FORM, _tally("recount", 260)) == []


def test_the_comparison_is_with_the_revision_just_before():
    feed = Feed()
    feed.write(FORM, _tally("officer_confirmed", 200))
    feed.write(FORM, _tally("recount", 150) | {"correction": CORRECTION})
    # 150 -> 140 with no correction: down from the last revision, not the first
    assert feed.write(FORM, _tally("recount", 140)) == [
        "total-decreased-without-correction"
    ]
    assert feed.events.alerts[0].details["before"] == 150


def test_a_recap_total_lowered_without_a_correction_raises():
    feed = Feed()
    recap = {"totals": {"total": 9_000, "valid": 8_900}, "children": {TPS: "00" * 32}}
    feed.write(VILLAGE, recap, signers=("ppk",))
    lower = {"totals": {"total": 8_000, "valid": 7_900}, "children": {TPS: "11" * 32}}
    assert feed.write(VILLAGE, lower, signers=("ppk",)) == [
        "total-decreased-without-correction"
    ]
    assert feed.events.alerts[0].details["before"] == 9_000


def test_a_restart_still_compares_with_the_stored_revision():
    feed = Feed()
    feed.write(FORM, _tally("officer_confirmed", 200))
    again = feed.restart()
    assert again.write(FORM, _tally("recount", 150)) == [
        "total-decreased-without-correction"
    ]


def test_a_restart_still_knows_a_machine_reading():
    feed = Feed()
    feed.write(FORM, _tally("machine_reading", 652))
    again = feed.restart()
    # lower than the reading, as a confirmation may be: no total alert, but
    # the reading differs from what the officers confirmed
    assert again.write(FORM, _tally("officer_confirmed", 152)) == ["reading-differs"]


def test_a_revision_is_compared_with_the_payload_its_prev_names():
    feed = Feed()
    other = f"results/ppwp/{_tps(n=2)}"
    feed.write(FORM, _tally("officer_confirmed", 100))
    feed.write(other, _tally("officer_confirmed", 300))
    # FORM's next revision names OTHER's payload as its prev: a broken chain
    # (the audit's revision-chain finding), never compared with that figure
    feed.heads[FORM] = (0, feed.heads[other][1])
    assert feed.write(FORM, _tally("recount", 150)) == []
    # a prev no entry has: nothing to compare with either
    feed.heads[FORM] = (1, "ab" * 32)
    assert feed.write(FORM, _tally("recount", 10)) == []


# --- changed-under-signed-recap -----------------------------------------------------


def _sign_recap(feed: Feed, parent: str, index: int, children: list) -> None:
    """The audit's row for a recap at ``index`` naming ``children`` (subject, hash)."""
    feed.store.db.execute(
        "INSERT OR REPLACE INTO recaps VALUES (?, ?, ?)",
        (parent, index, json.dumps(children, separators=(",", ":"))),
    )


def test_a_form_changed_after_its_recap_was_signed_over_it_raises():
    feed = Feed()
    feed.write(FORM, _tally("officer_confirmed", 200))
    _sign_recap(feed, VILLAGE, 7, [[FORM, feed.heads[FORM][1]]])
    names = feed.write(FORM, _tally("authority_correction", 210))
    assert names == ["changed-under-signed-recap"]
    (alert,) = feed.events.alerts
    assert alert.key == FORM
    assert alert.details == {
        "index": 1,
        "subject": FORM,
        "recap": VILLAGE,
        "recap_index": 7,
    }


def test_a_recap_changed_after_the_recap_above_was_signed_over_it_raises():
    feed = Feed()
    recap = {"totals": {"total": 200}, "children": {TPS: "00" * 32}}
    feed.write(VILLAGE, recap, signers=("ppk",))
    _sign_recap(feed, "recaps/ppwp/317101", 9, [[VILLAGE, feed.heads[VILLAGE][1]]])
    assert feed.write(VILLAGE, recap | {"correction": CORRECTION}) == [
        "changed-under-signed-recap"
    ]


def test_no_alert_when_the_recap_names_another_revision_or_does_not_exist():
    feed = Feed()
    feed.write(FORM, _tally("officer_confirmed", 200))
    # no recap yet: a correction before recapping is normal
    assert feed.write(FORM, _tally("recount", 210)) == []
    # the recap names the current head; it then changes: raises
    _sign_recap(feed, VILLAGE, 7, [[FORM, feed.heads[FORM][1]]])
    stale = feed.heads[FORM][1]
    assert feed.write(FORM, _tally("recount", 220)) == ["changed-under-signed-recap"]
    # the recap still names the older revision: it was already stale, no news
    assert feed.write(FORM, _tally("recount", 230)) == []
    # a recap naming another form with the same hash does not count
    other = f"results/ppwp/{_tps(n=2)}"
    feed.write(other, _tally())
    _sign_recap(feed, VILLAGE, 8, [[FORM, stale], [FORM + "x", feed.heads[other][1]]])
    assert feed.write(other, _tally("recount", 201)) == []


def test_a_recap_of_another_level_does_not_count():
    feed = Feed()
    feed.write(FORM, _tally("officer_confirmed", 200))
    # the district recap names the form: not its parent (the village recap is)
    _sign_recap(feed, "recaps/ppwp/317101", 7, [[FORM, feed.heads[FORM][1]]])
    assert feed.write(FORM, _tally("recount", 210)) == []


# --- corrections-concentrated / corrections-by-one-key ------------------------------

BURST = _limits(corrections_min=4, corrections_share=0.5, corrections_window_seconds=60)


def _correct(feed: Feed, province: str, n: int, key: str, at: dt.datetime) -> list:
    """Log a form (revision 0, not a correction), then correct it (revision 1)."""
    subject = f"results/ppwp/{_tps(province, n)}"
    feed.write(subject, _tally(), signers=(key,), at=at)
    return feed.write(subject, _tally("recount", 200), signers=(key,), at=at)


def test_corrections_concentrated_in_one_province_raise():
    feed = Feed(BURST)
    for n in range(3):
        assert _correct(feed, "31", n, f"key-{n}", T0) == []
    assert _correct(feed, "31", 3, "key-3", T0) == ["corrections-concentrated"]
    (alert,) = feed.events.alerts
    assert alert.key == "province 31"
    assert alert.details == {
        "province": "31",
        "corrections": 4,
        "window_corrections": 4,
    }
    assert alert.severity == "warning"


def test_corrections_by_one_key_raise():
    feed = Feed(BURST)
    for n, province in enumerate(("31", "32", "33")):
        assert _correct(feed, province, n, "officer-x", T0) == []
    assert _correct(feed, "34", 3, "officer-x", T0) == ["corrections-by-one-key"]
    (alert,) = feed.events.alerts
    assert alert.key == "key officer-x"
    assert alert.details["corrections"] == 4
    assert alert.details["window_corrections"] == 4
    assert "officer-x" in alert.details.values()


def test_corrections_spread_over_provinces_and_keys_raise_nothing():
    feed = Feed(BURST)
    for n, province in enumerate(("31", "32", "33", "34", "35", "36")):
        assert _correct(feed, province, n, f"key-{n}", T0) == []


def test_corrections_below_the_minimum_raise_nothing():
    feed = Feed(BURST)
    for n in range(3):
        assert _correct(feed, "31", n, "officer-x", T0) == []


def test_corrections_outside_the_window_do_not_add_up():
    feed = Feed(BURST)
    for n in range(3):
        _correct(feed, "31", n, f"key-{n}", T0)
    late = T0 + dt.timedelta(seconds=61)
    assert _correct(feed, "31", 3, "key-3", late) == []
    # three more in the new window make four with the last one
    for n in range(4, 6):
        assert _correct(feed, "31", n, f"key-{n}", late) == []
    assert _correct(feed, "31", 6, "key-6", late) == ["corrections-concentrated"]


def test_a_correction_exactly_window_seconds_old_still_counts():
    feed = Feed(BURST)
    for n in range(3):
        _correct(feed, "31", n, f"key-{n}", T0)
    edge = T0 + dt.timedelta(seconds=60)
    assert _correct(feed, "31", 3, "key-3", edge) == ["corrections-concentrated"]


def test_first_revisions_are_not_corrections():
    feed = Feed(BURST)
    for n in range(10):
        subject = f"results/ppwp/{_tps('31', n)}"
        assert feed.write(subject, _tally(), signers=("officer-x",)) == []


def test_corrections_without_a_verified_signer_are_not_one_keys():
    feed = Feed(BURST)
    names = []
    for n, province in enumerate(("31", "32", "33", "34")):
        subject = f"results/ppwp/{_tps(province, n)}"
        feed.write(subject, _tally(), signers=())
        names += feed.write(subject, _tally("recount", 200), signers=())
    assert names == []


def test_the_corrections_window_survives_a_restart():
    feed = Feed(BURST)
    for n in range(3):
        _correct(feed, "31", n, f"key-{n}", T0)
    again = feed.restart()
    assert _correct(again, "31", 3, "key-3", T0) == ["corrections-concentrated"]


# --- the audit's findings -----------------------------------------------------------


def test_a_write_by_a_revoked_key_raises_revoked_key_write():
    feed = Feed()
    finding = Finding(
        "authorization", 0, FORM, "key kpps-1 was revoked at entry 3", "key-revoked"
    )
    assert feed.write(FORM, _tally(), findings=(finding,)) == ["revoked-key-write"]
    (alert,) = feed.events.alerts
    assert alert.key == "entry 0"
    assert alert.severity == "critical"
    assert alert.details == {"index": 0, "subject": FORM, "rule": "key-revoked"}
    assert "revoked" in alert.summary


def test_another_authorization_refusal_raises_unauthorized_write():
    feed = Feed()
    finding = Finding("authorization", 0, FORM, "out of its scope", "out-of-scope")
    assert feed.write(FORM, _tally(), findings=(finding,)) == ["unauthorized-write"]
    assert feed.events.alerts[0].details["rule"] == "out-of-scope"


@pytest.mark.parametrize("check", ["arithmetic", "stale-recaps"])
def test_flags_and_notices_of_the_audit_raise_nothing(check):
    feed = Feed()
    finding = Finding(check, 0, FORM, "votes do not add up", "votes-valid")
    assert feed.write(FORM, _tally(), findings=(finding,)) == []


@pytest.mark.parametrize(
    "check",
    ["signatures", "issued-at", "revision-chain", "duplicate-payload", "schema"],
)
def test_other_failed_checks_raise_audit_finding(check):
    feed = Feed()
    finding = Finding(check, 0, FORM, "it failed")
    assert feed.write(FORM, _tally(), findings=(finding,)) == ["audit-finding"]
    (alert,) = feed.events.alerts
    assert alert.key == f"{check} entry 0"
    assert alert.details == {"index": 0, "subject": FORM, "check": check}


def test_a_finding_about_an_entry_with_no_record_still_raises():
    feed = Feed()
    finding = Finding("entry-format", 5, None, "not a log entry")
    feed.checks.see(Examined(5, b"", findings=[finding]), [finding])
    assert feed.events.names() == ["audit-finding"]
    assert feed.events.alerts[0].details == {
        "index": 5,
        "subject": None,
        "check": "entry-format",
    }


def test_a_recap_that_does_not_sum_raises_audit_finding():
    feed = Feed()
    recap = {"totals": {"total": 9_000}, "children": {TPS: "00" * 32}}
    finding = Finding("recap-sum", 0, VILLAGE, "totals.total: 9000 != 200")
    assert feed.write(VILLAGE, recap, findings=(finding,)) == ["audit-finding"]
