"""``saksi-verify`` inclusion, proof and compare against a live Saksi log and a
plain tlog-tiles log, as an observer or an auditor runs them.

* inclusion by receipt (what a writer got back), by the entry's bytes (looked up
  by hash on a Saksi log, or with ``--index`` on any log) and by index; a
  receipt or an entry that was altered is refused;
* ``/v1/proofs/export`` gives a C2SP tlog-proof file that ``saksi-verify proof``
  checks offline, with the entry inside; any changed byte is refused;
* compare: a mirror that lags is one history; a mirror showing another tree of
  the same log key is a split view, with evidence.
"""

from __future__ import annotations

import base64
import json
import random

import httpx
import pytest

from api.settings import ApiSettings
from tests.api.conftest import Api, LiveServer
from tests.evidence import scale
from tests.recordlog import RecordLog, form, setup_election
from tests.tilelog import NoteKey, TileServer, view
from verifier.commands import main

STATIONS = ["3171011001001", "3171011001002"]


def run(capsys, *args: str) -> tuple[int, dict]:
    code = main([*args, "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def saksi(db_url, signer, tmp_path):
    log = RecordLog(db_url, signer)
    api = Api(log, ApiSettings())
    keys = setup_election(log, STATIONS)
    receipts = []
    for n, station in enumerate(STATIONS):
        payload = log.payload(
            "results.tally/v1",
            f"results/ppwp/{station}",
            form({"100025": n, "100026": 7}),
        )
        response = api.post(payload, [keys["reader"]])
        assert response.status_code == 201, response.text
        receipts.append(response.json())
    server = LiveServer(api.client.app)
    yield log, server.url, str(signer.verifier_key), receipts
    server.stop()
    log.close()


def test_inclusion_by_receipt_entry_and_index(saksi, tmp_path, capsys):
    log, url, vkey, receipts = saksi
    common = ["--log", url, "--key", vkey, "--state", str(tmp_path / "state")]
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps(receipts[0]))
    code, report = run(capsys, "inclusion", *common, "--receipt", str(receipt))
    assert code == 0, report
    assert report["index"] == receipts[0]["index"]
    assert report["record"]["subject"] == f"results/ppwp/{STATIONS[0]}"
    assert report["receipt_checkpoint"]["tree_size"] == receipts[0]["tree_size"]
    entry = tmp_path / "entry.bin"
    entry.write_bytes(base64.b64decode(receipts[1]["entry"]))
    code, report = run(capsys, "inclusion", *common, "--entry", str(entry))
    assert code == 0, report
    assert report["index"] == receipts[1]["index"]
    code, report = run(capsys, "inclusion", *common, "--index", "0")
    assert code == 0, report
    assert report["record"]["schema"] == "log.genesis/v1"
    # An altered entry is not in the log; an altered receipt does not verify.
    entry.write_bytes(entry.read_bytes().replace(b'"logged_at":"', b'"logged_at":"0'))
    code, report = run(capsys, "inclusion", *common, "--entry", str(entry))
    assert code == 1
    forged = dict(receipts[0], leaf_hash="00" * 32, entry=None)
    receipt.write_text(json.dumps(forged))
    code, report = run(capsys, "inclusion", *common, "--receipt", str(receipt))
    assert code == 1
    assert "does not verify" in report["error"]
    code, report = run(capsys, "inclusion", *common, "--index", str(log.ledger.size))
    assert code == 2


def test_exported_proofs_verify_offline_and_refuse_any_change(saksi, tmp_path, capsys):
    log, url, vkey, receipts = saksi
    index = receipts[1]["index"]
    exported = httpx.get(url + "/v1/proofs/export", params={"index": index})
    assert exported.status_code == 200
    path = tmp_path / "entry.tlog-proof"
    path.write_bytes(exported.content)
    code, report = run(capsys, "proof", str(path), "--key", vkey)
    assert code == 0, report
    assert (report["index"], report["tree_size"]) == (index, log.ledger.size)
    assert report["record"]["subject"] == f"results/ppwp/{STATIONS[1]}"
    rng = random.Random(1)
    data = exported.content
    for at in rng.sample(range(len(data)), 60):
        changed = bytearray(data)
        changed[at] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(changed))
        code, _ = run(capsys, "proof", str(path), "--key", vkey)
        assert code != 0, at
    beyond = httpx.get(url + "/v1/proofs/export", params={"index": log.ledger.size})
    assert beyond.status_code == 404
    assert beyond.headers["content-type"] == "application/problem+json"


