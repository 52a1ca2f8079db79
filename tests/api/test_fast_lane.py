"""The fast lane answers exactly what FastAPI's routes answer, request for request.

Each request is sent twice to the same log, once with the lane and once with the
lane switched off (``app.fast_lane = None``: FastAPI alone). Reads must agree byte
for byte; writes are compared on fresh logs started from the same state.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from api.settings import ApiSettings
from keys import Ed25519Signer
from tests.api.conftest import Api
from tests.api.test_read_api import TPS, grow
from tests.recordlog import ADMINS, RecordLog, envelope_bytes


def both(api, method: str, path: str, **kwargs):
    app = api.client.app
    lane = app.fast_lane
    try:
        fast = api.client.request(method, path, **kwargs)
        app.fast_lane = None
        slow = api.client.request(method, path, **kwargs)
    finally:
        app.fast_lane = lane
    return fast, slow


def same(fast, slow) -> None:
    assert fast.status_code == slow.status_code
    assert fast.content == slow.content
    for header in ("content-type", "cache-control", "retry-after"):
        assert fast.headers.get(header) == slow.headers.get(header)


READS = [
    "/log/checkpoint",
    "/log/tile/0/000",
    "/log/tile/0/001.p/44",
    "/log/tile/1/000.p/1",
    "/log/tile/entries/000",
    "/log/tile/entries/001.p/44",
    "/v1/proofs/inclusion?index=0",
    "/v1/proofs/inclusion?index=299",
    # misses and refusals: the lane hands these to FastAPI
    "/log/tile/0/002",
    "/log/tile/0/x01",
    "/log/tile/entries/001.p/300",
    "/log/checkpoint?x=1",
    "/v1/proofs/inclusion?index=300",
    "/v1/proofs/inclusion?index=-1",
    "/v1/proofs/inclusion?index=01",
    "/v1/proofs/inclusion?index=1&leaf_hash=" + "0" * 64,
    "/v1/proofs/inclusion?leaf_hash=" + "0" * 64,
    "/v1/proofs/inclusion?leaf_hash=" + "A" * 64,
    "/v1/proofs/inclusion",
]


def test_reads_agree_byte_for_byte(make_api):
    api = make_api(key_burst=10_000)
    grow(api, 299)  # 300 entries with the genesis: one full tile and a partial
    leaf = api.client.get("/v1/proofs/inclusion?index=7").json()["leaf_hash"]
    for path in [*READS, f"/v1/proofs/inclusion?leaf_hash={leaf}"]:
        same(*both(api, "GET", path))
    for path in ("/log/checkpoint", "/log/tile/0/000"):
        same(*both(api, "HEAD", path))


def _grant(api, i: int) -> bytes:
    key = Ed25519Signer(f"f{i}", hashlib.sha256(b"f%d" % i).digest())
    return envelope_bytes(api.log.grant_payload(key, "tps", TPS), ADMINS[:1])


WRITES = {
    "accepted": lambda api: _grant(api, 1),
    "malformed json": lambda api: b'{"payload": ',
    "not an object": lambda api: b"[1, 2]",
    "bad signature": lambda api: _grant(api, 2).replace(b'"sig":"', b'"sig":"AA', 1),
    "oversized": lambda api: b" " * 70_000,
}


@pytest.mark.parametrize("case", sorted(WRITES))
def test_writes_agree_on_fresh_logs(tmp_path, signer, case):
    # Writes change the log, so each side gets its own log in the same state
    # (SQLite only: the lane sits above the storage).
    answers = []
    opened: list[RecordLog] = []
    for lane in (True, False):
        log = RecordLog(f"sqlite:///{tmp_path / f'{lane}.db'}", signer)
        api = Api(log, ApiSettings())
        opened.append(log)
        if not lane:
            api.client.app.fast_lane = None
        body = WRITES[case](api)
        single = api.client.post(
            "/v1/entries", content=body, headers={"content-type": "application/json"}
        )
        try:
            envelopes = [json.loads(body)]
        except ValueError:
            envelopes = []
        batch = api.client.post(
            "/v1/entries/batch",
            content=json.dumps({"envelopes": envelopes}),
            headers={"content-type": "application/json"},
        )
        answers.append((single, batch, api.size))
    for log in opened:
        log.close()
    (s1, b1, n1), (s2, b2, n2) = answers
    assert n1 == n2
    for fast, slow in ((s1, s2), (b1, b2)):
        assert fast.status_code == slow.status_code
        assert fast.headers["content-type"] == slow.headers["content-type"]
        fast_doc, slow_doc = fast.json(), slow.json()
        if fast.status_code < 300:
            # Each log stamps its own logged_at, so entries, leaf hashes, proofs
            # and checkpoints differ; where and how each was logged must not.
            for doc in (fast_doc, slow_doc):
                for item in doc.get("results", [{"receipt": doc}]):
                    receipt = item.get("receipt")
                    if receipt is None:
                        continue
                    for name in ("checkpoint", "entry", "leaf_hash"):
                        receipt[name] = bool(receipt[name])
                    receipt["inclusion_proof"] = len(receipt["inclusion_proof"])
        assert fast_doc == slow_doc


def test_wrong_media_type_and_method_agree(make_api):
    api = make_api()
    same(*both(api, "POST", "/v1/entries", content=b"{}"))
    same(
        *both(
            api,
            "POST",
            "/v1/entries",
            content=b"{}",
            headers={"content-type": "text/plain"},
        )
    )
    same(*both(api, "PUT", "/v1/entries", content=b"{}"))
    same(*both(api, "POST", "/log/checkpoint"))
