"""The audit report's page (``audit.report``) and checklist (``audit.fitness``).

Text from the log is escaped wherever it lands (a holder's name, a subject, a
finding's detail); a missing value prints as a dash; shares are drawn against
100%; SECURITY.md's threat table is read whole, and every link from a threat to
this report's evidence still names a row of it (the mapping cannot rot).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from audit import charts
from audit.fitness import EVIDENCE, controls
from audit.report import figure_value, render
from tests.helpers import ROOT

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _audit(**extra):
    check = {
        "number": 1,
        "check": "tree",
        "meaning": "the entries hash to the signed checkpoint's root",
        "status": "pass",
        "checked": 1,
        "findings": 0,
    }
    return {
        "origin": "example.org/log",
        "tree_size": 3,
        "root": "ab" * 32,
        "passed": True,
        "checks": [check],
        "checkpoint": "example.org/log\n3\n" + "q83v" * 10 + "q80=\n",
        "witnesses": {},
        **extra,
    }


def test_text_from_the_log_is_escaped_everywhere():
    audit = _audit(
        origin=HOSTILE,
        findings=[
            {"index": 2, "check": "schema", "subject": HOSTILE, "detail": HOSTILE}
        ],
        keys={
            "threshold": 1,
            "admins": 1,
            "grants_by_role": {HOSTILE: 1},
            "counts": {"grant": 1, "rotation": 0, "change": 0, "revocation": 0},
            "events": [
                {
                    "index": 1,
                    "logged_at": HOSTILE,
                    "signers": 1,
                    "kind": "change",
                    "keyid": HOSTILE,
                    "role": "tps",
                    "scope": "31",
                    "holder": HOSTILE,
                }
            ],
            "events_listed": 1,
        },
        timeline={
            "hours": [
                {
                    "hour": HOSTILE,
                    "entries": 3,
                    "size": 3,
                    "forms": 0,
                    "recaps": 0,
                    "keys": 3,
                    "election_data": 0,
                    "other": 0,
                    "unreadable": 0,
                }
            ],
            "provinces": {HOSTILE: {HOSTILE: 1}},
        },
    )
    html = render(audit, title=HOSTILE)
    assert "<script" not in html
    assert "<img" not in html
    assert "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;" in html


def test_a_missing_value_prints_as_a_dash_and_paths_resolve():
    data = {"a": [{"b": None}, {"b": 0.25}]}
    assert figure_value(data, "a.1.b") == 0.25
    with pytest.raises(KeyError):
        figure_value(data, "a.1.c")
    html = render(
        _audit(
            forensics={
                "methods": {},
                "flagged": [],
                "decreases": [],
                "decrease_count": 0,
                "extreme_station_count": 0,
                "provinces": {},
                "regencies": {
                    "3171": {
                        "stations": 2,
                        "reported": {"ppwp": 0},
                        "completeness": {"ppwp": None},
                        "stale_recaps": 0,
                        "last_digits": {"p_value": None},
                    }
                },
            }
        )
    )
    assert (
        'data-figure="forensics.regencies.3171.completeness.ppwp" '
        'data-format="pct">\u2013<' in html
    )


def test_shares_are_drawn_against_the_whole():
    svg = charts.bars("t", [("31", 0.011)], "%")
    width = float(re.search(r'<rect [^>]*width="([0-9.]+)"', svg)[1])  # the bar's
    assert width == pytest.approx(500 * 0.011, rel=1e-3)


def test_the_checklist_reads_every_threat_of_security_md():
    rows = controls(ROOT / "SECURITY.md")
    text = (ROOT / "SECURITY.md").read_text()
    section = text.split("## Threat model", 1)[1].split("\n## ", 1)[0]
    table = [
        line
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| ---")
    ]
    assert len(rows) == len(table) - 1  # the header is not a control
    assert len(rows) >= 25
    assert all(row.tests for row in rows)
    for start in EVIDENCE:
        assert sum(row.threat.startswith(start) for row in rows) == 1, start


def test_a_file_without_a_table_has_no_controls(tmp_path: Path):
    (tmp_path / "S.md").write_text("# Security\n\nNo table here.\n")
    assert controls(tmp_path / "S.md") == []


def test_a_sample_files_text_is_escaped():
    sample = {
        "plan": {"index": HOSTILE, "subject": HOSTILE, "body": {
            "purpose": HOSTILE, "ballot": HOSTILE, "unit": HOSTILE}},
        "seed": {"tree_size": 9, "root": HOSTILE, "seed": HOSTILE},
        "population": {"units": 3},
        "size": {"method": HOSTILE, "n": 1, "drawn": 1},
        "strata": [{"stratum": HOSTILE, "units": 3, "drawn": 1}],
        "units": [{"unit": HOSTILE, "stratum": HOSTILE, "rank": "00"}],
    }  # fmt: skip
    html = render(_audit(), samples=[sample])
    assert "<script" not in html
    assert "<img" not in html
    assert html.count("&lt;script&gt;") >= 8
