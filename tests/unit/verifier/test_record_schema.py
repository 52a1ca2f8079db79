"""Records, log entries and the schema checker: good and bad inputs, table-driven."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keys import Ed25519Signer
from verifier.body_schema import (
    Bool,
    Enum,
    Hex,
    Int,
    List,
    Map,
    Nullable,
    Obj,
    Schema,
    SchemaViolation,
    Str,
    check,
)
from verifier.dsse import sign_envelope
from verifier.errors import MalformedInput
from verifier.jcs import canonicalize
from verifier.record import (
    RECORD_PAYLOAD_TYPE,
    Evidence,
    format_log_entry,
    format_timestamp,
    parse_log_entry,
    parse_record,
    parse_timestamp,
    record_payload,
)

BASE = {
    "schema": "results.tally/v1",
    "subject": "results/ppwp/3171011001001",
    "revision": 0,
    "prev": None,
    "issued_at": "2024-02-14T13:05:00.000Z",
    "body": {"valid": 10},
}
PREV = "ab" * 32


def payload(**changes):
    raw = {**BASE, **changes}
    return canonicalize({k: v for k, v in raw.items() if v is not ...})


def test_a_good_record_parses_and_hashes_its_bytes():
    data = payload()
    record = parse_record(data)
    assert (record.schema, record.subject, record.revision) == (
        "results.tally/v1",
        "results/ppwp/3171011001001",
        0,
    )
    assert record.payload_hash == hashlib.sha256(data).hexdigest()
    later = parse_record(payload(revision=1, prev=PREV, reason="recount order 12"))
    assert later.reason == "recount order 12"


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"schema": "Results.tally/v1"}, "schema"),
        ({"schema": "results.tally"}, "schema"),
        ({"subject": "results"}, "subject"),
        ({"subject": "results/ppwp/../x y"}, "subject"),
        ({"revision": -1}, "revision"),
        ({"revision": True}, "revision"),
        ({"revision": 1}, "prev"),
        ({"revision": 1, "prev": PREV}, "reason"),
        ({"revision": 1, "prev": "AB" * 32, "reason": "x"}, "prev"),
        ({"prev": PREV}, "prev"),
        ({"reason": "nothing to supersede"}, "reason"),
        ({"issued_at": "2024-02-14T13:05:00Z"}, "issued_at"),
        ({"issued_at": "2024-02-30T13:05:00.000Z"}, "real date"),
        ({"issued_at": "2024-02-14T13:05:00.000+07:00"}, "issued_at"),
        ({"body": [1]}, "body"),
        ({"extra": 1}, "unknown member"),
        ({"body": ...}, "missing"),
        ({"evidence": []}, "evidence"),
        (
            {"evidence": [{"sha256": "00", "media_type": "image/jpeg", "name": "p1"}]},
            "sha256",
        ),
        (
            {"evidence": [{"sha256": PREV, "media_type": "jpeg", "name": "p1"}]},
            "media_type",
        ),
    ],
)
def test_malformed_records_are_refused(changes, match):
    with pytest.raises(MalformedInput, match=match):
        parse_record(payload(**changes))


def test_non_canonical_payload_is_refused():
    data = payload()
    with pytest.raises(MalformedInput, match="canonical"):
        parse_record(data.replace(b":", b": ", 1))


def test_oversized_payload_is_refused_before_parsing():
    with pytest.raises(MalformedInput, match="exceeds"):
        parse_record(payload(body={"x": "a" * 50_000}))


def test_record_payload_builds_what_parse_record_reads():
    evidence = (Evidence(PREV, "image/jpeg", "C1 page 1"),)
    data = record_payload(
        schema="results.tally/v1",
        subject="results/ppwp/3171011001001",
        revision=2,
        prev=PREV,
        issued_at="2024-02-15T01:00:00.250Z",
        body={"valid": 3},
        reason="plenary correction",
        evidence=evidence,
    )
    record = parse_record(data)
    assert record.evidence == evidence
    assert record.issued_at == "2024-02-15T01:00:00.250Z"


@given(st.datetimes(timezones=st.just(dt.UTC), min_value=dt.datetime(1970, 1, 1)))
def test_timestamps_roundtrip_at_millisecond_precision(moment):
    text = format_timestamp(moment)
    assert parse_timestamp(text, "t") == moment.replace(
        microsecond=moment.microsecond // 1000 * 1000
    )


def test_log_entry_roundtrip_and_limits():
    signer = Ed25519Signer("officer", bytes([7]) * 32)
    envelope = sign_envelope(RECORD_PAYLOAD_TYPE, payload(), [signer])
    data = format_log_entry(envelope, "2024-02-14T13:06:00.123Z")
    entry = parse_log_entry(data)
    assert entry.envelope == envelope
    assert entry.logged_at == "2024-02-14T13:06:00.123Z"
    with pytest.raises(MalformedInput, match="canonical"):
        parse_log_entry(data + b" ")
    with pytest.raises(MalformedInput, match="exactly"):
        parse_log_entry(canonicalize({"envelope": {}, "logged_at": "x", "more": 1}))
    with pytest.raises(MalformedInput, match="logged_at"):
        format_log_entry(envelope, "yesterday")
    big = sign_envelope(RECORD_PAYLOAD_TYPE, b"x" * 60_000, [signer])
    with pytest.raises(MalformedInput, match="exceeds 65535"):
        format_log_entry(big, "2024-02-14T13:06:00.123Z")


SCHEMA = Schema(
    name="test.thing/v1",
    subject=r"things/(?P<region>\d{2}|\d{4})",
    body=Obj(
        {
            "name": Str(20, 1, r"[a-z ]+"),
            "count": Int(0, 1000),
            "flag": Bool(),
            "kind": Enum(("a", "b")),
            "digest": Hex(),
            "note": Nullable(Str(10)),
            "tags": List(Str(5), 3, unique=True),
            "votes": Map(Str(6, 1, r"[0-9]+"), Int(), 5),
            "nested": Obj({"x": Int()}),
        },
        optional=frozenset({"note", "nested"}),
    ),
)
GOOD = {
    "name": "ok",
    "count": 3,
    "flag": False,
    "kind": "a",
    "digest": PREV,
    "tags": ["x", "y"],
    "votes": {"1": 5},
}


def test_schema_accepts_a_good_body_and_finds_the_region():
    check(SCHEMA, GOOD, "things/3171")
    check(SCHEMA, {**GOOD, "note": None, "nested": {"x": 0}}, "things/31")
    assert SCHEMA.region_of("things/3171") == "3171"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({**GOOD, "count": -1}, "body.count"),
        ({**GOOD, "count": 1001}, "body.count"),
        ({**GOOD, "count": True}, "body.count"),
        ({**GOOD, "count": "3"}, "body.count"),
        ({**GOOD, "name": "x" * 21}, "body.name"),
        ({**GOOD, "name": "UPPER"}, "body.name"),
        ({**GOOD, "flag": 0}, "body.flag"),
        ({**GOOD, "kind": "c"}, "body.kind"),
        ({**GOOD, "digest": PREV.upper()}, "body.digest"),
        ({**GOOD, "tags": ["x", "x"]}, "body.tags[1]"),
        ({**GOOD, "tags": ["a", "b", "c", "d"]}, "body.tags"),
        ({**GOOD, "votes": {"x": 1}}, "body.votes key 'x'"),
        ({**GOOD, "votes": {"1": -5}}, "body.votes.1"),
        ({**GOOD, "nested": {"x": 1, "y": 2}}, "body.nested"),
        ({**GOOD, "surprise": 1}, "body"),
        ({k: v for k, v in GOOD.items() if k != "count"}, "body"),
    ],
)
def test_schema_violations_name_their_path(body, path):
    with pytest.raises(SchemaViolation) as err:
        check(SCHEMA, body, "things/31")
    assert err.value.path == path


def test_schema_refuses_a_subject_spelled_otherwise():
    with pytest.raises(SchemaViolation, match="subject"):
        check(SCHEMA, GOOD, "things/317")


def test_deeply_nested_entry_is_malformed_not_a_recursion_error():
    # Found writing the fuzz targets (regression seed tests/fuzz/corpus/log_entry/
    # crash-deep-nesting): the quick paths' json.loads raised RecursionError.
    from verifier.record import decode_logged_entry

    deep = b"[" * 3000 + b"]" * 3000
    with pytest.raises(MalformedInput, match="nested too deep"):
        parse_log_entry(deep)
    with pytest.raises(MalformedInput, match="nested too deep"):
        decode_logged_entry(deep)
