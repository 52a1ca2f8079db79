"""The client over connections that fail: every failure retried, then TransportError.

A raw server on 127.0.0.1 (``flaky_http``) drops, resets, truncates, stalls or
garbles its answers on cue, or forwards to a real log. Retrying is safe: reads
are idempotent, and a repeated envelope is answered with its original receipt.
"""

from __future__ import annotations

import http.client

import pytest

from keys import Ed25519Signer
from saksi_client import SaksiClient, TransportError
from tests.api.flaky_http import FlakyServer
from tests.api.test_client import grant_body
from tests.recordlog import ADMINS

FAILURES = {
    # behaviour: (exception the client's transport saw, what the message says)
    "drop": (
        http.client.RemoteDisconnected,
        "the server closed the connection without answering",
    ),
    "reset": (ConnectionResetError, "the connection was reset"),
    "truncate": (
        http.client.IncompleteRead,
        "the connection closed in the middle of the answer "
        "(6 bytes received, 94 more expected)",
    ),
    "truncated-503": (
        http.client.IncompleteRead,
        "the connection closed in the middle of the answer",
    ),
    "garbage": (http.client.BadStatusLine, "the answer is not HTTP"),
    "stall": (TimeoutError, "no answer within 0.5 s"),
}


@pytest.mark.parametrize("behaviour", sorted(FAILURES))
def test_each_transport_failure_is_retried_then_raised_as_transport_error(
    behaviour,
):
    cause, words = FAILURES[behaviour]
    slept: list[float] = []
    with FlakyServer({"/v1/log": [behaviour] * 3}) as server:
        client = SaksiClient(
            server.url,
            str(ADMINS[0].verifier_key),
            retries=2,
            timeout=0.5,
            sleep=slept.append,
        )
        with pytest.raises(TransportError) as err:
            client.get("/v1/log")
        assert server.attempts("GET", "/v1/log") == 3
    assert slept == [0.5, 1.0]  # the client's backoff, honoured
    assert isinstance(err.value.__cause__, cause)
    message = str(err.value)
    assert message.startswith(f"GET {server.url}/v1/log failed (3 attempts): ")
    assert words in message
    assert "unknown" not in message  # a read has no outcome to worry about


def test_a_read_uses_the_good_answer_that_follows_transport_failures():
    slept: list[float] = []
    script = {"/v1/keys": ["drop", "truncate", "reset", "garbage", "truncated-503"]}
    with FlakyServer(script, answer=b'{"keys": [], "tree_size": 7}') as server:
        client = SaksiClient(
            server.url, str(ADMINS[0].verifier_key), sleep=slept.append
        )
        assert client.keys() == {"keys": [], "tree_size": 7}
        assert server.attempts("GET", "/v1/keys") == 6
    assert slept == [0.5, 1.0, 2.0, 4.0, 8.0]


def _grant(client: SaksiClient, api, seed: int) -> dict:
    key = Ed25519Signer(f"k{seed}", bytes([seed]) * 32)
    payload = client.record(
        "keys.grant/v1", f"keys/{key.keyid}", grant_body(key), now=api.log.now()
    )
    return client.sign(payload, ADMINS[:1])


def test_a_submission_whose_answers_were_lost_is_retried_and_logged_once(live, signer):
    api, url = live
    before = api.size
    slept: list[float] = []
    # The first two attempts reach the log (it logs the record) but their
    # answers are lost; the third is reset; the fourth gets the receipt.
    script = {"/v1/entries": ["lost", "lost-truncated", "reset"]}
    with FlakyServer(script, upstream=url) as server:
        client = SaksiClient(server.url, str(signer.verifier_key), sleep=slept.append)
        receipt = client.submit(_grant(client, api, 60))
        assert server.attempts("POST", "/v1/entries") == 4
    assert receipt.duplicate  # the original entry's receipt, verified
    assert receipt.index == before
    assert api.size == before + 1
    assert slept == [0.5, 1.0, 2.0]


def test_a_submission_that_never_gets_an_answer_says_its_outcome_is_unknown(
    live, signer
):
    api, url = live
    before = api.size
    with FlakyServer({"/v1/entries": ["lost"] * 3}, upstream=url) as server:
        client = SaksiClient(
            server.url, str(signer.verifier_key), retries=2, sleep=lambda _: None
        )
        envelope = _grant(client, api, 61)
        with pytest.raises(TransportError) as err:
            client.submit(envelope)
        assert server.attempts("POST", "/v1/entries") == 3
    message = str(err.value)
    assert message.startswith(f"POST {server.url}/v1/entries failed (3 attempts): ")
    assert "closed the connection without answering" in message
    assert "outcome of this write is unknown" in message
    assert "safe to retry" in message
    assert isinstance(err.value.__cause__, http.client.RemoteDisconnected)
    # It was logged once; sending it again is safe and returns that entry.
    assert api.size == before + 1
    again = SaksiClient(url, str(signer.verifier_key)).submit(envelope)
    assert again.duplicate
    assert again.index == before
    assert api.size == before + 1


def test_a_batch_survives_a_truncated_answer(live, signer):
    api, url = live
    before = api.size
    with FlakyServer({"/v1/entries/batch": ["lost-truncated"]}, upstream=url) as server:
        client = SaksiClient(server.url, str(signer.verifier_key), sleep=lambda _: None)
        outcomes = client.submit_many([_grant(client, api, s) for s in (62, 63)])
        assert server.attempts("POST", "/v1/entries/batch") == 2
    assert sorted(o.index for o in outcomes) == [before, before + 1]
    assert api.size == before + 2
