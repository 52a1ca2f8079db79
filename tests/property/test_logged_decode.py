"""Hypothesis: the read path's plain decode of logged entries equals the strict parse.

``verifier.record.decode_logged_entry`` skips the canonical-form re-check for entries
the log stored itself; it must give exactly what ``parse_log_entry`` and
``parse_record`` give, for any record (with or without reason and evidence, any
body), and hand anything that does not decode plainly to the strict parsers.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keys import Ed25519Signer
from verifier.dsse import sign_envelope
from verifier.errors import MalformedInput
from verifier.record import (
    RECORD_PAYLOAD_TYPE,
    Evidence,
    decode_logged_entry,
    format_log_entry,
    parse_log_entry,
    parse_record,
    record_payload,
)

SIGNERS = [Ed25519Signer(f"k{n}", hashlib.sha256(b"%d" % n).digest()) for n in range(3)]
text = st.text(max_size=12).filter(
    lambda t: all(not 0xD800 <= ord(c) <= 0xDFFF for c in t)
)
values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | text,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3)
    ),
    max_leaves=12,
)
evidence = st.lists(
    st.builds(
        Evidence,
        st.binary(min_size=32, max_size=32).map(lambda b: b.hex()),
        st.just("image/jpeg"),
        st.text("abc.", min_size=1, max_size=10),
    ),
    max_size=2,
).map(tuple)


@given(
    st.dictionaries(text, values, max_size=4),
    st.integers(0, 3),
    evidence,
    st.lists(st.sampled_from(SIGNERS), min_size=1, max_size=3, unique=True),
)
def test_plain_decode_equals_the_strict_parse(body, revision, items, signers):
    payload = record_payload(
        schema="things.change/v1",
        subject="things/3171",
        revision=revision,
        prev=None if revision == 0 else "ab" * 32,
        issued_at="2026-11-23T10:00:00.000Z",
        body=body,
        reason="changed" if revision else None,
        evidence=items,
    )
    envelope = sign_envelope(RECORD_PAYLOAD_TYPE, payload, signers)
    data = format_log_entry(envelope, "2026-11-23T10:00:01.250Z")
    entry = parse_log_entry(data)
    assert decode_logged_entry(data) == (entry, parse_record(entry.envelope.payload))


@pytest.mark.parametrize(
    "data", [b"", b"[]", b'{"envelope":{}}', b'{"envelope":1,"logged_at":"x"}']
)
def test_what_does_not_decode_takes_the_strict_parsers(data):
    with pytest.raises(MalformedInput):
        decode_logged_entry(data)
