"""The report shows what the forensics flag in a synthetic election with plants.

Three provinces of synthetic presidential forms (``domains.synthetic``), with
no arithmetic errors: in 33 half the stations are stuffed (everyone voted, all
for one candidate), in 34 half the forms have made-up counts (multiples of
five), 35 is clean. The audit's forensics flag 33's fingerprint and 34's last
digits and nothing in 35, and the report lists exactly those, each with the
verifier's figure.
"""

from __future__ import annotations

import hashlib
import re

import pytest

from audit.report import render
from domains.synthetic import ElectionSpec, tally
from keys import Ed25519Signer
from tests.conftest import ORIGIN
from tests.recordlog import RecordLog, setup_election
from verifier.fullaudit import Auditor

SPEC = ElectionSpec(error_share=0, stuffed=("33",), made_up=("34",))
STATIONS = [
    f"{province}{district:02d}0{village}1001{n:03d}"[:13]
    for province in ("33", "34", "35")
    for district, village in ((1, 1), (2, 1), (3, 1))
    for n in range(1, 61)
]


@pytest.fixture(scope="module")
def audit(tmp_path_factory):
    path = tmp_path_factory.mktemp("planted") / "log.db"
    log = RecordLog(
        f"sqlite:///{path}", Ed25519Signer(ORIGIN, hashlib.sha256(b"planted").digest())
    )
    try:
        setup_election(log, STATIONS)
        readers = {}
        for n, province in enumerate(("33", "34", "35")):
            reader = Ed25519Signer(f"reader-{province}", bytes([90 + n]) * 32)
            log.grant(reader, "tps", province)
            readers[province] = reader
        for station in STATIONS:
            body = tally(SPEC, "ppwp", station)
            log.submit(
                log.payload("results.tally/v1", f"results/ppwp/{station}", body),
                [readers[station[:2]]],
            )
        entries = [log.ledger.reader.entry_bytes(i) for i in range(log.ledger.size)]
    finally:
        log.close()
    auditor = Auditor()
    for index, entry in enumerate(entries):
        auditor.add(index, entry)
    report = auditor.summary(True)
    report.update(
        origin=ORIGIN,
        tree_size=len(entries),
        root="00" * 32,
        checkpoint="",
        witnesses={},
        findings=[f.to_json() for f in auditor.findings()],
        forensics=auditor.forensics(),
        timeline=auditor.timeline(),
        keys=auditor.key_events(),
    )
    return report


def test_the_planted_anomalies_are_flagged_and_nothing_else(audit):
    flagged = {(f["region"], f["statistic"]) for f in audit["forensics"]["flagged"]}
    assert ("33", "fingerprint") in flagged
    assert ("34", "last_digits") in flagged
    assert not {region for region, _ in flagged if region.startswith("35")}
    assert not {s for r, s in flagged if r == "33" and s != "fingerprint"}


def test_the_report_lists_what_is_flagged_with_the_verifiers_figures(audit):
    html = render(audit)
    section = html.split('id="forensics"', 1)[1].split("</table>", 1)[0]
    for i, item in enumerate(audit["forensics"]["flagged"]):
        path = f"forensics.flagged.{i}."
        path += "p_value" if "p_value" in item else "corner_share"
        assert f'data-figure="{path}"' in section
        assert f"<td>{item['region']}</td>" in section
    # The stuffed province's fingerprint is drawn, marked as flagged.
    assert re.search(r"Province 33: .*flagged", html)
