"""The log collects its witnesses' cosignatures and serves them on its checkpoint.

A Saksi log (over HTTP on 127.0.0.1) is configured with two witnesses (real
``saksi-verify`` witness servers, also on 127.0.0.1). As records are written,
``/log/checkpoint`` comes to carry both cosignatures for the current tree, and an
observer pinning both witnesses with ``--min-witnesses 2`` verifies it, then
verifies the next one as consistent. With one witness down, the log still
serves (one cosignature), and the same observer refuses while a 1-of-2 observer
accepts. A log restarted without memory of the witnesses' sizes learns them from
their 409 answers and is cosigned again.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from api.settings import ApiSettings
from ledger.cosigning import WitnessEndpoint, Witnessing, parse_witnesses
from tests.api.conftest import Api, LiveServer
from tests.recordlog import RecordLog, form, setup_election
from tests.tilelog import NoteKey, view
from verifier.commands import main
from verifier.cosignature import cosign, parse_cosignature
from verifier.note import parse_note
from verifier.witness_protocol import WitnessKey
from verifier.witness_server import Witness, serve_witness

STATIONS = ["3171011001001", "3171011001002", "3171011001003", "3171011001004"]


def _start_witness(key: WitnessKey, log_key, state):
    server = serve_witness(Witness(key, [log_key], state), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _cosigners(url: str, size: int, deadline: float = 15.0) -> set[str]:
    """Who cosigned the served checkpoint, once it is for ``size`` (waits a
    little for a second cosignature)."""
    end = time.monotonic() + deadline
    names: set[str] = set()
    settled = None
    while time.monotonic() < end:
        note = parse_note(httpx.get(url + "/log/checkpoint").content)
        if note.text.split("\n")[1] == str(size):
            names = {s.name for s in note.signatures[1:]}
            if len(names) == 2:
                return names
            settled = settled or time.monotonic() + 1.0
            if time.monotonic() > settled:
                return names
        time.sleep(0.05)
    return names


def tally(log, keys, station: str, votes: int) -> None:
    log.submit(
        log.payload(
            "results.tally/v1",
            f"results/ppwp/{station}",
            form({"100025": votes, "100026": 1}),
        ),
        [keys["reader"]],
    )


@pytest.fixture
def witnessed(db_url, signer, tmp_path):
    log = RecordLog(db_url, signer)
    api = Api(log, ApiSettings())
    keys = setup_election(log, STATIONS)
    started = [
        (k, *_start_witness(k, signer.verifier_key, tmp_path / k.name))
        for k in (
            WitnessKey.generate("w1.example.org"),
            WitnessKey.generate("w2.example.org"),
        )
    ]
    endpoints = [WitnessEndpoint(url, k.verifier_key) for k, _, url in started]
    log.service.witness_with(endpoints)
    server = LiveServer(api.client.app)
    yield log, keys, server.url, started, endpoints
    server.stop()
    for _, httpd, _ in started:
        httpd.shutdown()
        httpd.server_close()
    log.close()


def _observe(tmp_path, url, signer, witnesses, k, state, capsys):
    pins = [a for w in witnesses for a in ("--witness", str(w.verifier_key))]
    code = main(
        [
            "checkpoint",
            "--log",
            url,
            "--key",
            str(signer.verifier_key),
            *pins,
            "--min-witnesses",
            str(k),
            "--state",
            str(tmp_path / state),
            "--json",
        ]
    )
    return code, json.loads(capsys.readouterr().out)


def test_checkpoints_are_served_with_both_cosignatures(
    witnessed, signer, tmp_path, capsys
):
    log, keys, url, started, endpoints = witnessed
    wkeys = [k for k, _, _ in started]
    for n, station in enumerate(STATIONS[:2]):
        tally(log, keys, station, n)
    assert _cosigners(url, log.ledger.size) == {"w1.example.org", "w2.example.org"}
    code, report = _observe(tmp_path, url, signer, wkeys, 2, "o", capsys)
    assert code == 0, report
    assert set(report["cosigned_by"]) == {"w1.example.org", "w2.example.org"}
    tally(log, keys, STATIONS[2], 3)
    assert len(_cosigners(url, log.ledger.size)) == 2
    code, report = _observe(tmp_path, url, signer, wkeys, 2, "o", capsys)
    assert code == 0, report
    assert report["trusted_before"]["tree_size"] < report["tree_size"]
    status = httpx.get(url + "/v1/log").json()["witnesses"]
    assert {s["witness"] for s in status} == {"w1.example.org", "w2.example.org"}
    assert all(s["cosigned_size"] == log.ledger.size for s in status)

    # Witness 2 goes down: the log still serves, with one cosignature; an
    # observer that needs both refuses it, one that needs one accepts it.
    started[1][1].shutdown()
    started[1][1].server_close()
    tally(log, keys, STATIONS[3], 5)
    assert _cosigners(url, log.ledger.size) == {"w1.example.org"}
    code, report = _observe(tmp_path, url, signer, wkeys, 2, "o", capsys)
    assert code == 1
    assert "cosigned by 1" in report["error"]
    code, report = _observe(tmp_path, url, signer, wkeys, 1, "o1", capsys)
    assert code == 0, report
    down = httpx.get(url + "/v1/log").json()["witnesses"][1]
    assert down["failures"] >= 1
    assert "unreachable" in down["last_error"]

    # A restarted log does not know what the witness holds: it learns it from
    # the 409 answer and is cosigned again.
    log.service.witnessing.stop()
    log.service.witness_with(endpoints[:1])
    assert _cosigners(url, log.ledger.size) == {"w1.example.org"}
    (again,) = httpx.get(url + "/v1/log").json()["witnesses"]
    assert again["cosignatures"] == 1
    assert again["cosigned_size"] == log.ledger.size


def test_parse_witness_specs():
    key = WitnessKey.generate("w.example.org").verifier_key
    (endpoint,) = parse_witnesses([f"http://127.0.0.1:9/w/ {key}"])
    assert (endpoint.url, endpoint.key) == ("http://127.0.0.1:9/w", key)
    for bad in ["http://x", f"ftp://x {key}", "http://x not-a-key"]:
        with pytest.raises(ValueError, match="witness"):
            parse_witnesses([bad])


def test_answers_that_are_not_the_witness_cosignature_are_dropped():
    """A witness's answer is attached only if it is that witness's valid
    cosignature of this checkpoint; a witness ahead of the log is an alarm."""
    log_key = NoteKey("example.org/log", bytes([4]) * 32)
    honest = WitnessKey.generate("w.example.org")
    other = WitnessKey.generate("other.example.org")
    note = view([b"a", b"b", b"c"], log_key, log_key.name)["checkpoint"]
    text = parse_note(note).text
    valid = cosign(text, honest.name, honest.signing_key, 1).to_line().encode()
    answers = {
        "valid": (200, valid),
        "forged": (200, cosign(text, honest.name, other.signing_key, 1).to_line()),
        "other text": (
            200,
            cosign(text + "x\n", honest.name, honest.signing_key, 1).to_line(),
        ),
        "junk": (200, "hello\n"),
        "ahead": (409, "7\n"),
        "refused": (422, "no\n"),
    }
    for name, (code, answer) in answers.items():
        body = answer if isinstance(answer, bytes) else answer.encode()
        witnessing = Witnessing(
            lambda: (3, note),
            lambda old, new: [],
            log_key.verifier_key,
            log_key.name,
            [WitnessEndpoint("http://w", honest.verifier_key)],
            post=lambda url, data, timeout, reply=(code, body): reply,
        )
        published = witnessing.round(3, note)
        (status,) = witnessing.status()
        if name == "valid":
            assert published == note + valid
            assert status["cosignatures"] == 1
            continue
        assert published == note, name
        assert status["failures"] == 1, name
        if name == "ahead":
            assert "holds size 7" in status["last_error"]


def test_a_receipt_newer_than_the_published_checkpoint_verifies(
    witnessed, signer, tmp_path, capsys
):
    """Witnessed checkpoints are published a moment after the head moves: a
    receipt can be ahead of /log/checkpoint. The observer proves the published
    checkpoint is a prefix of the receipt's, from the tiles, and accepts it."""
    log, keys, url, _, _ = witnessed
    tally(log, keys, STATIONS[0], 1)
    published = len(_cosigners(url, log.ledger.size))
    assert published == 2
    log.service.witnessing.stop()  # the published checkpoint stays where it is
    receipt = log.submit(
        log.payload(
            "results.tally/v1", f"results/ppwp/{STATIONS[1]}", form({"100025": 2})
        ),
        [keys["reader"]],
    )
    served = parse_note(httpx.get(url + "/log/checkpoint").content)
    assert int(served.text.split("\n")[1]) < receipt.size
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt.to_json()))
    args = [
        "--log",
        url,
        "--key",
        str(signer.verifier_key),
        "--state",
        str(tmp_path / "s"),
    ]
    code = main(["inclusion", *args, "--receipt", str(path), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert report["receipt_checkpoint"]["tree_size"] == receipt.size
    assert report["index"] == receipt.index


def test_an_idle_head_is_witnessed_again_so_its_cosignatures_stay_fresh():
    log_key = NoteKey("example.org/idle", bytes([5]) * 32)
    witness = WitnessKey.generate("w.example.org")
    note = view([b"a"], log_key, log_key.name)["checkpoint"]
    text = parse_note(note).text
    sent = []

    def post(url, body, timeout):
        sent.append(body)
        line = cosign(text, witness.name, witness.signing_key, len(sent))
        return 200, line.to_line().encode()

    witnessing = Witnessing(
        lambda: (1, note),
        lambda old, new: [],
        log_key.verifier_key,
        log_key.name,
        [WitnessEndpoint("http://w", witness.verifier_key)],
        post=post,
        interval=0.01,
        refresh=0.05,
    )
    witnessing.start()
    try:
        deadline = time.monotonic() + 10
        while len(sent) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        witnessing.stop()
    assert len(sent) >= 3  # the same head, witnessed again and again
    published = parse_note(witnessing.published())
    latest = parse_cosignature(published.signatures[-1])
    assert latest.timestamp == len(sent)  # the newest cosignature is served
