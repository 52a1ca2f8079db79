"""What a watcher concludes from two revisions (``verifier.rules.watch``).

Pure functions: the region of a subject, the recap above it, a total that went
down with no correction, and a machine reading the officers' confirmation
differs from beyond both thresholds (the 2024 case: 652 read for 152 written).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verifier.rules.watch import (
    ReadingDifference,
    parent_recap,
    reading_differences,
    region_of,
    total_of,
    total_went_down,
)

TPS = "3171011001001"
CORRECTION = {"reason_code": "ocr_error", "reference": "BA-2024/017"}


# --- region_of ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "region"),
    [
        (f"results/ppwp/{TPS}", TPS),
        (f"results/pdpr/{TPS}", TPS),
        ("recaps/ppwp/3171011001", "3171011001"),
        ("recaps/ppwp/317101", "317101"),
        ("recaps/ppwp/3171", "3171"),
        ("recaps/ppwp/31", "31"),
        ("recaps/ppwp/national", ""),
    ],
)
def test_region_of_results_and_recaps(subject, region):
    assert region_of(subject) == region


@pytest.mark.parametrize(
    "subject",
    [
        f"candidates/ppwp/{TPS[:6]}",
        "parties/national",
        f"voters/{TPS}/1",
        "keys/abcdef",
        "results/ppwp",
        f"results/ppwp/{TPS}/extra",
        "results",
        "",
    ],
)
def test_region_of_anything_else_is_none(subject):
    assert region_of(subject) is None


# --- parent_recap -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "parent"),
    [
        (f"results/ppwp/{TPS}", "recaps/ppwp/3171011001"),
        ("recaps/ppwp/3171011001", "recaps/ppwp/317101"),
        ("recaps/ppwp/317101", "recaps/ppwp/3171"),
        ("recaps/ppwp/3171", "recaps/ppwp/31"),
        ("recaps/ppwp/31", "recaps/ppwp/national"),
        # the ballot is kept
        (f"results/pdprdk/{TPS}", "recaps/pdprdk/3171011001"),
    ],
)
def test_parent_recap_is_one_level_up(subject, parent):
    assert parent_recap(subject) == parent


@pytest.mark.parametrize(
    "subject",
    [
        "recaps/ppwp/national",  # nothing above the national recap
        "results/ppwp/317101100100",  # 12 digits: not a level
        "recaps/ppwp/317",
        "parties/national",
        f"voters/{TPS}/1",
    ],
)
def test_parent_recap_of_the_top_or_of_no_level_is_none(subject):
    assert parent_recap(subject) is None


def test_walking_up_from_a_form_reaches_the_national_recap_in_five_steps():
    chain = [f"results/ppwp/{TPS}"]
    while (parent := parent_recap(chain[-1])) is not None:
        chain.append(parent)
    assert chain[-1] == "recaps/ppwp/national"
    assert [len(region_of(s) or "") for s in chain] == [13, 10, 6, 4, 2, 0]


# --- total_of / total_went_down -----------------------------------------------------


def test_total_of_a_tally_and_of_a_recap():
    assert total_of({"stage": "officer_confirmed", "total": 212}) == 212
    assert total_of({"totals": {"total": 90_000, "valid": 89_000}}) == 90_000
    assert total_of({"total": 0}) == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"stage": "machine_reading"},
        {"total": "212"},
        {"total": 212.0},
        {"total": None},
        {"totals": 212},  # not a table: no total
        {"totals": {"valid": 3}},
    ],
)
def test_total_of_a_body_without_a_whole_total_is_none(body):
    assert total_of(body) is None


def test_a_total_that_went_down_silently_is_reported():
    assert total_went_down({"total": 212}, {"total": 200}) == (212, 200)
    recap_before = {"totals": {"total": 90_000}}
    assert total_went_down(recap_before, {"totals": {"total": 89_999}}) == (
        90_000,
        89_999,
    )


def test_a_total_that_went_down_with_a_correction_is_not_reported():
    corrected = {"total": 200, "correction": CORRECTION}
    assert total_went_down({"total": 212}, corrected) is None
    recap = {"totals": {"total": 89_999}, "correction": CORRECTION}
    assert total_went_down({"totals": {"total": 90_000}}, recap) is None
    # the key's presence is what counts: the schema checks its form
    assert total_went_down({"total": 212}, {"total": 200, "correction": {}}) is None


def test_a_correction_only_on_the_earlier_revision_does_not_excuse_the_later():
    before = {"total": 212, "correction": CORRECTION}
    assert total_went_down(before, {"total": 200}) == (212, 200)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"total": 212}, {"total": 212}),
        ({"total": 212}, {"total": 213}),
        ({}, {"total": 1}),
        ({"total": 212}, {}),
        ({"total": 212}, {"stage": "recount"}),
    ],
)
def test_a_total_not_lower_or_not_recorded_is_not_reported(before, after):
    assert total_went_down(before, after) is None


@given(
    st.integers(0, 10**9),
    st.integers(0, 10**9),
    st.booleans(),
    st.booleans(),
)
def test_total_went_down_exactly_when_lower_and_no_correction(
    old, new, recap, corrected
):
    def body(total: int) -> dict:
        return {"totals": {"total": total}} if recap else {"total": total}

    after = body(new) | ({"correction": CORRECTION} if corrected else {})
    went = total_went_down(body(old), after)
    if new >= old or corrected:
        assert went is None
    else:
        assert went == (old, new)


# --- reading_differences ------------------------------------------------------------


def _tally(stage: str, **votes: int) -> dict:
    return {"stage": stage, "votes": {k.lstrip("c"): v for k, v in votes.items()}}


def test_the_2024_case_652_read_for_152_confirmed_is_caught():
    machine = _tally("machine_reading", c100025=652, c100026=80, c100027=41)
    confirmed = _tally("officer_confirmed", c100025=152, c100026=80, c100027=41)
    assert reading_differences(machine, confirmed, 50, 0.10) == [
        ReadingDifference("100025", 652, 152)
    ]


def test_a_gap_must_exceed_the_votes_threshold():
    # 40 votes of 100 is 40%, but not more than 50 votes
    machine, confirmed = {"votes": {"1": 100}}, {"votes": {"1": 60}}
    assert reading_differences(machine, confirmed, 50, 0.10) == []
    assert reading_differences(machine, confirmed, 39, 0.10) == [
        ReadingDifference("1", 100, 60)
    ]


def test_a_gap_must_exceed_the_ratio_of_the_larger_figure():
    # 60 votes of 1,000 is more than 50 votes, but only 6%
    machine, confirmed = {"votes": {"1": 1000}}, {"votes": {"1": 940}}
    assert reading_differences(machine, confirmed, 50, 0.10) == []
    assert reading_differences(machine, confirmed, 50, 0.05) == [
        ReadingDifference("1", 1000, 940)
    ]


def test_a_gap_equal_to_a_threshold_is_not_beyond_it():
    # gap 51 = exactly 10% of 510: not more than the ratio
    assert (
        reading_differences({"votes": {"1": 510}}, {"votes": {"1": 459}}, 50, 0.1) == []
    )
    # gap 50 = exactly the votes threshold, 50% of 100
    assert (
        reading_differences({"votes": {"1": 100}}, {"votes": {"1": 50}}, 50, 0.1) == []
    )
    # one more vote of difference is beyond both
    assert reading_differences(
        {"votes": {"1": 100}}, {"votes": {"1": 49}}, 50, 0.1
    ) == [ReadingDifference("1", 100, 49)]


def test_the_larger_figure_may_be_the_confirmed_one():
    machine, confirmed = {"votes": {"1": 152}}, {"votes": {"1": 652}}
    assert reading_differences(machine, confirmed, 50, 0.10) == [
        ReadingDifference("1", 152, 652)
    ]


def test_a_candidate_missing_on_one_side_counts_as_zero_there():
    machine = {"votes": {"1": 300, "2": 10}}
    confirmed = {"votes": {"2": 10, "3": 200}}
    assert reading_differences(machine, confirmed, 50, 0.10) == [
        ReadingDifference("1", 300, 0),
        ReadingDifference("3", 0, 200),
    ]


def test_bodies_without_votes_differ_in_nothing():
    assert reading_differences({}, {}, 0, 0.0) == []
    assert reading_differences({"stage": "machine_reading"}, {}, 0, 0.0) == []


def test_party_ballots_compare_party_votes_and_each_candidates():
    machine = {
        "parties": {
            "1": {"party": 400, "candidates": {"11": 300, "12": 20}},
            "2": {"party": 90, "candidates": {"21": 5}},
        }
    }
    confirmed = {
        "parties": {
            "1": {"party": 100, "candidates": {"11": 300, "12": 20}},
            "2": {"party": 90, "candidates": {"21": 5, "22": 120}},
        }
    }
    assert reading_differences(machine, confirmed, 50, 0.10) == [
        ReadingDifference("2/22", 0, 120),
        ReadingDifference("party 1", 400, 100),
    ]


def test_a_party_missing_on_one_side_counts_as_zero_there():
    machine = {"parties": {"7": {"party": 250, "candidates": {"71": 60}}}}
    confirmed = {"parties": {}}
    assert reading_differences(machine, confirmed, 50, 0.10) == [
        ReadingDifference("7/71", 60, 0),
        ReadingDifference("party 7", 250, 0),
    ]


def test_differences_come_sorted_by_candidate():
    machine = {"votes": {"9": 500, "10": 500, "1": 500}}
    confirmed = {"votes": {}}
    assert [d.candidate for d in reading_differences(machine, confirmed, 50, 0.1)] == [
        "1",
        "10",
        "9",
    ]


_VOTES = st.dictionaries(
    st.sampled_from(["100025", "100026", "100027", "100028"]),
    st.integers(0, 1000),
    max_size=4,
)


@given(_VOTES, _VOTES, st.integers(0, 200), st.floats(0, 1))
def test_which_side_is_larger_does_not_matter(read, kept, votes, ratio):
    # The thresholds are on the gap and on the larger figure: swapping the two
    # readings flags the same candidates, with the figures swapped.
    forward = reading_differences({"votes": read}, {"votes": kept}, votes, ratio)
    backward = reading_differences({"votes": kept}, {"votes": read}, votes, ratio)
    assert [(d.candidate, d.confirmed, d.machine) for d in backward] == [
        (d.candidate, d.machine, d.confirmed) for d in forward
    ]


@given(_VOTES, _VOTES, st.integers(0, 200), st.floats(0, 1))
def test_every_difference_reported_is_beyond_both_thresholds(read, kept, votes, ratio):
    found = reading_differences({"votes": read}, {"votes": kept}, votes, ratio)
    for d in found:
        gap = abs(d.machine - d.confirmed)
        assert gap > votes
        assert gap > ratio * max(d.machine, d.confirmed)
        assert d.machine == read.get(d.candidate, 0)
        assert d.confirmed == kept.get(d.candidate, 0)
    flagged = {d.candidate for d in found}
    for candidate in set(read) | set(kept):
        if candidate not in flagged:
            a, b = read.get(candidate, 0), kept.get(candidate, 0)
            assert abs(a - b) <= votes or abs(a - b) <= ratio * max(a, b)


@given(_VOTES, _VOTES, st.integers(0, 100), st.integers(0, 100), st.floats(0, 1))
def test_a_higher_votes_threshold_never_flags_more(read, kept, low, extra, ratio):
    loose = reading_differences({"votes": read}, {"votes": kept}, low, ratio)
    strict = reading_differences({"votes": read}, {"votes": kept}, low + extra, ratio)
    assert set(strict) <= set(loose)


@given(_VOTES, st.integers(0, 200), st.floats(0, 1))
def test_identical_readings_never_differ(read, votes, ratio):
    assert (
        reading_differences({"votes": read}, {"votes": dict(read)}, votes, ratio) == []
    )
