"""``saksi-verify witness``: a C2SP tlog-witness that never cosigns two histories.

The witness is driven over HTTP on 127.0.0.1 as a log drives it (add-checkpoint
with a consistency proof built from the log's tiles), with the spec's status
codes for every refusal; its state survives a restart. Then the issue's scenario:
two witnesses and a log; the log shows one witness a fork and is refused (409 or
422), and an observer pinning both witnesses with ``--min-witnesses 2`` refuses
the forked checkpoint while it accepts the honest, cosigned one.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest

from tests.evidence import scale
from tests.helpers import ROOT, load_vectors
from tests.tilelog import NoteKey, TileServer, view
from verifier.commands import main
from verifier.cosignature import WitnessPolicy, verify_cosigned
from verifier.note import parse_note
from verifier.tile_client import TileHashes, TileLog
from verifier.witness_protocol import (
    WitnessKey,
    format_add_checkpoint,
    parse_add_checkpoint,
)
from verifier.witness_server import Witness, serve_witness

ORIGIN = "example.org/witnessed-log"
LOG = NoteKey(ORIGIN, bytes([1]) * 32)
PROTOCOL = load_vectors("cosignature_witness.json")["witness_protocol"]


def history(n: int, tag: str = "a") -> list[bytes]:
    return [f"{tag}{i}".encode() for i in range(n)]


def request(entries: list[bytes], old: int, proof_from: list[bytes] | None = None):
    """The add-checkpoint body for the tree of ``entries``, claiming ``old``.

    The proof is built from the tiles of ``proof_from`` (default: the same tree),
    as the log would build it.
    """
    files = view(entries, LOG, ORIGIN)
    source = view(proof_from or entries, LOG, ORIGIN)
    hashes = TileHashes(TileLog(source.__getitem__), len(proof_from or entries))
    proof = hashes.consistency_proof(old, len(entries)) if old else []
    return format_add_checkpoint(old, proof, files["checkpoint"])


def post(url: str, body: bytes) -> tuple[int, bytes, str]:
    req = urllib.request.Request(url + "/add-checkpoint", data=body, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
            return r.status, r.read(), r.headers.get("content-type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("content-type", "")


@pytest.fixture
def witnesses(tmp_path):
    running = []
    for name in ("w1.example.org", "w2.example.org"):
        key = WitnessKey.generate(name)
        witness = Witness(
            key, [LOG.verifier_key], tmp_path / name, clock=lambda: 1_700_000_000
        )
        server = serve_witness(witness, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}"
        running.append((key, witness, url, server))
    yield running
    for *_, server in running:
        server.shutdown()
        server.server_close()


def test_the_protocol_example_parses():
    old, proof, note = parse_add_checkpoint(
        PROTOCOL["add_checkpoint_request_example"].encode()
    )
    assert old == 20852014
    assert len(proof) == 4
    assert parse_note(note).text.startswith("example.com/behind-the-sofa\n20852163\n")


def test_status_codes_of_every_refusal_and_the_cosignature(witnesses):
    key, witness, url, _ = witnesses[0]
    a = history(300)
    # First sight: old 0, any consistent checkpoint is accepted.
    status, body, _ = post(url, request(a, 0))
    assert status == 200
    cosigned = view(a, LOG, ORIGIN)["checkpoint"] + body
    _, _, stamps = verify_cosigned(
        cosigned, LOG.verifier_key, ORIGIN, WitnessPolicy((key.verifier_key,), 1)
    )
    assert stamps == {key.name: 1_700_000_000}
    b = a + history(50, "b")
    stranger = NoteKey("other.org/log", bytes(32))
    impostor = NoteKey(ORIGIN, bytes(32))  # the log's name, another key
    cases = [
        (b"old 0\n", 400),  # no checkpoint
        (b"old x\n\n" + view(b, LOG, ORIGIN)["checkpoint"], 400),
        (request(a, 0).replace(b"old 0", b"old 301"), 400),  # old beyond size
        (
            format_add_checkpoint(
                0, [], view(a, stranger, stranger.name)["checkpoint"]
            ),
            404,
        ),
        (format_add_checkpoint(300, [], view(b, impostor, ORIGIN)["checkpoint"]), 403),
        (request(b, 0), 409),  # the witness is at 300, not 0
        (request(b, 299), 409),
    ]
    for body_, expected in cases:
        status, answer, ctype = post(url, body_)
        assert status == expected, (body_[:40], answer)
        if expected == 409:
            assert (answer, ctype) == (b"300\n", "text/x.tlog.size")
    # A fork of the same size, a fork that grew, and a bad proof: 422.
    forked = list(b)
    forked[7] = b"rewritten"
    assert post(url, request(forked, 300, proof_from=forked))[0] == 422
    other = list(a)
    other[0] = b"x"
    assert (
        post(
            url, format_add_checkpoint(300, [], view(other, LOG, ORIGIN)["checkpoint"])
        )[0]
        == 422
    )
    # The honest extension is cosigned, and remembered across a restart.
    assert post(url, request(b, 300))[0] == 200
    again = Witness(key, [LOG.verifier_key], witness.state)
    assert again.latest(ORIGIN)[0] == 350


def test_old_zero_with_a_proof_and_an_empty_tree_with_a_root_are_refused(witnesses):
    _, witness, url, _ = witnesses[1]
    a = history(8)
    body = format_add_checkpoint(0, [bytes(32)], view(a, LOG, ORIGIN)["checkpoint"])
    assert post(url, body)[0] == 422
    assert witness.latest(ORIGIN)[0] == 0


def test_two_witnesses_refuse_a_fork_and_so_does_the_observer(
    witnesses, tmp_path, capsys
):
    (k1, _, url1, _), (k2, _, url2, _) = witnesses
    honest = history(500)
    for url in (url1, url2):
        assert post(url, request(honest[:200], 0))[0] == 200
        assert post(url, request(honest, 200))[0] == 200
    # The log forks and shows the fork to witness 1: refused both ways.
    forked = honest[:100] + history(450, "fork")
    assert post(url1, request(forked, 500, proof_from=forked))[0] == 422
    assert post(url1, request(forked, 0))[0] == 409
    tiles = TileServer()
    try:
        pins = ["--witness", str(k1.verifier_key), "--witness", str(k2.verifier_key)]
        args = ["checkpoint", "--log", tiles.url, "--key", str(LOG.verifier_key), *pins]
        # The forked checkpoint carries no cosignature: refused.
        tiles.serve(view(forked, LOG, ORIGIN))
        code = main(
            [*args, "--min-witnesses", "2", "--state", str(tmp_path / "o1"), "--json"]
        )
        report = json.loads(capsys.readouterr().out)
        assert code == 1
        assert "cosigned by 0" in report["error"]
        # Witness 2 refuses too. A third witness that has never seen the log
        # can be tricked into cosigning the fork (it trusts on first use):
        # with it pinned, one cosignature is still not two.
        fresh = WitnessKey.generate("w3.example.org")
        lone = Witness(fresh, [LOG.verifier_key], tmp_path / "w3")
        line = lone.add_checkpoint(request(forked, 0))
        assert line.status == 200
        assert post(url2, request(forked, 0))[0] == 409
        files = view(forked, LOG, ORIGIN)
        files["checkpoint"] += line.body
        tiles.serve(files)
        three = [*pins, "--witness", str(fresh.verifier_key)]
        args3 = [
            "checkpoint",
            "--log",
            tiles.url,
            "--key",
            str(LOG.verifier_key),
            *three,
        ]
        code = main(
            [*args3, "--min-witnesses", "2", "--state", str(tmp_path / "o2"), "--json"]
        )
        report = json.loads(capsys.readouterr().out)
        assert code == 1
        assert "cosigned by 1" in report["error"]
        # The honest checkpoint, cosigned by both, is accepted.
        files = view(honest, LOG, ORIGIN)
        for url in (url1, url2):
            status, body, _ = post(url, request(honest, 500))
            assert status == 200
            files["checkpoint"] += body
        tiles.serve(files)
        code = main(
            [*args, "--min-witnesses", "2", "--state", str(tmp_path / "o3"), "--json"]
        )
        report = json.loads(capsys.readouterr().out)
        assert code == 0, report
        assert set(report["cosigned_by"]) == {k1.name, k2.name}
        # Those cosignatures were made "in 2023": too old for an observer that
        # wants them from the last hour (a frozen view looks like this).
        state = ["--state", str(tmp_path / "o4"), "--json"]
        code = main([*args, "--min-witnesses", "2", "--max-age", "3600", *state])
        report = json.loads(capsys.readouterr().out)
        assert code == 1
        assert report["error"].startswith("stale")
        # Cosigned just now by a witness with a true clock: fresh enough.
        now = WitnessKey.generate("w4.example.org")
        live = Witness(now, [LOG.verifier_key], tmp_path / "w4")
        files = view(honest, LOG, ORIGIN)
        files["checkpoint"] += live.add_checkpoint(request(honest, 0)).body
        tiles.serve(files)
        pin = ["--witness", str(now.verifier_key), "--max-age", "3600"]
        code = main(
            [
                "checkpoint",
                "--log",
                tiles.url,
                "--key",
                str(LOG.verifier_key),
                *pin,
                *state,
            ]
        )
        report = json.loads(capsys.readouterr().out)
        assert code == 0, report
    finally:
        tiles.stop()


def test_the_witness_command_runs_and_stops(tmp_path):
    key_file = tmp_path / "w.key"
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "verifier.cli",
            "witness-key",
            "--name",
            "w.example.org",
            "--out",
            str(key_file),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    vkey = json.loads(made.stdout)["vkey"]
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "verifier.cli",
            "witness",
            "--log-key",
            str(LOG.verifier_key),
            "--key-file",
            str(key_file),
            "--listen",
            "127.0.0.1:0",
            "--state",
            str(tmp_path / "state"),
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        started = json.loads(proc.stdout.readline())
        assert started["vkey"] == vkey
        status, body, _ = post(started["url"], request(history(3), 0))
        assert status == 200
        assert body.startswith("— w.example.org ".encode())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert proc.returncode == 0
    # A key file others can read is refused.
    os.chmod(key_file, 0o644)
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "verifier.cli",
            "witness",
            "--log-key",
            str(LOG.verifier_key),
            "--key-file",
            str(key_file),
            "--listen",
            "127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "chmod 600" in refused.stderr


def test_a_stolen_log_key_cannot_get_a_fork_cosigned(tmp_path, evidence):
    """RELIABILITY.md T3: whoever holds the log key signs forks of every shape
    (same size and another root, smaller, larger but inconsistent), each with
    the best proof it can build from its own tiles. The witness refuses every
    one (400, 409 or 422) and stays where it was; the honest log, growing
    between the forks, is cosigned every time (no false alarm)."""
    witness = Witness(
        WitnessKey.generate("w.example.org"),
        [LOG.verifier_key],
        tmp_path / "w",
        clock=lambda: 1_700_000_000,
    )
    rng = random.Random(3)
    honest = history(rng.randint(2, 300))
    assert witness.add_checkpoint(request(honest, 0)).status == 200
    kinds = ["same size", "smaller", "larger"]
    trials = scale(30, 100)
    refused = honest_cosigned = 0
    statuses: set[int] = set()
    for trial in range(trials):
        kind = kinds[trial % len(kinds)]
        size = len(honest)
        forked = list(honest)
        forked[rng.randrange(size)] = b"forged %d" % trial
        if kind == "smaller":
            smaller = honest[: rng.randrange(1, size)]
            # Claiming the witness's size, or its own (no proof can join them).
            old = rng.choice([size, len(smaller)])
            body = format_add_checkpoint(
                old, [], view(smaller, LOG, ORIGIN)["checkpoint"]
            )
        else:
            if kind == "larger":
                forked += history(rng.randint(1, 200), f"f{trial}-")
            body = request(forked, size, proof_from=forked)
        status = witness.add_checkpoint(body).status
        statuses.add(status)
        if status in (400, 409, 422) and witness.latest(ORIGIN)[0] == size:
            refused += 1
        if trial % 3 == 2:  # the honest log grows and is cosigned
            grown = honest + history(rng.randint(1, 100), f"h{trial}-")
            if witness.add_checkpoint(request(grown, size)).status == 200:
                honest_cosigned += 1
            honest = grown
    assert refused == trials, statuses
    assert honest_cosigned == trials // 3
    evidence.record(
        "T3",
        attempts=trials,
        detected=refused,
        false_alarms=trials // 3 - honest_cosigned,
        kinds=", ".join(kinds),
        statuses="/".join(str(s) for s in sorted(statuses)),
        honest_checkpoints_cosigned=honest_cosigned,
    )
