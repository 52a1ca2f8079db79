"""The Python client against a real server on 127.0.0.1: sign, submit, retry, verify."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import time

import pytest

from keys import Ed25519Signer
from saksi_client import Refused, SaksiClient, TransportError
from tests.api.conftest import LiveServer
from tests.recordlog import ADMINS
from verifier.errors import VerificationError

TPS = "3171011001001"


def grant_body(key):
    return {
        "keyid": key.keyid,
        "public_key": base64.b64encode(key.public_key).decode(),
        "role": "tps",
        "scope": TPS,
        "holder": key.name,
    }


def test_client_signs_offline_submits_and_verifies(live, signer):
    api, url = live
    client = SaksiClient(url, str(signer.verifier_key))
    key = Ed25519Signer("officer", bytes([30]) * 32)
    subject = f"keys/{key.keyid}"
    assert client.head(subject) is None
    # Signed "offline" with an issued_at from an hour ago, submitted now.
    when = api.log.now() - dt.timedelta(hours=1)
    payload = client.record("keys.grant/v1", subject, grant_body(key), now=when)
    envelope = client.sign(payload, ADMINS[:1])
    receipt = client.submit(envelope)
    assert not receipt.duplicate
    assert client.submit(envelope).index == receipt.index  # safe retry
    head = client.head(subject)
    assert head is not None
    assert head[0] == 0
    revoke = client.record(
        "keys.revoke/v1",
        subject,
        {"keyid": key.keyid, "reason_code": "retired"},
        reason="officer left",
        after=head,
        now=api.log.now(),
    )
    assert client.submit(client.sign(revoke, ADMINS[:1])).index == receipt.index + 1
    with pytest.raises(Refused) as err:
        client.submit(client.sign(revoke.replace(b"retired", b"other"), ADMINS[:1]))
    assert err.value.cause == "stale-revision"
    assert err.value.status == 409


def test_client_refuses_a_receipt_that_proves_something_else(live, signer):
    api, url = live
    client = SaksiClient(url, str(signer.verifier_key))
    key = Ed25519Signer("k", bytes([31]) * 32)
    payload = client.record(
        "keys.grant/v1", f"keys/{key.keyid}", grant_body(key), now=api.log.now()
    )
    envelope = client.sign(payload, ADMINS[:1])
    response = api.client.post("/v1/entries", json=envelope).json()
    client.verify_receipt(response, payload)
    for mutate in (
        lambda r: r.update(index=r["index"] + 1),
        lambda r: r.update(leaf_hash="00" * 32),
        lambda r: r["inclusion_proof"].append("00" * 32),
        lambda r: r.update(checkpoint=r["checkpoint"].replace("\n\n", "\nx\n\n")),
        lambda r: r.update(entry=base64.b64encode(b"{}").decode()),
    ):
        bad = copy.deepcopy(response)
        mutate(bad)
        with pytest.raises(VerificationError):
            client.verify_receipt(bad, payload)
    with pytest.raises(VerificationError, match="another payload"):
        client.verify_receipt(response, payload + b" ")
    other = SaksiClient(url, str(ADMINS[0].verifier_key))  # the wrong log key
    with pytest.raises(VerificationError):
        other.verify_receipt(response, payload)


def test_client_retries_overload_then_gives_up(make_api, signer):
    api = make_api(max_in_flight=0)
    server = LiveServer(api.client.app)
    slept: list[float] = []
    try:
        client = SaksiClient(
            server.url, str(signer.verifier_key), retries=3, sleep=slept.append
        )
        key = Ed25519Signer("k", bytes([32]) * 32)
        payload = client.record(
            "keys.grant/v1", f"keys/{key.keyid}", grant_body(key), now=api.log.now()
        )
        with pytest.raises(Refused) as err:
            client.submit(client.sign(payload, ADMINS[:1]))
        assert err.value.status == 503
        assert slept == [1.0, 1.0, 1.0]
    finally:
        server.stop()
    unreachable = SaksiClient(
        server.url, str(signer.verifier_key), retries=2, sleep=slept.append, timeout=2
    )
    with pytest.raises(TransportError):
        unreachable.head("keys/x")


def test_a_batch_sends_again_what_was_rate_limited_after_the_wait_asked(
    make_api, signer
):
    # Two submissions at once per key, then four a second: of a batch of four,
    # two are refused with a retry_after and accepted when sent again.
    api = make_api(key_rate=4.0, key_burst=2.0)
    server = LiveServer(api.client.app)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    try:
        client = SaksiClient(server.url, str(signer.verifier_key), sleep=sleep)
        officers = [Ed25519Signer(f"k{i}", bytes([40 + i]) * 32) for i in range(4)]
        envelopes = [
            client.sign(
                client.record(
                    "keys.grant/v1",
                    f"keys/{k.keyid}",
                    grant_body(k),
                    now=api.log.now(),
                ),
                ADMINS[:1],
            )
            for k in officers
        ]
        once = SaksiClient(server.url, str(signer.verifier_key), retries=0)
        first = once.submit_many(envelopes)
        refused = [o for o in first if isinstance(o, Refused)]
        assert [o.cause for o in refused] == ["rate-limited", "rate-limited"]
        assert all(o.problem["retry_after"] >= 1 for o in refused)
        outcomes = client.submit_many(envelopes)
        assert all(not isinstance(o, Refused) for o in outcomes)
        indices = sorted(o.index for o in outcomes)
        assert indices == list(range(indices[0], indices[0] + 4))
        for before, after in zip(first, outcomes, strict=True):
            if not isinstance(before, Refused):
                assert after.index == before.index  # sent again: same entry
        assert slept
        assert all(s >= 1 for s in slept)
    finally:
        server.stop()
