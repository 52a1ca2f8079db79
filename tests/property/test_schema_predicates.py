"""Hypothesis: a schema's compiled predicate never accepts what its check refuses.

``verifier.body_schema.check`` accepts a body on the compiled predicate alone and only
runs the path-naming check when the predicate says no. So the predicate must be
at most as lenient as the check: for every registered schema, bodies made by the
synthetic election (which fit) and every mutation of them (a value replaced by
any JSON value, a member dropped or added) must get the same verdict from both
or be refused by the predicate alone.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domains.synthetic import ElectionSpec, candidate_lists, parties, tally
from tests.recordlog import district_body
from verifier.body_schema import (
    Int,
    List,
    Map,
    SchemaViolation,
    Str,
    _accepts,
    check,
)
from verifier.election import BALLOTS, tally_subject
from verifier.schema_registry import SCHEMAS

STATION = "3171011001001"
SPEC = ElectionSpec(error_share=0.5)
GOOD: list[tuple[str, str, dict[str, Any]]] = [
    *[
        ("results.tally/v1", tally_subject(b, station), tally(SPEC, b, station))
        for b in BALLOTS
        for station in (STATION, "3171011001002", "3171011001003")
    ],
    ("parties.change/v1", "parties/national", parties()),
    (
        "regions.registry/v1",
        "regions/317101",
        district_body(["3171011001001", "3171011001002", "3171011002007"]),
    ),
    *[
        ("candidates.change/v1", subject, body)
        for subject, body in candidate_lists(SPEC, [STATION])
    ],
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.text(max_size=12)
    | st.sampled_from(["ppwp", "100025", "0" * 64, "machine_reading", "3171"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for position, item in enumerate(value):
            found += _paths(item, (*path, position))
    return found


def _verdicts(name: str, body: Any) -> tuple[bool, bool]:
    schema = SCHEMAS[name]
    try:
        schema.body.check(body, "body")
    except SchemaViolation:
        checked = False
    else:
        checked = True
    return _accepts(schema.body)(body), checked


@pytest.mark.parametrize(("name", "subject", "body"), GOOD)
def test_good_bodies_pass_both(name, subject, body):
    assert _verdicts(name, body) == (True, True)
    check(SCHEMAS[name], body, subject)


@settings(max_examples=400)
@given(
    st.sampled_from(GOOD),
    st.data(),
    st.sampled_from(["replace", "negate", "drop", "add"]),
    json_values,
)
def test_the_predicate_is_never_more_lenient_than_the_check(good, data, how, new):
    name, subject, body = good
    body = copy.deepcopy(body)
    path = data.draw(st.sampled_from(_paths(body)))
    if how == "negate" and path:  # an integer just below zero, a string changed
        parent = body
        for step in path[:-1]:
            parent = parent[step]
        old = parent[path[-1]]
        if isinstance(old, int) and not isinstance(old, bool):
            parent[path[-1]] = -old - 1
        elif isinstance(old, str):
            parent[path[-1]] = old.upper() + "!"
    elif how == "replace" and path:
        parent = body
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = new
    else:
        target = body
        for step in path:
            target = target[step]
        if isinstance(target, dict) and target and how == "drop":
            target.pop(data.draw(st.sampled_from(sorted(target))))
        elif isinstance(target, dict):
            target[data.draw(st.text(max_size=6))] = new
        elif isinstance(target, list) and target:
            target.pop() if how == "drop" else target.append(new)
    accepted, checked = _verdicts(name, body)
    assert not accepted or checked
    if not checked:  # and check() as a whole still refuses, with a path
        with pytest.raises(SchemaViolation):
            check(SCHEMAS[name], body, subject)


# A map of names to counts is checked in bulk (``_compile_counts``): each way a
# count or a name can be wrong is refused, also after its names were accepted.
COUNTS = Map(Str(8, 1, "[0-9]+"), Int(0, 1000), max_items=3, min_items=1)


@pytest.mark.parametrize(
    ("value", "fits"),
    [
        ({"1": 0, "2": 1000}, True),
        ({"1": 5}, True),
        ({}, False),  # fewer than min_items
        ({"1": 1, "2": 2, "3": 3, "4": 4}, False),  # more than max_items
        ({"1": True}, False),  # a boolean is not a count
        ({"1": 1.0}, False),
        ({"1": "1"}, False),
        ({"1": None}, False),
        ({"1": -1}, False),
        ({"1": 1001}, False),
        ({"2": 3, "x": 1}, False),  # a name the pattern refuses, beside a known one
        ({"": 1}, False),
        ([1, 2], False),
        ("1", False),
    ],
)
def test_counts_are_refused_exactly_as_the_check_refuses(value, fits):
    accepts = _accepts(COUNTS)
    assert accepts({"1": 1, "2": 2}) is True  # the names are known from here on
    assert accepts(value) is fits
    try:
        COUNTS.check(value, "counts")
    except SchemaViolation:
        assert not fits
    else:
        assert fits


# A list of integers (a village's station numbers) is checked in bulk too.
NUMBERS = List(Int(1, 999), 4, unique=True)


@pytest.mark.parametrize(
    ("value", "fits"),
    [
        ([1, 2, 999], True),
        ([], True),
        ([1, 2, 3, 4, 5], False),  # more than max_items
        ([1, 1], False),  # not unique
        ([0], False),
        ([1000], False),
        ([True], False),
        ([1, 2.0], False),
        (["1"], False),
        ([None], False),
        ((1, 2), False),
        ({1: 2}, False),
    ],
)
def test_integer_lists_are_refused_exactly_as_the_check_refuses(value, fits):
    assert _accepts(NUMBERS)(value) is fits
    try:
        NUMBERS.check(value, "numbers")
    except SchemaViolation:
        assert not fits
    else:
        assert fits
