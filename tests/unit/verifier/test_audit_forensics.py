"""The audit's election forensics (``Auditor.forensics``), on a real record log.

Six stations in two provinces: forms with registered voters and voters; one
station where everyone voted for one candidate; a correction with its reason;
a total lowered with no correction, and one lowered by the officers'
confirmation of a machine reading (allowed). The figures come out per
province, as ``saksi-verify audit --json`` prints them.
"""

from __future__ import annotations

import hashlib

import pytest

from keys import Ed25519Signer
from tests.conftest import ORIGIN
from tests.recordlog import SIX_STATIONS, RecordLog, setup_election
from verifier.fullaudit import Auditor


def _form(votes: dict[str, int], entitled: int, stage: str = "officer_confirmed"):
    valid = sum(votes.values())
    voted = valid
    people = lambda n: {"male": n // 2, "female": n - n // 2, "total": n}  # noqa: E731
    return {
        "stage": stage,
        "votes": votes,
        "valid": valid,
        "invalid": 0,
        "total": voted,
        "registered": {"dpt": people(entitled)},
        "voters": {
            "dpt": people(voted),
            "dptb": people(0),
            "dpk": people(0),
            "total": people(voted),
        },
    }


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    path = tmp_path_factory.mktemp("forensics") / "log.db"
    signer = Ed25519Signer(ORIGIN, hashlib.sha256(b"forensics").digest())
    log = RecordLog(f"sqlite:///{path}", signer)
    try:
        keys = setup_election(log, SIX_STATIONS)

        def write(station: str, body: dict, key: str = "reader", **kw) -> None:
            log.submit(
                log.payload("results.tally/v1", f"results/ppwp/{station}", body, **kw),
                [keys[key]],
            )

        a, b, c = SIX_STATIONS[:3]
        write(
            a, _form({"100025": 60, "100026": 40, "100027": 20}, 200, "machine_reading")
        )
        write(a, _form({"100025": 50, "100026": 40, "100027": 20}, 200))  # lowered: ok
        write(b, _form({"100025": 180, "100026": 0, "100027": 0}, 180))  # the extremes
        write(c, _form({"100025": 70, "100026": 70, "100027": 10}, 300))
        write(c, _form({"100025": 60, "100026": 70, "100027": 10}, 300))  # lowered
        fixed = _form({"100025": 61, "100026": 70, "100027": 10}, 300, "recount")
        fixed["correction"] = {"reason_code": "recount_order", "reference": "BA-9"}
        write(c, fixed, "district")
        entries = [log.ledger.reader.entry_bytes(i) for i in range(log.ledger.size)]
    finally:
        log.close()
    auditor = Auditor()
    for index, entry in enumerate(entries):
        auditor.add(index, entry)
    return auditor.forensics(), entries


def test_completeness_counts_forms_against_the_region_table(audited):
    found, _ = audited
    jakarta = found["provinces"]["31"]
    assert jakarta["stations"] == 5  # five of the six stations are in 31
    assert jakarta["reported"]["ppwp"] == 3
    assert jakarta["completeness"]["ppwp"] == pytest.approx(3 / 5)
    assert jakarta["completeness"]["pdpr"] == 0
    assert found["provinces"]["32"]["reported"]["ppwp"] == 0
    # and per regency: 3171 lists four of the stations, three have a form
    central = found["regencies"]["3171"]
    assert (central["stations"], central["reported"]["ppwp"]) == (4, 3)
    assert central["completeness"]["ppwp"] == pytest.approx(3 / 4)
    assert found["regencies"]["3173"]["reported"]["ppwp"] == 0
    assert central["last_digits"]["n"] == found["provinces"]["31"]["last_digits"]["n"]


def test_the_extremes_name_the_station(audited):
    found, _ = audited
    assert found["provinces"]["31"]["extremes"] == {
        "one-candidate-100": 1,
        "turnout-100": 1,
    }
    (station,) = found["extreme_stations"]
    assert station["subject"] == f"results/ppwp/{SIX_STATIONS[1]}"
    assert station["flags"] == ["turnout-100", "one-candidate-100"]
    assert found["extreme_station_count"] == 1
    print_ = found["provinces"]["31"]["fingerprint"]
    assert (print_["stations"], print_["corner"]) == (3, 1)


def test_only_a_total_lowered_with_no_correction_is_listed(audited):
    found, _ = audited
    (lowered,) = found["decreases"]
    assert lowered["subject"] == f"results/ppwp/{SIX_STATIONS[2]}"
    assert (lowered["before"], lowered["after"]) == (150, 140)
    assert found["decrease_count"] == 1
    assert found["provinces"]["31"]["corrections"] == {"recount_order": 1}


def test_the_latest_revision_counts_and_the_methods_are_cited(audited):
    found, _ = audited
    # Station c's three revisions count once, as the correction left it.
    assert found["provinces"]["31"]["last_digits"]["n"] == sum(
        1 for v in (50, 40, 20, 180, 61, 70, 10) if v >= 10
    )
    assert "Beber and Scacco (2012)" in found["methods"]["last_digits"]
    assert "Klimek" in found["methods"]["fingerprint"]
    assert "none is evidence of fraud" in found["methods"]["caution"]


def test_the_last_digit_test_reads_the_presidential_ballot_only():
    # A DPD form's counts are small and fall off within each decade: 10s and
    # 11s far more than 19s in any honest count. They must not be tested.
    from verifier.fullaudit import AuditStore
    from verifier.fullaudit.forensics import forensics
    from verifier.rules.state import ElectionState

    store = AuditStore()
    digits = {"ppwp": [7] * 10, "pdpd": [900, 500] + [0] * 8}
    for n, (ballot, kept) in enumerate(digits.items()):
        store.db.execute(
            "INSERT INTO stations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (f"results/{ballot}/3171011001001", n, "officer_confirmed", 10, 10,
             10, 10, 5, 10, ",".join(map(str, kept)), ""),
        )  # fmt: skip
    found = forensics(store.db, ElectionState(), [])
    tested = found["provinces"]["31"]["last_digits"]
    assert tested["observed"] == [7] * 10
    assert tested["n"] == 70
    assert found["regencies"]["3171"]["last_digits"]["observed"] == [7] * 10
    store.close()
