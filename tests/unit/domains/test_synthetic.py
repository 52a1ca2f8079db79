"""The synthetic election: deterministic, valid where it should be, flagged if not."""

from __future__ import annotations

import pytest

from domains.regions import district_bodies
from domains.synthetic import (
    ElectionSpec,
    candidate_lists,
    correction_of,
    parties,
    subjects,
    tally,
)
from tests.helpers import SHARED
from verifier.body_schema import check
from verifier.election import TALLY
from verifier.record import Record
from verifier.rules import ElectionState, tally_flags

WILAYAH = SHARED / "data/sirekap2024/sirekap_wilayah_ppwp.csv"
TPS = SHARED / "data/sirekap2024/sirekap_tps_ppwp.csv.gz"


def record(schema: str, subject: str, body: dict, revision: int = 0) -> Record:
    return Record(schema, subject, revision, None, "", body, None, (), b"")


@pytest.fixture(scope="module")
def slice_():
    # Kepulauan Seribu: two real districts, every station of them.
    districts = list(district_bodies(WILAYAH, TPS, "3101"))
    state = ElectionState()
    for code, body in districts:
        state.apply(record("regions.registry/v1", f"regions/{code}", body))
    stations = [
        f"{village}{n:03d}"
        for _, body in districts
        for village, spec in body["villages"].items()
        for n in spec["tps"]
    ]
    state.apply(record("parties.change/v1", "parties/national", parties()))
    spec = ElectionSpec(error_share=0.0)
    for subject, body in candidate_lists(spec, stations):
        candidates = record("candidates.change/v1", subject, body)
        state.check(candidates)
        state.apply(candidates)
    return state, stations


def test_clean_forms_pass_every_check_and_break_no_rule(slice_):
    state, stations = slice_
    spec = ElectionSpec(error_share=0.0)
    seen = 0
    for subject, ballot, _station in subjects(spec, stations):
        body = tally(spec, ballot, _station)
        check(TALLY, body, subject)
        state.check(record(TALLY.name, subject, body))
        assert tally_flags(body, ballot) == [], subject
        seen += 1
    assert seen == 5 * len(stations) == 440  # Kepulauan Seribu: 88 stations


def test_the_same_seed_gives_the_same_election(slice_):
    _, stations = slice_
    spec = ElectionSpec(seed=7)
    assert [tally(spec, "pdpr", s) for s in stations[:20]] == [
        tally(ElectionSpec(seed=7), "pdpr", s) for s in stations[:20]
    ]
    assert tally(spec, "pdpr", stations[0]) != tally(
        ElectionSpec(seed=8), "pdpr", stations[0]
    )


def test_broken_forms_are_flagged_and_their_corrections_are_clean(slice_):
    state, stations = slice_
    spec = ElectionSpec(error_share=1.0, correction_share=1.0)
    for subject, ballot, station in list(subjects(spec, stations))[:400]:
        body = tally(spec, ballot, station)
        check(TALLY, body, subject)
        assert tally_flags(body, ballot), subject  # accepted, and flagged
        fixed = correction_of(spec, ballot, station, body)
        assert fixed is not None
        assert fixed["stage"] == "authority_correction"
        check(TALLY, fixed, subject)
        state.check(record(TALLY.name, subject, fixed, revision=1))
        assert tally_flags(fixed, ballot) == []


def test_shares_are_about_what_was_asked(slice_):
    _, stations = slice_
    spec = ElectionSpec(error_share=0.2, correction_share=0.5)
    forms = [(b, s, tally(spec, b, s)) for _, b, s in subjects(spec, stations)]
    flagged = sum(1 for b, _, body in forms if tally_flags(body, b))
    corrected = sum(1 for b, s, body in forms if correction_of(spec, b, s, body))
    assert 0.15 < flagged / len(forms) < 0.25
    assert 0.3 * flagged < corrected < 0.7 * flagged + 0.01 * len(forms)
