"""Election records through the API: what is refused, what is flagged, corrections."""

from __future__ import annotations

import hashlib
import json

from tests.recordlog import ADMINS, form, setup_election
from verifier.election import recap_subject, tally_subject

TPS = "3171011001001"
NEIGHBOUR = "3171011001002"
STATIONS = [TPS, NEIGHBOUR, "3171011002001", "3273011001001"]


def problem(response) -> str:
    return response.json()["type"].removeprefix("/problems/")


def test_what_no_form_can_say_is_refused_and_changes_nothing(api):
    log = api.log
    keys = setup_election(log, STATIONS)
    size = api.size
    cases = {
        "station outside the registry": (
            log.payload(
                "results.tally/v1",
                tally_subject("ppwp", "3171011001009"),
                form({"100025": 1}),
            ),
            [keys["reader"]],
            "outside-registry",
        ),
        "unknown candidate": (
            log.payload(
                "results.tally/v1", tally_subject("ppwp", TPS), form({"100099": 5})
            ),
            [keys["tps"]],
            "unknown-candidate",
        ),
        "negative count": (
            log.payload(
                "results.tally/v1",
                tally_subject("ppwp", TPS),
                {**form({"100025": 5}), "invalid": -1},
            ),
            [keys["tps"]],
            "integer-out-of-range",
        ),
        "party votes on the presidential ballot": (
            log.payload(
                "results.tally/v1",
                tally_subject("ppwp", TPS),
                {
                    **{k: v for k, v in form({"100025": 1}).items() if k != "votes"},
                    "parties": {"1": {"party": 1, "candidates": {}}},
                },
            ),
            [keys["tps"]],
            "schema-violation",
        ),
        "another station's form": (
            log.payload(
                "results.tally/v1",
                tally_subject("ppwp", NEIGHBOUR),
                form({"100025": 5}),
            ),
            [keys["tps"]],
            "out-of-scope",
        ),
        "a district key reading a form": (
            log.payload(
                "results.tally/v1", tally_subject("ppwp", TPS), form({"100025": 5})
            ),
            [keys["district"]],
            "role-not-allowed",
        ),
        "a recap below the signer's level": (
            log.payload(
                "results.recap/v1",
                recap_subject("ppwp", TPS[:10]),
                {
                    "totals": {
                        "votes": {"100025": 0},
                        "valid": 0,
                        "invalid": 0,
                        "total": 0,
                    },
                    "children": {TPS: "00" * 32},
                },
            ),
            [keys["district"]],
            "out-of-scope",
        ),
        "a recap of a child that is not logged": (
            log.payload(
                "results.recap/v1",
                recap_subject("ppwp", TPS[:10]),
                {
                    "totals": {
                        "votes": {"100025": 0},
                        "valid": 0,
                        "invalid": 0,
                        "total": 0,
                    },
                    "children": {TPS: "00" * 32},
                },
            ),
            [keys["village"]],
            "unknown-child",
        ),
        "a recap child outside its region": (
            log.payload(
                "results.recap/v1",
                recap_subject("ppwp", TPS[:10]),
                {
                    "totals": {
                        "votes": {"100025": 0},
                        "valid": 0,
                        "invalid": 0,
                        "total": 0,
                    },
                    "children": {"3171011002001": "00" * 32},
                },
            ),
            [keys["village"]],
            "schema-violation",
        ),
    }
    for name, (payload, signers, cause) in cases.items():
        response = api.post(payload, signers)
        assert response.status_code in (403, 409, 422), (name, response.json())
        assert problem(response) == cause, (name, response.json())
        assert api.size == size, name


def test_a_form_that_does_not_add_up_is_accepted_as_written(api):
    log = api.log
    keys = setup_election(log, STATIONS)
    body = form({"100025": 86, "100026": 119, "100027": 38})
    body["valid"] = 235  # the real TPS 3101011001003: 243 counted, 235 written
    body["total"] = 240
    response = api.post(
        log.payload("results.tally/v1", tally_subject("ppwp", TPS), body), [keys["tps"]]
    )
    assert response.status_code == 201, response.json()


def test_a_correction_is_a_new_revision_by_an_authority_with_its_reference(api):
    log = api.log
    keys = setup_election(log, STATIONS)
    subject = tally_subject("ppwp", TPS)
    read = log.payload(
        "results.tally/v1",
        subject,
        form({"100025": 80, "100026": 20}, stage="machine_reading"),
    )
    first = api.post(read, [keys["tps"]])
    assert first.status_code == 201
    log.track(read)
    corrected = form({"100025": 8, "100026": 20}, stage="authority_correction")
    missing_reference = log.payload(
        "results.tally/v1", subject, corrected, reason="OCR read 8 as 80"
    )
    assert (
        problem(api.post(missing_reference, [keys["district"]])) == "schema-violation"
    )
    corrected["correction"] = {
        "reason_code": "ocr_error",
        "reference": "Berita acara PPK Gambir No. 12/2024",
    }
    by_station = log.payload(
        "results.tally/v1", subject, corrected, reason="OCR read 8 as 80"
    )
    assert problem(api.post(by_station, [keys["tps"]])) == "role-not-allowed"
    by_authority = api.post(by_station, [keys["district"]])
    assert by_authority.status_code == 201, by_authority.json()
    history = api.client.get(f"/v1/subjects/{subject}").json()["revisions"]
    assert [r["record"]["revision"] for r in history] == [0, 1]
    assert history[1]["record"]["prev"] == hashlib.sha256(read).hexdigest()
    assert json.loads(read)["body"]["votes"]["100025"] == 80  # still in the log


def test_a_recap_of_logged_children_is_accepted(api):
    log = api.log
    keys = setup_election(log, STATIONS)
    payload = log.payload(
        "results.tally/v1",
        tally_subject("ppwp", TPS),
        form({"100025": 5, "100026": 7}, invalid=1),
    )
    assert api.post(payload, [keys["tps"]]).status_code == 201
    recap = log.payload(
        "results.recap/v1",
        recap_subject("ppwp", TPS[:10]),
        {
            "totals": {
                "votes": {"100025": 5, "100026": 7},
                "valid": 12,
                "invalid": 1,
                "total": 13,
            },
            "children": {TPS: hashlib.sha256(payload).hexdigest()},
        },
    )
    response = api.post(recap, [keys["village"]])
    assert response.status_code == 201, response.json()
    assert ADMINS  # the admins set the registry up
