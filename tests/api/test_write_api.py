"""The write API through the test client: receipts, idempotency, every bad input."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging

import pytest

from api.settings import ApiSettings
from keys import Ed25519Signer
from tests.conftest import ORIGIN
from tests.evidence import scale
from tests.recordlog import ADMINS, b64, envelope_bytes
from verifier.checkpoint import verify_inclusion_in_checkpoint
from verifier.dsse import envelope_to_json, sign_envelope
from verifier.jcs import canonicalize
from verifier.record import RECORD_PAYLOAD_TYPE, format_timestamp, record_payload
from verifier.schema_registry import SCHEMAS

TPS = "3171011001001"


def check_receipt(body, signer):
    verify_inclusion_in_checkpoint(
        body["checkpoint"].encode(),
        signer.verifier_key,
        ORIGIN,
        body["index"],
        bytes.fromhex(body["leaf_hash"]),
        [bytes.fromhex(p) for p in body["inclusion_proof"]],
    )


def test_post_returns_a_verifiable_receipt_and_is_idempotent(api, signer):
    key = Ed25519Signer("officer", bytes([50]) * 32)
    payload = api.log.grant_payload(key, "tps", TPS)
    first = api.post(payload, ADMINS[:1])
    assert first.status_code == 201, first.text
    check_receipt(first.json(), signer)
    size = api.size
    again = api.post(payload, ADMINS[:1])
    resigned = api.post(payload, ADMINS[1:2])
    assert again.status_code == resigned.status_code == 200
    assert again.json()["index"] == resigned.json()["index"] == first.json()["index"]
    assert again.json()["duplicate"] is True
    assert api.size == size


@pytest.fixture
def test_schema():
    # The registered tally schema: a region and integers, so scope and integer
    # refusals show through HTTP.
    return SCHEMAS["results.tally/v1"]


FORM = {
    "stage": "officer_confirmed",
    "votes": {"100025": 5},
    "valid": 5,
    "invalid": 0,
    "total": 5,
}


def _flip_sig(envelope):
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    sig[5] ^= 1
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    return envelope


def _cases(api):
    """(name, raw body, expected problem type) for every bad input of the issue."""
    log = api.log
    officer = Ed25519Signer("officer", bytes([51]) * 32)
    revoked = Ed25519Signer("revoked", bytes([52]) * 32)
    stranger = Ed25519Signer("stranger", bytes([53]) * 32)
    log.grant(officer, "tps", TPS)
    log.grant(revoked, "tps", TPS)
    log.revoke(revoked)
    target = Ed25519Signer("target", bytes([54]) * 32)
    grant = log.grant_payload(target, "tps", TPS)
    tally = log.payload("results.tally/v1", f"results/ppwp/{TPS}", FORM)
    elsewhere = log.payload("results.tally/v1", "results/ppwp/3273011001001", FORM)
    good = envelope_to_json(sign_envelope(RECORD_PAYLOAD_TYPE, grant, ADMINS[:1]))
    subject = f"keys/{officer.keyid}"
    rev_body = {"keyid": officer.keyid, "reason_code": "retired"}
    head_hash = log.heads[subject][1]
    admin = Ed25519Signer("admin-new", bytes([55]) * 32)

    def env(payload, signers, payload_type=RECORD_PAYLOAD_TYPE):
        return json.dumps(
            envelope_to_json(sign_envelope(payload_type, payload, signers))
        ).encode()

    def mutated(change):
        doc = json.loads(json.dumps(good))
        change(doc)
        return json.dumps(doc).encode()

    record = json.loads(grant)
    return [
        ("malformed JSON", b'{"payloadType": ', "malformed-json"),
        ("not an object", b"[1, 2]", "malformed-input"),
        (
            "invalid base64",
            mutated(lambda d: d.update(payload="@@@@")),
            "invalid-base64",
        ),
        (
            "wrong payloadType",
            env(grant, ADMINS[:1], "text/plain"),
            "wrong-payload-type",
        ),
        (
            "non-canonical payload",
            env(json.dumps(record, indent=1).encode(), ADMINS[:1]),
            "non-canonical-json",
        ),
        ("bad signature", mutated(_flip_sig), "bad-signature"),
        ("unknown key", env(grant, [stranger]), "unknown-key"),
        ("revoked key", env(tally, [revoked]), "key-revoked"),
        ("out-of-scope subject", env(elsewhere, [officer]), "out-of-scope"),
        ("wrong schema for the role", env(grant, [officer]), "role-not-allowed"),
        (
            "unknown schema",
            env(log.payload("votes.secret/v1", "votes/x", {}), ADMINS[:1]),
            "unknown-schema",
        ),
        (
            "unknown field",
            env(log.grant_payload(target, "tps", TPS, colour="red"), ADMINS[:1]),
            "unknown-field",
        ),
        (
            "negative integer",
            env(
                log.payload(
                    "results.tally/v1", f"results/ppwp/{TPS}", {**FORM, "valid": -1}
                ),
                [officer],
            ),
            "integer-out-of-range",
        ),
        (
            "huge integer",
            env(
                grant.replace(b'"revision":0', b'"revision":9007199254740993'),
                ADMINS[:1],
            ),
            "integer-out-of-range",
        ),
        (
            "stale revision",
            env(
                log.payload("keys.revoke/v1", subject, rev_body, revision=0, prev=None),
                ADMINS[:1],
            ),
            "stale-revision",
        ),
        (
            "skipped revision",
            env(
                log.payload(
                    "keys.revoke/v1",
                    subject,
                    rev_body,
                    revision=5,
                    prev=head_hash,
                    reason="x",
                ),
                ADMINS[:1],
            ),
            "skipped-revision",
        ),
        (
            "wrong prev",
            env(
                log.payload(
                    "keys.revoke/v1",
                    subject,
                    rev_body,
                    revision=1,
                    prev="00" * 32,
                    reason="x",
                ),
                ADMINS[:1],
            ),
            "wrong-prev",
        ),
        ("oversized body", b'{"payload": "' + b"A" * 200_000 + b'"}', "body-too-large"),
        (
            "too many signatures",
            mutated(lambda d: d.update(signatures=d["signatures"] * 17)),
            "too-many-signatures",
        ),
        (
            "issued_at outside the window",
            env(grant.replace(b"2024-02-14T", b"2031-02-14T"), ADMINS[:1]),
            "issued-at-window",
        ),
        (
            "admin grant below threshold",
            env(log.grant_payload(admin, "admin", ""), ADMINS[:1]),
            "threshold-not-met",
        ),
    ]


def test_every_bad_input_gets_its_own_problem_and_changes_nothing(api, test_schema):
    cases = _cases(api)
    size = api.size
    seen = set()
    for name, body, cause in cases:
        response = api.client.post(
            "/v1/entries", content=body, headers={"content-type": "application/json"}
        )
        assert response.headers["content-type"] == "application/problem+json", name
        problem = response.json()
        assert problem["type"] == f"/problems/{cause}", (name, problem)
        assert 400 <= response.status_code < 500, (name, response.status_code)
        assert problem["status"] == response.status_code
        assert "Traceback" not in response.text
        assert "seed" not in response.text.lower()
        seen.add(cause)
        assert api.size == size, name
    assert len(seen) == len(cases) - 1  # "not an object" shares malformed-input


def test_chain_conflicts_report_the_current_head(api):
    key = Ed25519Signer("k", bytes([60]) * 32)
    api.log.grant(key, "tps", TPS)
    subject = f"keys/{key.keyid}"
    current = api.log.heads[subject][1]
    stale = api.log.payload(
        "keys.revoke/v1",
        subject,
        {"keyid": key.keyid, "reason_code": "retired"},
        revision=0,
        prev=None,
    )
    problem = api.post(stale, ADMINS[:1]).json()
    assert problem["current_revision"] == 0
    assert problem["current_payload_hash"] == current


def test_batch_accepts_and_refuses_each_envelope_alone(api, signer):
    keys = [Ed25519Signer(f"b{i}", bytes([70 + i]) * 32) for i in range(3)]
    payloads = [api.log.grant_payload(k, "tps", TPS) for k in keys]
    envelopes = [json.loads(envelope_bytes(p, ADMINS[:1])) for p in payloads]
    bad = json.loads(envelope_bytes(payloads[0], [keys[1]]))  # unknown signer
    body = {"envelopes": [envelopes[0], bad, envelopes[1], envelopes[0], envelopes[2]]}
    size = api.size
    response = api.client.post("/v1/entries/batch", json=body)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 403, 201, 200, 201]
    assert results[1]["problem"]["type"] == "/problems/unknown-key"
    assert results[3]["receipt"]["index"] == results[0]["receipt"]["index"]
    for r in results:
        if "receipt" in r:
            check_receipt(r["receipt"], signer)
    assert api.size == size + 3


def test_replaying_1000_logged_envelopes_adds_no_leaf(make_api, evidence):
    api = make_api(key_burst=100_000)
    keys = [
        Ed25519Signer(f"r{i}", hashlib.sha256(b"r%d" % i).digest()) for i in range(1000)
    ]
    envelopes = [
        json.loads(envelope_bytes(api.log.grant_payload(k, "tps", TPS), ADMINS[:1]))
        for k in keys
    ]
    first = api.client.post("/v1/entries/batch", json={"envelopes": envelopes})
    assert {r["status"] for r in first.json()["results"]} == {201}
    size = api.size
    # The captured envelopes replayed as they were: once in the suite, ten
    # times in the fitness run (RELIABILITY.md T7's 10,000 replays).
    replays = [
        api.client.post("/v1/entries/batch", json={"envelopes": envelopes})
        for _ in range(scale(1, 10))
    ]
    # The same payloads signed again by another admin: new envelopes, same records.
    resigned = [
        json.loads(
            envelope_bytes(
                base64.b64decode(e["payload"]),
                ADMINS[1:2],
            )
        )
        for e in envelopes
    ]
    third = api.client.post("/v1/entries/batch", json={"envelopes": resigned})
    assert api.size == size
    original = [r["receipt"]["index"] for r in first.json()["results"]]
    answered = 0
    for response in (*replays, third):
        results = response.json()["results"]
        assert {r["status"] for r in results} == {200}
        assert [r["receipt"]["index"] for r in results] == original
        answered += len(results)
    evidence.record(
        "T7",
        attempts=len(envelopes) * (len(replays) + 1),
        detected=answered,
        backend=api.log.storage.dialect,
        replayed=len(envelopes) * len(replays),
        re_signed=len(resigned),
        leaves_added=api.size - size,
        answered="200 with the original index",
        not_covered="a capture from another election's log (a record names no "
        "log; see SECURITY.md below the table)",
    )


def test_rate_limits_answer_429_with_retry_after(make_api, evidence):
    api = make_api(key_rate=1.0, key_burst=2)
    keys = [Ed25519Signer(f"q{i}", bytes([90 + i]) * 32) for i in range(4)]
    statuses = [
        api.post(api.log.grant_payload(k, "tps", TPS), ADMINS[:1]).status_code
        for k in keys
    ]
    assert statuses[:2] == [201, 201]
    limited = api.post(api.log.grant_payload(keys[3], "tps", TPS), ADMINS[:1])
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["type"] == "/problems/rate-limited"
    over = [*statuses[2:], limited.status_code]
    evidence.record(
        "T11",
        attempts=len(over),
        detected=over.count(429),
        false_alarms=statuses[:2].count(429),
        backend=api.log.storage.dialect,
        key_burst=2,
        refused_with="429 and Retry-After",
        not_measured="honest p99 beside a client at 20x quota; a 100 MB body",
    )


def test_overload_answers_503_with_retry_after(make_api, evidence, caplog):
    api = make_api(max_in_flight=0)
    key = Ed25519Signer("o", bytes([99]) * 32)
    with caplog.at_level(logging.INFO, logger="saksi"):
        response = api.post(api.log.grant_payload(key, "tps", TPS), ADMINS[:1])
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"] == "/problems/overloaded"
    # Back-pressure is counted, not logged: a flood of 503s writes no flood.
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    evidence.record(
        "T11",
        attempts=1,
        detected=int(response.status_code == 503),
        backend=api.log.storage.dialect,
        refused_with="503 and Retry-After (submissions in flight at the cap)",
    )


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"{}",
        b'{"envelopes": 5}',
        b"\xff\xfe",
        b'{"payload": null}',
        b"1e999",
    ],
)
def test_odd_bodies_are_client_errors_not_500(api, body):
    for path in ("/v1/entries", "/v1/entries/batch"):
        response = api.client.post(
            path, content=body, headers={"content-type": "application/json"}
        )
        assert 400 <= response.status_code < 500, (path, body, response.text)


def test_wrong_media_type_is_415(api):
    response = api.client.post(
        "/v1/entries", content=b"{}", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415


def test_canonical_payload_check_uses_exact_bytes(api):
    key = Ed25519Signer("c", bytes([98]) * 32)
    payload = api.log.grant_payload(key, "tps", TPS)
    assert canonicalize(json.loads(payload)) == payload
    assert api.post(payload, ADMINS[:1]).status_code == 201
    assert b64(payload)  # the receipt above covers the exact bytes


def test_the_issued_at_window_is_configurable(api):
    # Ten seconds ahead and one day back, set through the same variables the
    # server reads; each side of each edge is tried.
    settings = ApiSettings.from_env(
        {"SAKSI_ISSUED_AT_SKEW": "10", "SAKSI_ISSUED_AT_MAX_AGE_DAYS": "1"}
    )
    assert settings.issued_at_skew == 10.0
    assert settings.issued_at_max_age_days == 1
    api.log.service.writer.skew = dt.timedelta(seconds=settings.issued_at_skew)
    api.log.service.writer.max_age = dt.timedelta(days=settings.issued_at_max_age_days)
    now = api.log.now()
    answers = {}
    for name, offset in {
        "5 s ahead": dt.timedelta(seconds=5),
        "60 s ahead": dt.timedelta(seconds=60),
        "23 h back": -dt.timedelta(hours=23),
        "25 h back": -dt.timedelta(hours=25),
    }.items():
        key = Ed25519Signer("w", hashlib.sha256(name.encode()).digest())
        record = json.loads(api.log.grant_payload(key, "tps", TPS))
        record["issued_at"] = format_timestamp(now + offset)
        size = api.size
        response = api.post(record_payload(**record), ADMINS[:1])
        answers[name] = response.status_code
        if response.status_code != 201:
            assert response.json()["type"] == "/problems/issued-at-window"
            assert api.size == size
    assert answers == {
        "5 s ahead": 201,
        "60 s ahead": 422,
        "23 h back": 201,
        "25 h back": 422,
    }
