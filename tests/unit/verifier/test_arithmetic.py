"""Tally and recap arithmetic (verifier.rules.arithmetic): the rules at their edges.

Each test starts from a form that adds up (no flags) and moves one number to just
inside or just past a rule's boundary, so a rule that is off by one, drops a term
or skips a key is caught.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from verifier.rules import TallyRules, add_totals, recap_flags, tally_flags, totals_of


def _lpj(total: int) -> dict[str, int]:
    return {"male": total // 2, "female": total - total // 2, "total": total}


def _form(
    dpt: int = 100,
    dpt_voters: int = 80,
    dptb: int = 0,
    ballots: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A presidential tally where every rule holds (votes split over 2 candidates)."""
    total = dpt_voters + dptb
    voters = {"dpt": _lpj(dpt_voters), "dptb": _lpj(dptb), "dpk": _lpj(0)}
    voters["total"] = {
        k: sum(voters[g][k] for g in ("dpt", "dptb", "dpk"))
        for k in ("male", "female", "total")
    }
    invalid = min(total, 1)
    valid = total - invalid
    return {
        "stage": "machine_reading",
        "votes": {"100025": valid - valid // 3, "100026": valid // 3},
        "valid": valid,
        "invalid": invalid,
        "total": total,
        "registered": {"dpt": _lpj(dpt)},
        "voters": voters,
        "ballots": ballots
        if ballots is not None
        else {"received": total + 10, "used": total, "unused": 10},
    }


def _checks(body: dict[str, Any], rules: TallyRules | None = None) -> set[str]:
    return {f.check for f in tally_flags(body, "ppwp", rules)}


def test_base_form_has_no_flags():
    assert _checks(_form()) == set()


# --- ballot-papers: received = used + unused + damaged ---------------------------


def test_ballot_papers_damaged_completes_the_count_not_flagged():
    # 93 = 80 used + 10 unused + 3 damaged: adds up only with the damaged ones.
    body = _form(ballots={"received": 93, "used": 80, "unused": 10, "damaged": 3})
    assert _checks(body) == set()


def test_ballot_papers_damaged_beyond_received_flagged():
    # 90 = 80 + 10, but 3 more were damaged: 93 papers from 90 received.
    body = _form(ballots={"received": 90, "used": 80, "unused": 10, "damaged": 3})
    assert _checks(body) == {"ballot-papers"}


@pytest.mark.parametrize(("received", "flagged"), [(92, True), (93, False), (94, True)])
def test_ballot_papers_boundary_with_damaged(received, flagged):
    ballots = {"received": received, "used": 80, "unused": 10, "damaged": 3}
    assert ("ballot-papers" in _checks(_form(ballots=ballots))) is flagged


# --- voters-over-registered: dpt + ceil(dpt * margin_ratio) -----------------------


@pytest.mark.parametrize(
    ("dpt", "allowed"),
    [
        (100, 102),  # 2% of 100 is exactly 2
        (101, 104),  # 2.02 rounds up to 3
        (150, 153),  # exactly 3
        (1, 2),  # 0.02 rounds up to 1
    ],
)
def test_voters_exactly_at_margin_not_flagged(dpt, allowed):
    body = _form(dpt=dpt, dpt_voters=dpt, dptb=allowed - dpt)
    assert _checks(body) == set()


@pytest.mark.parametrize(
    ("dpt", "allowed"), [(100, 102), (101, 104), (150, 153), (1, 2)]
)
def test_voters_one_past_margin_flagged(dpt, allowed):
    body = _form(dpt=dpt, dpt_voters=dpt, dptb=allowed - dpt + 1)
    assert _checks(body) == {"voters-over-registered"}


def test_voters_one_below_margin_not_flagged():
    assert _checks(_form(dpt=101, dpt_voters=101, dptb=2)) == set()


def test_voters_margin_follows_the_configured_ratio():
    rules = TallyRules(margin_ratio=0.1)  # 10% of 100: up to 110 voters
    assert _checks(_form(dpt=100, dpt_voters=100, dptb=10), rules) == set()
    over = _form(dpt=100, dpt_voters=100, dptb=11)
    assert _checks(over, rules) == {"voters-over-registered"}


def test_zero_registered_allows_no_voters():
    assert _checks(_form(dpt=0, dpt_voters=0, dptb=0)) == set()
    assert "voters-over-registered" in _checks(_form(dpt=0, dpt_voters=0, dptb=1))


# --- recap-sum --------------------------------------------------------------------


def _children() -> list[dict[str, Any]]:
    # Only the second child has votes for candidate 100027.
    return [
        {"votes": {"100025": 50, "100026": 29}, "valid": 79, "invalid": 1, "total": 80},
        {
            "votes": {"100025": 30, "100026": 24, "100027": 5},
            "valid": 59,
            "invalid": 1,
            "total": 60,
        },
    ]


def test_recap_of_its_children_sum_not_flagged():
    children = _children()
    recap = {"totals": add_totals(totals_of(c) for c in children)}
    assert recap_flags(recap, children) == []


def test_recap_leaving_out_a_candidate_with_votes_flagged():
    children = _children()
    totals = add_totals(totals_of(c) for c in children)
    del totals["votes"]["100027"]  # no key at all, rather than a wrong number
    flags = recap_flags({"totals": totals}, children)
    assert [(f.check, f.where) for f in flags] == [("recap-sum", "totals.votes.100027")]


def test_recap_leaving_out_all_candidate_votes_flagged():
    children = _children()
    totals = add_totals(totals_of(c) for c in children)
    del totals["votes"]
    flags = recap_flags({"totals": totals}, children)
    assert {f.where for f in flags} == {
        "totals.votes.100025",
        "totals.votes.100026",
        "totals.votes.100027",
    }


def _party_child(party: int, candidate: int, other_party: int) -> dict[str, Any]:
    total = party + candidate + other_party
    return {
        "parties": {
            "1": {"party": party, "candidates": {"1001": candidate}},
            "2": {"party": other_party, "candidates": {}},
        },
        "valid": total,
        "invalid": 0,
        "total": total,
    }


def test_recap_leaving_out_a_party_with_votes_flagged():
    children = [_party_child(3, 4, 2), _party_child(1, 0, 6)]
    totals = add_totals(totals_of(c) for c in children)
    assert recap_flags({"totals": copy.deepcopy(totals)}, children) == []
    del totals["parties"]["2"]
    flags = recap_flags({"totals": totals}, children)
    assert [(f.check, f.where) for f in flags] == [
        ("recap-sum", "totals.parties.2.party")
    ]


def test_recap_leaving_out_a_party_candidate_with_votes_flagged():
    children = [_party_child(3, 4, 2), _party_child(1, 0, 6)]
    totals = add_totals(totals_of(c) for c in children)
    del totals["parties"]["1"]["candidates"]["1001"]
    flags = recap_flags({"totals": totals}, children)
    assert [(f.check, f.where) for f in flags] == [
        ("recap-sum", "totals.parties.1.candidates.1001")
    ]
