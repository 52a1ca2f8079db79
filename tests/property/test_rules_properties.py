"""Hypothesis: every arithmetic rule, recap sums, and the election state's undo.

A form generated to add up breaks no rule; changing one number breaks exactly the
rules that number takes part in. A recap whose totals are its children's sum has
no ``recap-sum`` flag; one vote off anywhere is flagged at that place.
"""

from __future__ import annotations

import copy
import math

from hypothesis import given
from hypothesis import strategies as st

from verifier.record import Record
from verifier.rules import (
    ElectionState,
    add_totals,
    fold_totals,
    recap_flags,
    sum_of,
    tally_flags,
    totals_of,
)

CANDIDATES = ["100025", "100026", "100027"]


@st.composite
def lpj(draw, total=None):
    male = draw(st.integers(0, 150))
    female = draw(st.integers(0, 150)) if total is None else None
    if total is not None:
        male = draw(st.integers(0, total))
        female = total - male
    return {"male": male, "female": female, "total": male + female}


@st.composite
def consistent_forms(draw):
    """A presidential form where every rule holds."""
    registered = draw(lpj())
    dpt = registered["total"]
    dpt_voters = draw(st.integers(0, dpt))
    room = dpt + math.ceil(dpt * 0.02) - dpt_voters
    dptb = draw(st.integers(0, max(0, room)))
    dpk = draw(st.integers(0, max(0, room - dptb)))
    voters = {
        "dpt": draw(lpj(dpt_voters)),
        "dptb": draw(lpj(dptb)),
        "dpk": draw(lpj(dpk)),
    }
    total = dpt_voters + dptb + dpk
    voters["total"] = {
        k: sum(voters[g][k] for g in ("dpt", "dptb", "dpk"))
        for k in ("male", "female", "total")
    }
    invalid = draw(st.integers(0, total))
    valid = total - invalid
    first = draw(st.integers(0, valid))
    second = draw(st.integers(0, valid - first))
    votes = dict(zip(CANDIDATES, (first, second, valid - first - second), strict=True))
    unused = draw(st.integers(0, 50))
    return {
        "stage": "machine_reading",
        "votes": votes,
        "valid": valid,
        "invalid": invalid,
        "total": total,
        "registered": {"dpt": registered},
        "voters": voters,
        "ballots": {"received": total + unused, "used": total, "unused": unused},
    }


@given(consistent_forms())
def test_a_form_that_adds_up_has_no_flags(form):
    assert tally_flags(form, "ppwp") == []


# One change, and exactly the rules that number takes part in (given the form
# had room for it: checked against the rule's own arithmetic below).
MUTATIONS = {
    "votes": lambda f: f["votes"].__setitem__("100025", f["votes"]["100025"] + 1),
    "valid": lambda f: f.__setitem__("valid", f["valid"] + 1),
    "invalid": lambda f: f.__setitem__("invalid", f["invalid"] + 1),
    "total": lambda f: f.__setitem__("total", f["total"] + 1),
    "dpt male": lambda f: f["registered"]["dpt"].__setitem__(
        "male", f["registered"]["dpt"]["male"] + 1
    ),
    "dptb total": lambda f: f["voters"]["dptb"].__setitem__(
        "total", f["voters"]["dptb"]["total"] + 1
    ),
    "ballots received": lambda f: f["ballots"].__setitem__(
        "received", f["ballots"]["received"] + 1
    ),
}
EXPECTED = {
    "votes": {"votes-sum"},
    "valid": {"votes-sum", "valid-invalid-total"},
    "invalid": {"valid-invalid-total"},
    "total": {"valid-invalid-total", "total-voters", "ballot-papers"},
    "dpt male": {"male-female"},
    "dptb total": {"voter-lists", "male-female"},
    "ballots received": {"ballot-papers"},
}


@given(consistent_forms(), st.sampled_from(sorted(MUTATIONS)))
def test_one_change_breaks_exactly_its_rules(form, mutation):
    changed = copy.deepcopy(form)
    MUTATIONS[mutation](changed)
    assert {f.check for f in tally_flags(changed, "ppwp")} == EXPECTED[mutation]


@given(consistent_forms(), st.integers(1, 400))
def test_registered_limit_and_over_registered(form, extra):
    # More voters than registered plus the margin, and more registered than a
    # station may have, are each their own flag.
    over = copy.deepcopy(form)
    over["registered"]["dpt"] = {"male": 301 + extra, "female": 0, "total": 301 + extra}
    assert "registered-over-limit" in {f.check for f in tally_flags(over, "ppwp")}
    crowded = copy.deepcopy(form)
    dpt = crowded["registered"]["dpt"]["total"]
    crowded["voters"]["dpt"] = {"male": dpt + extra, "female": 0, "total": dpt + extra}
    checks = {f.check for f in tally_flags(crowded, "ppwp")}
    assert "dpt-voters-over-registered" in checks


@given(st.lists(consistent_forms(), min_size=1, max_size=8))
def test_a_recap_of_its_children_sum_has_no_flag(children):
    recap = {"totals": add_totals(totals_of(c) for c in children)}
    assert recap_flags(recap, children) == []
    # Summing is order-free.
    again = add_totals(totals_of(c) for c in reversed(children))
    assert again == recap["totals"]


@given(
    st.lists(consistent_forms(), min_size=1, max_size=8),
    st.sampled_from(["valid", "invalid", "total", "votes.100026"]),
    st.sampled_from([-1, 1]),
)
def test_one_vote_off_in_a_recap_is_flagged_where_it_is(children, where, delta):
    totals = add_totals(totals_of(c) for c in children)
    if where.startswith("votes."):
        totals["votes"]["100026"] += delta
    else:
        totals[where] += delta
    flags = recap_flags({"totals": totals}, children)
    assert [f.where for f in flags] == [f"totals.{where}"]
    assert flags[0].check == "recap-sum"


