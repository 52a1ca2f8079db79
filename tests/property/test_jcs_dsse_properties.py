"""Hypothesis: RFC 8785 canonical JSON and DSSE envelopes."""

from __future__ import annotations

import base64
import datetime as dt
import enum
import json

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from keys import Ed25519Signer
from verifier import jcs
from verifier.dsse import (
    envelope_to_json,
    parse_envelope,
    sign_envelope,
    verify_envelope,
)
from verifier.errors import MalformedInput, SignatureInvalid
from verifier.jcs import MAX_SAFE_INTEGER, canonicalize, parse_canonical, parse_json
from verifier.record import format_log_entry, format_timestamp, parse_log_entry

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
scalars = (
    st.none() | st.booleans() | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER) | text
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(text, inner, max_size=5)
    ),
    max_leaves=25,
)

SIGNERS = [Ed25519Signer(f"k{i}", bytes([i + 1]) * 32) for i in range(3)]
KEYS = {s.keyid: s.public_key for s in SIGNERS}


@given(values)
def test_canonical_bytes_match_the_rfc8785_package(value):
    # An independent implementation as oracle, over the integer-only profile.
    assert canonicalize(value) == rfc8785.dumps(value)


@given(values)
def test_parse_canonical_roundtrips(value):
    data = canonicalize(value)
    assert parse_canonical(data, 1 << 20) == value


def _emitted(value: object) -> bytes:
    # The pure-Python emitter alone, as canonicalize was before its fast path.
    out: list[str] = []
    jcs._emit(value, out, 0)
    return "".join(out).encode("utf-8")


class Small(enum.IntEnum):
    ONE = 1


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1.0},
        {"a": [1, 2.5]},
        {1: 2},
        {True: 1},
        {None: 1},
        {"a": (1, 2)},
        {"a": True, "b": False, "c": None},
        {"a": Small.ONE},
        {"a": 2**53},
        {"a": -(2**53) + 1},
        {"a": "\ud800"},
        {"a": "caf\u00e9", "\u00e9": 1},
        {"a": '\x00\x1f\\"/'},
        {"b": 1, "a": {"d": [], "c": {}}},
        [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
        [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
        float("nan"),
        b"bytes",
        None,
        "x",
    ],
)
def test_canonicalize_fast_path_agrees_with_the_emitter(value):
    try:
        expected = _emitted(value)
    except MalformedInput:
        with pytest.raises(MalformedInput):
            canonicalize(value)
    else:
        assert canonicalize(value) == expected


@given(st.dictionaries(text, scalars, min_size=2, max_size=6))
def test_non_canonical_spellings_are_refused(value):
    data = canonicalize(value)
    for variant in (
        json.dumps(value, ensure_ascii=False).encode(),  # spaces after separators
        json.dumps(value, ensure_ascii=True, separators=(",", ":")).encode(),
        json.dumps(dict(reversed(list(value.items()))), separators=(",", ":")).encode(),
    ):
        if variant != data:
            with pytest.raises(MalformedInput, match="canonical"):
                parse_canonical(variant, 1 << 20)


def _strict_canonical(data: bytes) -> object:
    # The strict path alone, as parse_canonical was before its ASCII fast path.
    value = parse_json(data, 1 << 20)
    if canonicalize(value) != data:
        raise MalformedInput("not in RFC 8785 canonical form")
    return value


ascii_text = st.text(st.characters(max_codepoint=0x7F), max_size=8)
ascii_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | ascii_text,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(ascii_text, inner, max_size=4)
    ),
    max_leaves=40,
)
json_spellings = st.one_of(
    ascii_values.map(lambda v: json.dumps(v, sort_keys=True, separators=(",", ":"))),
    ascii_values.map(json.dumps),
    ascii_values.map(lambda v: json.dumps(v, ensure_ascii=False)),
    st.text(
        st.sampled_from('{}[]":,0123456789-.eE \\unlltruefalsa\x00\x7f'), max_size=40
    ),
)


@given(json_spellings, st.sampled_from(["", "x", '{"a":1,"a":2}']), st.booleans())
def test_fast_path_agrees_with_the_strict_parser(text, extra, splice):
    # parse_canonical's ASCII fast path may only ever answer what the strict
    # path answers: the same value, or a refusal.
    _agrees_with_the_strict_parser((text + extra if splice else text).encode())


def _agrees_with_the_strict_parser(data: bytes) -> None:
    try:
        expected = _strict_canonical(data)
    except MalformedInput:
        with pytest.raises(MalformedInput):
            parse_canonical(data, 1 << 20)
    else:
        got = parse_canonical(data, 1 << 20)
        assert got == expected
        assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 32 + b"]" * 32,  # nesting at the limit, and one past it
        b"[" * 33 + b"]" * 33,
        b"[" * 32 + b"1" + b"]" * 32,
        b'{"a":"' + b"[" * 40 + b'"}',  # brackets inside strings do not nest
        b'{"a":"\\\\"}',  # an escaped backslash before the closing quote
        b'{"a":["\\\\"],"b":' + b"[" * 31 + b"]" * 31 + b"}",
        b'{"a":"\\u005b\\""' + b',"b":' + b"[" * 31 + b"]" * 31 + b"}",
        b'{"a":9007199254740991,"b":-9007199254740991}',  # 16 digits, in range
        b'{"a":"1234567890123456789"}',  # a long digit run inside a string
        b'{"a":1234567890123456789}',
        b'{"a":-0}',
    ],
)
def test_fast_path_agrees_at_its_edges(data):
    _agrees_with_the_strict_parser(data)


