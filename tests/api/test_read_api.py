"""Reads: tlog-tiles for any client, proofs, history, keys; real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import threading

import httpx
import pytest

from keys import Ed25519Signer
from tests.api.conftest import LiveServer
from tests.conftest import ORIGIN
from tests.recordlog import ADMINS, envelope_bytes
from tests.tiles_client import TilesClient, inclusion_proof, leaf, verify_inclusion
from verifier.checkpoint import verify_checkpoint
from verifier.proof_check import verify_consistency

TPS = "3171011001001"


def grow(api, count: int, start: int = 0) -> list:
    keys = [
        Ed25519Signer(f"g{i}", hashlib.sha256(b"g%d" % i).digest())
        for i in range(start, start + count)
    ]
    envelopes = [
        json.loads(envelope_bytes(api.log.grant_payload(k, "tps", TPS), ADMINS[:1]))
        for k in keys
    ]
    for i in range(0, len(envelopes), 500):
        response = api.client.post(
            "/v1/entries/batch", json={"envelopes": envelopes[i : i + 500]}
        )
        assert {r["status"] for r in response.json()["results"]} == {201}
    return keys


def test_a_plain_tiles_client_reads_and_verifies_the_log(make_api, signer):
    api = make_api(key_burst=10_000)
    grow(api, 600)
    from tests.api.conftest import LiveServer

    server = LiveServer(api.client.app)
    try:
        client = TilesClient(server.url + "/log/", str(signer.verifier_key))
        checkpoint = client.checkpoint()
        assert checkpoint.origin == ORIGIN
        assert checkpoint.size == api.size == 601
        assert client.root_from_tiles(checkpoint.size) == checkpoint.root
        entries = client.entries(checkpoint.size)
        hashes = [leaf(e) for e in entries]
        assert hashes == client.level_hashes(0, checkpoint.size)
        # Inclusion of a few entries, the proof computed by the client itself and
        # the server's proof both verified by the client's own RFC 9162 check.
        for index in (0, 255, 256, 600):
            mine = inclusion_proof(hashes, index)
            assert verify_inclusion(
                index, checkpoint.size, hashes[index], mine, checkpoint.root
            )
            served = httpx.get(
                f"{server.url}/v1/proofs/inclusion", params={"index": index}
            ).json()
            assert [bytes.fromhex(p) for p in served["inclusion_proof"]] == mine
        # Entries are Saksi log entries, but the client needs none of that.
        assert json.loads(entries[1])["envelope"]["payloadType"].endswith("record+json")
    finally:
        server.stop()


def test_tile_cache_headers_and_paths(api, signer):
    grow(api, 300)
    full = api.client.get("/log/tile/0/000")
    assert full.status_code == 200
    assert len(full.content) == 8192
    assert "immutable" in full.headers["cache-control"]
    partial = api.client.get(f"/log/tile/0/001.p/{api.size - 256}")
    assert partial.status_code == 200
    assert "immutable" not in partial.headers["cache-control"]
    bundle = api.client.get("/log/tile/entries/000")
    assert "immutable" in bundle.headers["cache-control"]
    checkpoint = api.client.get("/log/checkpoint")
    assert checkpoint.headers["content-type"].startswith("text/plain")
    assert checkpoint.headers["cache-control"] == "no-cache"
    verify_checkpoint(checkpoint.content, signer.verifier_key, ORIGIN)
    for missing in (
        "/log/tile/0/002",
        "/log/tile/0/001",
        "/log/tile/1/000",
        "/log/tile/0/x",
        "/log/tile/entries/001.p/200",
    ):
        response = api.client.get(missing)
        assert response.status_code == 404, missing
        assert response.headers["content-type"] == "application/problem+json"


def test_proofs_history_and_keys(api, signer):
    officer = Ed25519Signer("officer", bytes([40]) * 32)
    api.log.grant(officer, "tps", TPS)
    old = api.client.get("/log/checkpoint").content
    grow(api, 20)
    api.log.revoke(officer)
    head = api.client.get("/log/checkpoint").content
    old_cp, _ = verify_checkpoint(old, signer.verifier_key, ORIGIN)
    new_cp, _ = verify_checkpoint(head, signer.verifier_key, ORIGIN)
    proof = api.client.get("/v1/proofs/consistency", params={"old": old_cp.size}).json()
    verify_consistency(
        old_cp.size,
        new_cp.size,
        old_cp.root_hash,
        new_cp.root_hash,
        [bytes.fromhex(p) for p in proof["consistency_proof"]],
    )
    history = api.client.get(f"/v1/subjects/keys/{officer.keyid}").json()
    assert [r["record"]["revision"] for r in history["revisions"]] == [0, 1]
    assert (
        history["revisions"][1]["record"]["prev"]
        == history["revisions"][0]["record"]["payload_hash"]
    )
    by_leaf = api.client.get(
        "/v1/proofs/inclusion",
        params={"leaf_hash": history["revisions"][0]["leaf_hash"]},
    ).json()
    assert by_leaf["index"] == history["revisions"][0]["index"]
    entry = api.client.get(f"/v1/entries/{by_leaf['index']}").json()
    assert entry["record"]["subject"] == f"keys/{officer.keyid}"
    keys_then = api.client.get("/v1/keys", params={"size": by_leaf["index"] + 1}).json()
    keys_now = api.client.get("/v1/keys").json()
    mine_then = next(k for k in keys_then["keys"] if k["keyid"] == officer.keyid)
    mine_now = next(k for k in keys_now["keys"] if k["keyid"] == officer.keyid)
    assert mine_then["revoked_at"] is None
    assert mine_now["revoked_at"] == history["revisions"][1]["index"]
    # Asked again, older after newer: the cached registry never leaks forward.
    again = api.client.get("/v1/keys", params={"size": by_leaf["index"] + 1}).json()
    assert again == keys_then
    assert api.client.get("/v1/keys", params={"size": 1}).json()["keys"] == [
        k for k in keys_then["keys"] if k["granted_at"] == 0
    ]
    assert keys_now["threshold"] == 2
    for bad in (
        "/v1/entries/999999",
        "/v1/entries/-1",
        "/v1/proofs/inclusion?index=999999",
        "/v1/proofs/inclusion?leaf_hash=" + "00" * 32,
        "/v1/proofs/inclusion?index=1&leaf_hash=" + "00" * 32,
        "/v1/proofs/consistency?old=0",
        "/v1/proofs/consistency?old=5&new=999999",
        "/v1/keys?size=999999",
        "/v1/subjects/keys/nobody",
        "/nowhere",
    ):
        response = api.client.get(bad)
        assert 400 <= response.status_code < 500, bad
        assert response.headers["content-type"] == "application/problem+json", bad


def test_openapi_documents_every_route_and_its_errors(api):
    doc = api.client.get("/openapi.json").json()
    routes = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    expected = {
        ("POST", "/v1/entries"),
        ("POST", "/v1/entries/batch"),
        ("GET", "/v1/entries/{index}"),
        ("GET", "/v1/subjects/{subject}"),
        ("GET", "/v1/proofs/inclusion"),
        ("GET", "/v1/proofs/consistency"),
        ("GET", "/v1/keys"),
        ("GET", "/v1/log"),
        ("GET", "/log/checkpoint"),
        ("GET", "/log/tile/{path}"),
        ("GET", "/healthz"),
        ("GET", "/problems/{cause}"),
    }
    assert expected <= routes
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            codes = {int(c) for c in op["responses"]}
            if method == "post":
                assert {400, 403, 409, 413, 422, 429, 503} <= codes, path
            elif path not in ("/log/checkpoint", "/healthz", "/readyz", "/v1/log"):
                assert any(400 <= c < 500 for c in codes), (method, path)


@pytest.fixture
def racing(make_api):
    # Every attempt is signed by the one admin key: up to 50 + 49 + ... + 1 of
    # them a subject, within a second or two on a fast machine, past the
    # default per-key limit (a burst of 1,000). The race is what is tested
    # here, not the limit (``test_write_api.py``'s rate-limit test): room for
    # every attempt.
    api = make_api(key_rate=10_000.0, key_burst=10_000.0)
    server = LiveServer(api.client.app)
    yield api, server.url
    server.stop()


def test_fifty_clients_racing_over_real_http_keep_chains_gapless(racing):
    # 50 clients race to add one revision each to the same two subjects. A loser
    # gets 409 naming the current head and retries on top of it, as a real
    # client does: every update lands once, chains stay gapless, none is lost.
    api, url = racing
    targets = [Ed25519Signer(f"t{i}", bytes([110 + i]) * 32) for i in range(2)]
    for t in targets:
        api.log.grant(t, "tps", TPS)
    heads = {f"keys/{t.keyid}": api.log.heads[f"keys/{t.keyid}"] for t in targets}
    accepted: list[tuple[str, int]] = []
    lock = threading.Lock()
    log = api.log
    start = threading.Barrier(50)

    def body(target, number):
        return {
            "keyid": target.keyid,
            "public_key": base64.b64encode(target.public_key).decode(),
            "role": "tps",
            "scope": TPS,
            "holder": f"client {number}",
        }

    def client(number: int) -> None:
        start.wait()
        with httpx.Client(base_url=url, timeout=30) as http:
            for target in targets:
                subject = f"keys/{target.keyid}"
                revision, prev = heads[subject]
                for _attempt in range(200):
                    payload = log.payload(
                        "keys.grant/v1",
                        subject,
                        body(target, number),
                        revision=revision + 1,
                        prev=prev,
                        reason=f"client {number} update",
                    )
                    response = http.post(
                        "/v1/entries",
                        content=envelope_bytes(payload, ADMINS[:1]),
                        headers={"content-type": "application/json"},
                    )
                    if response.status_code == 201:
                        with lock:
                            accepted.append((subject, response.json()["index"]))
                        break
                    assert response.status_code == 409, response.text
                    problem = response.json()
                    assert problem["type"] in (
                        "/problems/stale-revision",
                        "/problems/wrong-prev",
                    )
                    revision = problem["current_revision"]
                    prev = problem["current_payload_hash"]

    threads = [threading.Thread(target=client, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(accepted) == 50 * len(targets)
    assert len({index for _, index in accepted}) == len(accepted)  # no duplicate
    for target in targets:
        history = httpx.get(f"{url}/v1/subjects/keys/{target.keyid}").json()
        revisions = history["revisions"]
        assert [r["record"]["revision"] for r in revisions] == list(range(51))
        for before, after in itertools.pairwise(revisions):
            assert after["record"]["prev"] == before["record"]["payload_hash"]
        holders = {r["index"] for r in revisions[1:]}
        assert holders == {i for s, i in accepted if s == f"keys/{target.keyid}"}


def test_proofs_follow_the_latest_tree_while_the_witnessed_checkpoint_lags(api):
    # Witnesses cosign after a commit: /log/checkpoint (and the export) serve
    # the cosigned one, the proof routes the tree a writer's receipt is in, so
    # a client following the log from its receipts can always go on.
    lagging = api.client.get("/log/checkpoint").content
    old_size = api.size
    api.log.service.ledger.publish_witnessed(lambda: lagging)
    receipt = api.log.grant(
        Ed25519Signer("late", bytes([77]) * 32), "tps", "3171011001001"
    )
    assert receipt.size == old_size + 1
    assert api.client.get("/log/checkpoint").content == lagging
    grown = api.client.get("/v1/proofs/consistency", params={"old": receipt.size})
    assert grown.status_code == 200, grown.text
    assert grown.json()["checkpoint"].encode() == receipt.checkpoint
    proof = api.client.get("/v1/proofs/inclusion", params={"index": receipt.index})
    assert proof.json()["tree_size"] == receipt.size
    export = api.client.get("/v1/proofs/export", params={"index": receipt.index})
    assert export.status_code == 404  # not under the published checkpoint yet
    assert export.json()["type"] == "/problems/out-of-range"


def test_query_parameters_are_taken_once_and_in_plain_digits(api):
    # Found by schemathesis at the fitness run's size: ?index=null&index=0.0
    # was answered for entry 0, whichever value the client meant.
    grow(api, 3)
    for path in (
        "/v1/proofs/export?index=0&index=1",
        "/v1/proofs/inclusion?index=1&index=1",
        "/v1/proofs/consistency?old=1&old=2",
        "/v1/keys?size=1&size=2",
        "/v1/results/ppwp/31/below/district?limit=5&limit=6",
    ):
        response = api.client.get(path)
        assert response.status_code == 400, (path, response.text)
        problem = response.json()
        assert problem["type"].endswith("/malformed-request"), path
        assert "given more than once" in problem["detail"], path
    # Found the same way: ?size=0.0 was read as size 0. Integers in plain digits.
    for path in (
        "/v1/keys?size=0.0",
        "/v1/proofs/export?index=1e0",
        "/v1/proofs/inclusion?index=%2B1",
        "/v1/proofs/consistency?old=01",
        "/v1/proofs/inclusion?index=1.5",
    ):
        response = api.client.get(path)
        assert response.status_code == 400, (path, response.text)
        assert "plain digits" in response.json()["detail"], path
    # One value each, or a parameter the route does not take twice: as before.
    assert api.client.get("/v1/proofs/export?index=1").status_code == 200
    assert (
        api.client.get("/v1/proofs/inclusion?index=1&other=1&other=2").status_code
        == 200
    )