def _district(code: str, villages: dict[str, list[int]]) -> Record:
    body = {
        "province": {"code": code[:2], "name": "p"},
        "regency": {"code": code[:4], "name": "r"},
        "district": {"name": "d"},
        "villages": {v: {"name": v, "tps": tps} for v, tps in villages.items()},
        "source": "test",
    }
    return Record(
        "regions.registry/v1", f"regions/{code}", 0, None, "", body, None, (), b""
    )


village_maps = st.dictionaries(
    st.integers(1001, 1010).map(lambda n: f"317101{n}"),
    st.lists(st.integers(1, 30), max_size=5, unique=True),
    max_size=4,
)


@given(st.lists(st.tuples(st.sampled_from(["317101", "317102"]), village_maps)))
def test_undo_restores_the_state_exactly(updates):
    # Apply a run of registry records, then undo them all: the state is what it
    # was, including the region prefixes that stations are checked against.
    state = ElectionState()
    _ = [state.apply(_district("317101", {"3171011001": [1, 2]}))]
    before = copy.deepcopy(state)
    undo = []
    for district, villages in updates:
        villages = {district + v[6:]: tps for v, tps in villages.items()}
        undo.append(state.apply(_district(district, villages)))
    for changes in reversed(undo):
        state.undo(changes)
    assert state == before


def _walked(state: ElectionState, region: str) -> list[str]:
    # The regions one level below ``region``, straight from the districts.
    width = {0: 2, 2: 4, 4: 6}[len(region)]
    return sorted({d[:width] for d in state.districts if d.startswith(region)})


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["317101", "317102", "317201", "327301", "110101"]),
            village_maps,
        ),
        max_size=8,
    )
)
def test_the_regions_below_follow_every_registry_change_and_undo(updates):
    # children_of keeps the provinces, regencies and districts under a code
    # between calls; asked after each change and each undo, it must still
    # give what a walk over the districts in force gives.
    state = ElectionState()
    regions = ["", "31", "32", "11", "3171", "3172", "3273", "1101"]
    undo = []
    for district, villages in updates:
        villages = {district + v[6:]: tps for v, tps in villages.items()}
        undo.append(state.apply(_district(district, villages)))
        assert [state.children_of(r) for r in regions] == [
            _walked(state, r) for r in regions
        ]
    for changes in reversed(undo):
        state.undo(changes)
        assert [state.children_of(r) for r in regions] == [
            _walked(state, r) for r in regions
        ]
    assert state.children_of("") == []


counts = st.integers(0, 500)
party_totals = st.fixed_dictionaries(
    {
        "valid": counts,
        "invalid": counts,
        "total": counts,
        "parties": st.dictionaries(
            st.sampled_from(["1", "2", "3"]),
            st.fixed_dictionaries(
                {
                    "party": counts,
                    "candidates": st.dictionaries(
                        st.sampled_from(["11", "12", "21", "31"]), counts, max_size=3
                    ),
                }
            ),
            max_size=3,
        ),
    }
)


@given(st.lists(party_totals, min_size=1, max_size=6))
def test_folding_is_linear_and_keeps_every_vote(parts):
    # The fold of the sum is the sum of the folds, a fold folds to itself, and
    # a party's folded vote is its own votes plus all its candidates'.
    summed = add_totals(parts)
    folded = fold_totals(summed)
    assert folded == fold_totals(add_totals(fold_totals(p) for p in parts))
    assert fold_totals(folded) == folded
    for pid, p in folded["parties"].items():
        assert p["candidates"] == {}
        assert p["party"] == sum(
            q["parties"][pid]["party"] + sum(q["parties"][pid]["candidates"].values())
            for q in parts
            if pid in q["parties"]
        )
    assert recap_flags({"totals": folded}, parts, candidates=False) == []
    if any(any(p["candidates"].values()) for p in summed["parties"].values()):
        # Candidate votes carried above the lists do not pass as the folded sum
        # (candidates carried with 0 votes add up either way: nothing to flag).
        assert recap_flags({"totals": summed}, parts, candidates=False)


def _lists(state: ElectionState, ballot: str, region: str) -> list:
    body = {"candidates": {"1": {"number": 1, "name": "c"}}}
    subject = f"candidates/{ballot}/{region or 'national'}"
    record = Record("candidates.change/v1", subject, 0, None, "", body, None, (), b"")
    return state.apply(record)


@given(st.lists(st.sampled_from(["", "31", "32", "3171", "317101"]), max_size=4))
def test_a_recap_counts_candidates_only_within_one_list(regions):
    state = ElectionState()
    undo = [_lists(state, "pdpd", region) for region in regions]
    for code in ["", "31", "32", "3171", "317101", "3171011001"]:
        inside = [r for r in regions if len(r) > len(code) and r.startswith(code)]
        assert state.carries_candidates("pdpd", code) == (not inside), code
        assert state.carries_candidates("ppwp", code)
    for changes in reversed(undo):
        state.undo(changes)
    assert state.carries_candidates("pdpd", "")


@given(
    st.lists(
        st.one_of(
            consistent_forms(),
            party_totals,
            st.fixed_dictionaries({"totals": party_totals}),
        ),
        max_size=6,
    )
)
def test_sum_of_is_the_sum_of_what_each_body_contributes(bodies):
    # Tallies (totals at the top) and recaps (under "totals"), of either kind
    # of ballot: summed without copies, the same sum, and no body changed.
    before = copy.deepcopy(bodies)
    assert sum_of(bodies) == add_totals(totals_of(b) for b in bodies)
    assert bodies == before