@pytest.mark.parametrize(
    "data",
    [
        b'{"a":1,"a":2}',
        b'{"a":"\\ud800"}',
        b'{"a":1.0}',
        b'{"a":9007199254740992}',
        b'{"a":"\\u001F"}',
        b'{"a":"\\/"}',
        b"[" * 34 + b"]" * 34,
        b"[" * 33 + b"1" + b"]" * 33,
        b'{"a":' * 33 + b'{"a":1}' + b"}" * 33,
        b'{"b":1,"a":2}',
    ],
)
def test_fast_path_refuses_what_is_not_canonical(data):
    with pytest.raises(MalformedInput):
        parse_canonical(data, 1 << 20)


@pytest.mark.parametrize(
    "bad",
    [
        b'{"a":1,"a":2}',
        b'{"a":1.5}',
        b'{"a":1e3}',
        b'{"a":NaN}',
        b'{"a":9007199254740992}',
        b'{"a":-9007199254740992}',
        b'{"a":"\\ud800"}',
        b"\xff",
        b"[" * 100 + b"]" * 100,
        b"[" * 100_000,
        b'{"a":1} x',
    ],
)
def test_strict_parser_refuses(bad):
    with pytest.raises(MalformedInput):
        parse_json(bad, 1 << 20)


def test_size_limit_is_checked_before_parsing():
    with pytest.raises(MalformedInput, match="exceeds"):
        parse_json(b'"' + b"a" * 100 + b'"', 50)


@given(
    st.binary(max_size=200),
    st.sampled_from(["application/vnd.saksi.record+json", "x", "t\u00fcp"]),
    st.lists(st.sampled_from(SIGNERS), min_size=1, max_size=3, unique=True),
)
def test_envelope_roundtrip_and_verify(payload, payload_type, signers):
    envelope = sign_envelope(payload_type, payload, signers)
    as_json = json.dumps(envelope_to_json(envelope)).encode()
    parsed = parse_envelope(as_json)
    assert parsed == envelope
    assert verify_envelope(parsed, KEYS.get) == tuple(s.keyid for s in signers)


@given(st.binary(min_size=1, max_size=100), st.integers(0, 10_000), st.data())
def test_any_bit_flip_in_a_signed_envelope_is_refused(payload, bit, data):
    envelope = sign_envelope("application/vnd.saksi.record+json", payload, SIGNERS[:2])
    target = data.draw(st.sampled_from(["payload", "sig", "type"]))
    doc = envelope_to_json(envelope)
    if target == "payload":
        raw = bytearray(envelope.payload)
        raw[bit // 8 % len(raw)] ^= 1 << (bit % 8)
        doc["payload"] = base64.b64encode(bytes(raw)).decode()
    elif target == "sig":
        sig = bytearray(envelope.signatures[1].sig)
        sig[bit // 8 % 64] ^= 1 << (bit % 8)
        doc["signatures"][1]["sig"] = base64.b64encode(bytes(sig)).decode()
    else:
        doc["payloadType"] = "application/vnd.saksi.record+jsoN"
    with pytest.raises(SignatureInvalid):
        verify_envelope(parse_envelope(doc), KEYS.get)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("payloadType"),
        lambda d: d.update(extra=1),
        lambda d: d.update(signatures=[]),
        lambda d: d.update(signatures=d["signatures"] * 17),
        lambda d: d["signatures"][0].update(keyid="AB" * 32),
        lambda d: d["signatures"][0].update(sig="AAAA"),
        lambda d: d.update(payload="not base64!"),
        lambda d: d.update(payload=d["payload"].rstrip("=")),
        lambda d: d["signatures"][0].update(note="x"),
    ],
)
def test_malformed_envelopes_are_refused(mutate):
    doc = envelope_to_json(sign_envelope("t", b"hello", SIGNERS[:1]))
    mutate(doc)
    with pytest.raises(MalformedInput):
        parse_envelope(doc)


@given(
    st.binary(max_size=300),
    st.text(max_size=30).filter(
        lambda t: all(not 0xD800 <= ord(c) <= 0xDFFF for c in t)
    ),
    st.lists(st.sampled_from(SIGNERS), min_size=1, max_size=3, unique=True),
    st.datetimes(timezones=st.just(dt.UTC), min_value=dt.datetime(1970, 1, 1)),
)
def test_log_entry_bytes_are_the_canonical_form(payload, payload_type, signers, when):
    # format_log_entry spells the canonical JSON out for speed; it must be
    # byte-identical to canonicalize() of the same object, and parse back.
    envelope = sign_envelope(payload_type, payload, signers)
    logged_at = format_timestamp(when)
    data = format_log_entry(envelope, logged_at)
    assert data == canonicalize(
        {"envelope": envelope_to_json(envelope), "logged_at": logged_at}
    )
    entry = parse_log_entry(data)
    assert (entry.envelope, entry.logged_at) == (envelope, logged_at)
