"""Fork and rollback detection: ``saksi-verify checkpoint`` against a lying log.

A plain tlog-tiles log (opaque entries, nothing Saksi-specific) is served over
HTTP on 127.0.0.1. The observer first trusts an honest view; then the log shows
it one of four lies, 100 random trials of each:

* rewrite: the same history with one earlier entry changed (the tree may also
  have grown);
* truncate: a prefix of the trusted tree (a smaller signed checkpoint);
* fork: a different tree of the same size, signed by the same key;
* frozen: after the observer saw the log grow, the old checkpoint replayed.

Every lie must be refused (exit 1) with evidence, the evidence must re-check as
a proven fork with ``saksi-verify consistency --evidence`` and the log's key
alone, and the observer's trusted checkpoint must be left as it was. Every honest
step (first use, growth) must verify (exit 0): no false alarm either.
"""

from __future__ import annotations

import base64
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.tilelog import NoteKey, TileServer, view
from verifier.commands import main

ORIGIN = "example.org/any-tlog"
KEY = NoteKey(ORIGIN, bytes(range(32)))
VKEY = str(KEY.verifier_key)
TRIALS = 100


@pytest.fixture(scope="module")
def server():
    served = TileServer()
    yield served
    served.stop()


def run(capsys, *args: str) -> tuple[int, dict]:
    code = main([*args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def entries(rng: random.Random, n: int, tag: str) -> list[bytes]:
    return [f"{tag}:{i}:{rng.random()}".encode() for i in range(n)]


def observe(capsys, server, files, state: Path) -> tuple[int, dict]:
    server.serve(files)
    return run(
        capsys, "checkpoint", "--log", server.url, "--key", VKEY, "--state", str(state)
    )


def _lie(kind: str, rng: random.Random) -> tuple[list[list[bytes]], list[bytes]]:
    """(honest views the observer sees first, in order; the lie)."""
    n = rng.randint(2, 700)
    first = entries(rng, n, "a")
    if kind == "rewrite":
        grown = first + entries(rng, rng.choice([0, rng.randint(1, 400)]), "b")
        i = rng.randrange(n)
        grown[i] = grown[i] + b"!"
        return [first], grown
    if kind == "truncate":
        return [first], first[: rng.randrange(n)]
    if kind == "fork":
        other = list(first)
        for i in rng.sample(range(n), rng.randint(1, min(n, 5))):
            other[i] = b"forked " + other[i]
        return [first], other
    # frozen: the log grows, then replays the checkpoint of the smaller tree.
    grown = first + entries(rng, rng.randint(1, 400), "b")
    return [first, grown], first


@pytest.mark.parametrize("kind", ["rewrite", "truncate", "fork", "frozen"])
def test_every_lie_is_caught_with_evidence_that_rechecks(
    kind, server, tmp_path, capsys, evidence
):
    caught = honest_steps = rechecked = 0
    for trial in range(TRIALS):
        rng = random.Random(f"{kind}-{trial}")
        honest, lie = _lie(kind, rng)
        state = tmp_path / f"s{trial}"
        for step in honest:
            code, report = observe(capsys, server, view(step, KEY, ORIGIN), state)
            assert code == 0, report
            assert report["tree_size"] == len(step)
            honest_steps += 1
        trusted_files = list(state.glob("*/checkpoint"))
        trusted = trusted_files[0].read_bytes()
        code, report = observe(capsys, server, view(lie, KEY, ORIGIN), state)
        assert code == 1, (trial, report)
        shown = report["evidence"]
        assert shown["kind"] == ("rollback" if len(lie) < len(honest[-1]) else "fork")
        assert shown["trusted_checkpoint"] == trusted.decode()
        assert trusted_files[0].read_bytes() == trusted  # the state is unchanged
        code, checked = run(
            capsys, "consistency", "--key", VKEY, "--evidence", report["evidence_file"]
        )
        assert (code, checked["fork_proven"]) == (1, True), checked
        rechecked += 1
        caught += 1
    assert caught == TRIALS
    # A key holder's forks (same size, smaller, larger but inconsistent) are
    # T3; a frozen log replaying an older checkpoint is T5's rollback.
    evidence.record(
        "T5" if kind == "frozen" else "T3",
        attempts=TRIALS,
        detected=caught,
        kind=kind,
        evidence_rechecked_with_the_key_alone=rechecked,
        honest_steps_verified=honest_steps,
    )


def test_honest_growth_verifies_step_after_step(server, tmp_path, capsys):
    rng = random.Random(7)
    log: list[bytes] = []
    state = tmp_path / "state"
    previous = None
    for _ in range(30):
        log += entries(rng, rng.choice([0, 1, 5, 255, 256, 300]), "g")
        code, report = observe(capsys, server, view(log, KEY, ORIGIN), state)
        assert code == 0, report
        assert report["first_use"] == (previous is None)
        if previous is not None:
            assert report["trusted_before"]["tree_size"] == previous
        previous = len(log)


def test_the_cli_prints_evidence_a_person_can_read(server, tmp_path):
    rng = random.Random(3)
    first = entries(rng, 40, "a")
    state = tmp_path / "state"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "verifier.cli", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            check=False,
        )

    server.serve(view(first, KEY, ORIGIN))
    args = ["checkpoint", "--log", server.url, "--key", VKEY, "--state", str(state)]
    ok = cli(*args)
    assert ok.returncode == 0, ok.stderr
    assert "first use" in ok.stdout
    assert "VERIFIED" in ok.stdout
    forked = list(first)
    forked[3] = b"changed"
    server.serve(view(forked + entries(rng, 9, "b"), KEY, ORIGIN))
    bad = cli(*args)
    assert bad.returncode == 1
    assert "fork" in bad.stderr
    assert "trusted_checkpoint" in bad.stderr
    assert "saksi-verify consistency" in bad.stderr
    assert "Traceback" not in bad.stderr
    evidence = next(state.glob("*/evidence/*.json"))
    recheck = cli("consistency", "--key", VKEY, "--evidence", str(evidence))
    assert recheck.returncode == 1
    assert recheck.stdout.startswith("FORK PROVEN")


def test_evidence_that_is_not_a_fork_or_not_signed_proves_nothing(
    server, tmp_path, capsys
):
    rng = random.Random(5)
    first = entries(rng, 20, "a")
    state = tmp_path / "state"
    observe(capsys, server, view(first, KEY, ORIGIN), state)
    code, report = observe(capsys, server, view(first[:10], KEY, ORIGIN), state)
    assert code == 1
    path = Path(report["evidence_file"])
    evidence = json.loads(path.read_text())
    # The same checkpoint twice is no fork.
    evidence["presented_checkpoint"] = evidence["trusted_checkpoint"]
    path.write_text(json.dumps(evidence))
    code, checked = run(capsys, "consistency", "--key", VKEY, "--evidence", str(path))
    assert (code, checked["fork_proven"]) == (0, False)
    # Checkpoints signed by another key prove nothing against this log.
    other = NoteKey(ORIGIN, bytes(32))
    evidence["presented_checkpoint"] = view(first[:3], other, ORIGIN)[
        "checkpoint"
    ].decode()
    path.write_text(json.dumps(evidence))
    code, checked = run(capsys, "consistency", "--key", VKEY, "--evidence", str(path))
    assert code == 2
    assert "not about this log" in checked["error"]
    # Made-up proof hashes between two honest checkpoints reach no signed root:
    # they prove nothing (anyone could write them); the real proof connects.
    evidence["trusted_checkpoint"] = view(first[:10], KEY, ORIGIN)[
        "checkpoint"
    ].decode()
    evidence["presented_checkpoint"] = view(first, KEY, ORIGIN)["checkpoint"].decode()
    for proof, says in [
        (
            [base64.b64encode(rng.randbytes(32)).decode() for _ in range(3)],
            "conclusive",
        ),
        ([base64.b64encode(rng.randbytes(32)).decode() for _ in range(9)], "fit"),
    ]:
        evidence["consistency_proof"] = proof
        path.write_text(json.dumps(evidence))
        code, checked = run(
            capsys, "consistency", "--key", VKEY, "--evidence", str(path)
        )
        assert (code, checked["fork_proven"]) == (0, False), checked
        assert says in checked["finding"]
