"""No field of a voter-data record can hold a national ID, a name or a birth date.

Two ways: the schema has no free-text member at all (only integers, fixed words
and hex commitments), and hypothesis tries to smuggle a NIK, a name or a birth
date into every place of a record a writer controls (each body member, the
subject, the reason, the evidence, a commitment padded from a number): every
attempt is refused by the same checks the server and the verifier run.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verifier.body_schema import Enum, Hex, Int, List, Obj, Str, check
from verifier.election import VOTERS
from verifier.errors import MalformedInput
from verifier.record import parse_record, record_payload
from verifier.rules import ElectionState

STATION = "3171011001001"

niks = st.from_regex(r"\A[1-9][0-9]{15}\Z")  # 16-digit NIK
names = st.from_regex(r"\A[A-Z][a-z]{2,12}( [A-Z][a-z]{2,12}){0,3}\Z")
dates = st.from_regex(
    r"\A(19[4-9][0-9]|20[0-2][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9])\Z"
)
personal = st.one_of(niks, names, dates)


def leaves(kind, path="body"):
    """Every leaf type of a schema type, with its path."""
    if isinstance(kind, Obj):
        for name, inner in kind.fields.items():
            yield from leaves(inner, f"{path}.{name}")
    elif isinstance(kind, List):
        yield from leaves(kind.item, f"{path}[]")
    else:
        yield path, kind


def test_the_schema_has_no_free_text():
    found = dict(leaves(VOTERS.body))
    assert found  # the walk saw the members
    for path, kind in found.items():
        assert isinstance(kind, Int | Enum | Hex), path
        assert not isinstance(kind, Str), path
    words = [w for k in found.values() if isinstance(k, Enum) for w in k.values]
    assert all(w.isalpha() and w.islower() for w in words)


def state() -> ElectionState:
    s = ElectionState()
    s.districts = {STATION[:6]: {STATION[:10]: frozenset({int(STATION[10:])})}}
    return s


def good_body() -> dict:
    return {
        "kind": "update",
        "registered": {"male": 120, "female": 130, "total": 250},
        "added": [hashlib.sha256(b"salt|entry-1").hexdigest()],
        "removed": [],
        "transferred_in": [],
        "transferred_out": [],
    }


def decide(subject: str, body: dict, reason=None, evidence=(), revision=0) -> None:
    """The checks a voter-data record meets on the server and in the verifier."""
    payload = record_payload(
        schema=VOTERS.name,
        subject=subject,
        revision=revision,
        prev=None if revision == 0 else "ab" * 32,
        issued_at="2024-02-01T00:00:00.000Z",
        body=body,
        reason=reason,
        evidence=evidence,
    )
    record = parse_record(payload)
    check(VOTERS, record.body, record.subject)
    state().check(record)


def test_a_good_batch_passes():
    decide(f"voters/{STATION}/1", good_body())


SLOTS = [
    "kind",
    "registered.total",
    "added",
    "removed",
    "subject",
    "batch",
    "reason",
    "evidence",
    "extra member",
]


@given(personal, st.sampled_from(SLOTS))
def test_personal_data_in_any_slot_is_refused(value, slot):
    body = good_body()
    subject, reason, evidence, revision = f"voters/{STATION}/1", None, (), 0
    if slot == "kind":
        body["kind"] = value
    elif slot == "registered.total":
        body["registered"]["total"] = value
    elif slot in ("added", "removed"):
        body[slot] = [value]
    elif slot == "subject":
        subject = f"voters/{value}"
    elif slot == "batch":
        subject = f"voters/{STATION}/{value}"
    elif slot == "reason":
        reason, revision = value, 1
    elif slot == "evidence":
        from verifier.record import Evidence

        evidence = (Evidence("ab" * 32, "image/jpeg", value),)
    else:
        body["holder"] = value
    with pytest.raises((MalformedInput, ValueError)):
        decide(subject, body, reason, evidence, revision)


@given(niks)
def test_a_number_padded_into_a_commitment_is_refused(nik):
    # A NIK (or any number) written as a zero-padded "hash" is not a commitment.
    for padded in (nik.rjust(64, "0"), nik.ljust(64, "0"), (nik * 4)[:64]):
        body = good_body()
        body["added"] = [padded]
        with pytest.raises(MalformedInput):
            decide(f"voters/{STATION}/1", body)