def test_compare_a_lagging_mirror_and_a_split_view(tmp_path, capsys):
    key = NoteKey("example.org/compared", bytes([6]) * 32)
    vkey = str(key.verifier_key)
    entries = [f"e{i}".encode() for i in range(700)]
    log, mirror, liar = TileServer(), TileServer(), TileServer()
    try:
        log.serve(view(entries, key, key.name))
        mirror.serve(view(entries[:300], key, key.name))
        saved = tmp_path / "peer.checkpoint"
        saved.write_bytes(view(entries[:5], key, key.name)["checkpoint"])
        state = ["--state", str(tmp_path / "s")]
        code, report = run(
            capsys,
            "compare",
            "--log",
            log.url,
            "--key",
            vkey,
            *state,
            "--peer",
            mirror.url,
            "--peer",
            str(saved),
        )
        assert code == 0, report
        assert [r["consistent"] for r in report["sources"]] == [True, True, True]
        forked = list(entries[:300])
        forked[100] = b"split"
        liar.serve(view(forked, key, key.name))
        code, report = run(
            capsys,
            "compare",
            "--log",
            log.url,
            "--key",
            vkey,
            *state,
            "--peer",
            mirror.url,
            "--peer",
            liar.url,
        )
        assert code == 1
        (split,) = report["split_views"]
        assert split["source"] == liar.url
        assert split["kind"] == "fork"
    finally:
        for server in (log, mirror, liar):
            server.stop()


def test_an_unreadable_trusted_checkpoint_is_an_io_error(saksi, tmp_path, capsys):
    _log, url, vkey, _receipts = saksi
    common = ["--log", url, "--key", vkey, "--state", str(tmp_path / "state")]
    code, report = run(capsys, "checkpoint", *common)
    assert code == 0, report
    (kept,) = (tmp_path / "state").rglob("checkpoint")
    kept.unlink()
    kept.mkdir()  # there, and not a file it can read
    code, report = run(capsys, "checkpoint", *common)
    assert code == 3, report
    assert "cannot read the trusted checkpoint" in report["error"]


def test_every_split_view_is_found_in_one_exchange(tmp_path, capsys, evidence):
    """RELIABILITY.md T6: observer A follows the log, observer B is shown
    another tree signed by the same key (self-consistent, of a random size and
    fork point). One ``compare`` of A's log with B's source names the split
    view every time; a peer that only lags never does (no false alarm)."""
    key = NoteKey("example.org/split", bytes([8]) * 32)
    vkey = str(key.verifier_key)
    log, peer = TileServer(), TileServer()
    trials = scale(5, 100)
    found = lagging_consistent = 0
    try:
        for trial in range(trials):
            rng = random.Random(trial)
            entries = [f"t{trial}-{i}".encode() for i in range(rng.randint(2, 600))]
            log.serve(view(entries, key, key.name))
            state = ["--state", str(tmp_path / f"s{trial}")]
            common = ["compare", "--log", log.url, "--key", vkey, *state]
            # The honest peer: a prefix of the same log.
            peer.serve(view(entries[: rng.randint(1, len(entries))], key, key.name))
            code, report = run(capsys, *common, "--peer", peer.url)
            assert code == 0, report
            lagging_consistent += all(r["consistent"] for r in report["sources"])
            # The split view: B's tree differs at one entry, then may grow.
            other = entries[: rng.randint(1, len(entries))]
            other[rng.randrange(len(other))] += b"!"
            other += [f"b{i}".encode() for i in range(rng.choice([0, 50]))]
            peer.serve(view(other, key, key.name))
            code, report = run(capsys, *common, "--peer", peer.url)
            assert code == 1, report
            # Named against the larger tree: which of two signed histories is
            # the lie, no observer can tell; that there are two, each can.
            (split,) = report["split_views"]
            assert {split["source"], split["anchor"]} == {log.url, peer.url}
            found += 1
    finally:
        log.stop()
        peer.stop()
    assert lagging_consistent == trials
    evidence.record(
        "T6",
        attempts=trials,
        detected=found,
        false_alarms=trials - lagging_consistent,
        exchange_rounds=1,
        honest_lagging_peers_consistent=lagging_consistent,
    )
