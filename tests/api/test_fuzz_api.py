"""Fuzzing the write API: a client's mistake is never a 500, never a leak."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keys import Ed25519Signer
from tests.recordlog import ADMINS, envelope_bytes

TPS = "3171011001001"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture
def make_api_once(make_api):
    api = make_api()
    key = Ed25519Signer("fuzz", bytes([77]) * 32)
    good = envelope_bytes(api.log.grant_payload(key, "tps", TPS), ADMINS[:1])
    return api, good


def mutate(doc, path, value):
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_and_mutated_bodies_never_500(make_api_once, data, caplog):
    api, good = make_api_once
    choice = data.draw(st.sampled_from(["random", "mutated", "payload", "bytes"]))
    if choice == "random":
        body = json.dumps(data.draw(json_values)).encode()
    elif choice == "bytes":
        body = data.draw(st.binary(max_size=200))
    else:
        doc = json.loads(good)
        if choice == "mutated":
            path = data.draw(
                st.sampled_from(
                    [
                        ("payload",),
                        ("payloadType",),
                        ("signatures",),
                        ("signatures", 0),
                        ("signatures", 0, "sig"),
                        ("signatures", 0, "keyid"),
                    ]
                )
            )
            doc = mutate(doc, path, data.draw(json_values))
        else:
            record = json.loads(base64.b64decode(doc["payload"]))
            field = data.draw(st.sampled_from([*sorted(record), "extra"]))
            record[field] = data.draw(json_values)
            raw = json.dumps(record, separators=(",", ":"), sort_keys=True).encode()
            doc = json.loads(envelope_bytes(raw, ADMINS[:1]))
        body = json.dumps(doc).encode()
    size = api.size
    with caplog.at_level(logging.DEBUG):
        response = api.client.post(
            "/v1/entries", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].startswith("/problems/")
        assert api.size == size
    text = response.text + caplog.text
    assert "Traceback" not in text
    assert "cli-test" not in text
    for admin in ADMINS:
        assert admin._seed_for_keyfile().hex() not in text
