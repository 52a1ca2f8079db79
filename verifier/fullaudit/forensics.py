"""The audit's election forensics: per region, from what the audit kept.

Computed at the end of an audit from its store (each form's latest revision,
the corrections, the arithmetic findings, the stale recaps) and the election's
region table, with the statistics of ``verifier.rules.forensics``. Per
province: completeness (stations with a form, by ballot, against the stations
the region table lists), stale recaps, corrections by reason, arithmetic
flags, the last-digit test, the presidential fingerprint and the stations at
the extremes; per regency: completeness, stale recaps and the last-digit
test. Then the forms whose total went
down with no correction on record. Each figure is flagged for a person to look
at, never asserted as fraud.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from verifier.election import BALLOTS
from verifier.fullaudit.report import Finding
from verifier.rules.forensics import (
    ALPHA,
    CORNER,
    CORNER_SHARE,
    MIN_COUNT,
    MIN_TESTED,
    Fingerprint,
    LastDigits,
    StationFigures,
)
from verifier.rules.state import ElectionState

__all__ = ["METHODS", "forensics"]

LISTED = 1000  # stations and decreases listed by name (the counts are whole)
# The last-digit test reads the presidential ballot: its counts at a station
# span several decades, so their last digits are uniform unless made up. The
# other ballots' counts (a party's candidates, a DPD list of dozens) are
# mostly small and fall off within each decade: their last digits lean to the
# low ones in any honest count, and the test would flag every region.
DIGITS_BALLOT = "ppwp"

METHODS = {
    "last_digits": (
        "chi-square test of the last digit of every candidate's count of at "
        f"least {MIN_COUNT} on the presidential ballot (each form's latest "
        "revision), 9 degrees of freedom, "
        f"flagged below p = {ALPHA}, not tested under {MIN_TESTED} digits; Beber "
        "and Scacco (2012), Political Analysis 20(2), 211-234"
    ),
    "fingerprint": (
        "stations by turnout (voters over those entitled: the list plus the "
        "voters added on the day) against the leading candidate's share of "
        "valid votes, presidential ballot, 5% bins; flagged when more than "
        f"{CORNER_SHARE:.0%} of a province's stations have both at least "
        f"{CORNER:.0%}; Klimek, Yegorov, Hanel and Thurner (2012), PNAS 109(41), "
        "16469-16473. Communities that vote as one by custom (noken) fill the "
        "corner by law"
    ),
    "extremes": (
        "stations where everyone entitled voted (turnout-100) or one candidate "
        "got every valid vote (one-candidate-100)"
    ),
    "completeness": (
        "stations with a form of the ballot over the stations the region table lists"
    ),
    "decreases": (
        "a form's total lower than its previous revision's with no correction on "
        "record (a machine reading may be lowered by the officers' confirmation)"
    ),
    "caution": (
        "each figure flags a pattern for a person to look at; none is evidence "
        "of fraud by itself"
    ),
}


def _province(subject: str) -> str:
    code = subject.rsplit("/", 1)[-1]
    return code[:2] if code[:2].isdigit() else "national"


def _registered(election: ElectionState, length: int) -> Counter[str]:
    """Stations the region table lists, by region code of ``length`` digits."""
    out: Counter[str] = Counter()
    for district, villages in election.districts.items():
        out[district[:length]] += sum(len(stations) for stations in villages.values())
    return out


def _completeness(listed: int, reported: Counter[str]) -> dict[str, Any]:
    return {
        "stations": listed,
        "reported": {b: reported[b] for b in BALLOTS},
        "completeness": {
            b: (reported[b] / listed if listed else None) for b in BALLOTS
        },
    }


def forensics(
    db: sqlite3.Connection, election: ElectionState, stale: Iterable[Finding]
) -> dict[str, Any]:
    """The forensics of the audit whose store is ``db`` (see the module)."""
    registered = _registered(election, 2)
    registered_regencies = _registered(election, 4)
    reported: dict[str, Counter[str]] = defaultdict(Counter)
    reported_regencies: dict[str, Counter[str]] = defaultdict(Counter)
    digits: dict[str, LastDigits] = defaultdict(LastDigits)
    regency_digits: dict[str, LastDigits] = defaultdict(LastDigits)
    prints: dict[str, Fingerprint] = defaultdict(Fingerprint)
    at_extremes: dict[str, Counter[str]] = defaultdict(Counter)
    listed: list[dict[str, Any]] = []
    extreme_stations = 0
    rows = db.execute(
        "SELECT subject, idx, entitled, voted, valid, leader, digits, extremes "
        "FROM stations ORDER BY subject"
    )
    for subject, index, entitled, voted, valid, leader, kept, marked in rows:
        _, ballot, station = subject.split("/")
        province = station[:2]
        reported[province][ballot] += 1
        reported_regencies[station[:4]][ballot] += 1
        if ballot == DIGITS_BALLOT:
            observed = [int(d) for d in kept.split(",")]
            for where in (digits[province], regency_digits[station[:4]]):
                where.observed = [
                    a + b for a, b in zip(where.observed, observed, strict=True)
                ]
        figures = StationFigures(entitled, voted, valid, (), leader)
        flags = marked.split(",") if marked else []  # decided when examined
        for flag in flags:
            at_extremes[province][flag] += 1
        extreme_stations += bool(flags)
        if flags and len(listed) < LISTED:
            listed.append({"subject": subject, "index": index, "flags": flags})
        if ballot == "ppwp":
            prints[province].add(figures)
    corrections: dict[str, Counter[str]] = defaultdict(Counter)
    for subject, reason in db.execute("SELECT subject, reason FROM corrections"):
        corrections[_province(subject)][reason] += 1
    arithmetic: Counter[str] = Counter()
    for (subject,) in db.execute(
        "SELECT subject FROM findings WHERE name = 'arithmetic'"
    ):
        arithmetic[_province(subject or "")] += 1
    stale = list(stale)
    stale_by: Counter[str] = Counter(_province(f.subject or "") for f in stale)
    stale_regencies: Counter[str] = Counter(
        code[:4]
        for f in stale
        if len(code := (f.subject or "").rsplit("/", 1)[-1]) >= 4 and code.isdigit()
    )
    provinces: dict[str, Any] = {}
    for province in sorted(set(registered) | set(reported) | set(corrections)):
        listed_there = registered.get(province, 0)
        tested = digits[province].test() if province in digits else LastDigits().test()
        provinces[province] = {
            **_completeness(listed_there, reported[province]),
            "stale_recaps": stale_by[province],
            "corrections": dict(sorted(corrections[province].items())),
            "arithmetic_flags": arithmetic[province],
            "last_digits": tested,
            "fingerprint": prints[province].to_json(),
            "extremes": dict(sorted(at_extremes[province].items())),
        }
    regencies = {
        code: {
            **_completeness(
                registered_regencies.get(code, 0), reported_regencies[code]
            ),
            "stale_recaps": stale_regencies[code],
            "last_digits": regency_digits[code].test(),
        }
        for code in sorted(set(registered_regencies) | set(reported_regencies))
    }
    decreases = [
        {"index": i, "subject": s, "before": b, "after": a}
        for i, s, b, a in db.execute(
            "SELECT idx, subject, before, after FROM decreases ORDER BY idx LIMIT ?",
            (LISTED,),
        )
    ]
    (decrease_count,) = db.execute("SELECT COUNT(*) FROM decreases").fetchone()
    tests = [(code, p["last_digits"]) for code, p in provinces.items()]
    flagged = [
        {"region": code, "statistic": "last_digits", "p_value": t["p_value"]}
        for code, t in [*tests, *((c, r["last_digits"]) for c, r in regencies.items())]
        if t["flagged"]
    ] + [
        {
            "region": code,
            "statistic": "fingerprint",
            "corner_share": p["fingerprint"]["corner_share"],
        }
        for code, p in provinces.items()
        if p["fingerprint"]["flagged"]
    ]
    return {
        "methods": METHODS,
        "provinces": provinces,
        "regencies": regencies,
        "extreme_stations": listed,
        "extreme_station_count": extreme_stations,
        "decreases": decreases,
        "decrease_count": decrease_count,
        "flagged": flagged,
    }
