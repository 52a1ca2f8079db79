"""The golden log: this version writes it and answers for it byte for byte as kept.

``tests/golden/`` holds a small record log's read answers as an earlier version
gave them (``python -m tests.golden.build`` explains the log). Here the log is
written again and asked the same questions: every status, content type and
body must be the same, byte for byte. The kept answers are also verified on
their own with the verifier and the kept log key: the checkpoint's signature,
each inclusion proof, the consistency proofs, and the entries against the
tiles. A difference is a format change: make it on purpose (rebuild, review
the diff, note it in CHANGELOG.md), never as a side effect.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
from pathlib import Path

import pytest

from tests.golden.build import BUNDLES, HERE, ask, bundles, write_log
from verifier.bundle_check import check_bundle
from verifier.checkpoint import verify_checkpoint
from verifier.note import VerifierKey
from verifier.proof_check import verify_consistency, verify_inclusion
from verifier.rfc6962 import hash_leaf

INDEX = json.loads((HERE / "answers.json").read_text())
KEY = VerifierKey.parse((HERE / "log.vkey").read_text().strip())


def _kept(path: str) -> bytes:
    entry = next(a for a in INDEX if a["path"] == path)
    return (HERE / "answers" / entry["file"]).read_bytes()


@pytest.fixture(scope="module")
def answers(tmp_path_factory) -> dict[str, dict]:
    log = write_log(Path(tmp_path_factory.mktemp("golden")))
    try:
        assert str(log.ledger.verifier_key) == str(KEY)
        return ask(log)
    finally:
        log.close()


def test_every_answer_is_as_kept(answers, evidence):
    assert [a["path"] for a in INDEX] == list(answers)
    same = 0
    for kept in INDEX:
        now = answers[kept["path"]]
        assert now["status"] == kept["status"], kept["path"]
        assert now["content_type"] == kept["content_type"], kept["path"]
        assert now["body"] == _kept(kept["path"]), kept["path"]
        same += 1
    evidence.record(
        "R11",
        attempts=len(INDEX),
        detected=same,
        compared="status, content type and body, byte for byte",
        kept_answers=len(INDEX),
        of_them_checkpoint_and_tiles=sum(a["path"].startswith("/log/") for a in INDEX),
    )


def test_the_kept_answers_verify_on_their_own():
    checkpoint, _ = verify_checkpoint(_kept("/log/checkpoint"), KEY, KEY.name)
    size, root = checkpoint.size, checkpoint.root_hash
    # The entries, as the tiles serve them, hash to the leaves the tile holds.
    bundle = _kept(f"/log/tile/entries/000.p/{size}")
    leaves = _kept(f"/log/tile/0/000.p/{size}")
    offset, entries = 0, []
    while offset < len(bundle):
        length = int.from_bytes(bundle[offset : offset + 2], "big")
        entries.append(bundle[offset + 2 : offset + 2 + length])
        offset += 2 + length
    assert len(entries) == size
    assert b"".join(hash_leaf(e) for e in entries) == leaves
    proved = 0
    for kept in INDEX:
        if kept["path"].startswith("/v1/proofs/inclusion?index="):
            answer = json.loads(_kept(kept["path"]))
            index = answer["index"]
            verify_inclusion(
                index,
                size,
                leaves[32 * index : 32 * index + 32],
                [bytes.fromhex(h) for h in answer["inclusion_proof"]],
                root,
            )
            proved += 1
        if kept["path"].startswith("/v1/entries/") and kept["status"] == 200:
            answer = json.loads(_kept(kept["path"]))
            assert base64.b64decode(answer["envelope"]["payload"])
            assert bytes.fromhex(answer["leaf_hash"]) == hash_leaf(
                entries[answer["index"]]
            )
    assert proved == len(range(0, size, 3))
    whole = json.loads(_kept("/v1/proofs/consistency?old=1"))
    verify_consistency(
        1,
        size,
        leaves[:32],
        root,
        [bytes.fromhex(h) for h in whole["consistency_proof"]],
    )


def test_the_bundles_are_as_kept(tmp_path, evidence):
    """``saksi-proof-bundle/v1``, line for line: a region's bundle and a pinned
    one, exported from the golden log again."""
    now = bundles()
    assert sorted(now) == sorted(p.stem for p in BUNDLES.glob("*.jsonl"))
    same = 0
    for name, lines in now.items():
        assert lines == (BUNDLES / f"{name}.jsonl").read_bytes(), name
        same += 1
    evidence.record(
        "R11",
        attempts=len(now),
        detected=same,
        compared="proof bundles, line for line",
    )


def test_the_kept_bundles_verify_on_their_own():
    for path in sorted(BUNDLES.glob("*.jsonl")):
        raw = gzip.compress(path.read_bytes(), mtime=0)
        report = check_bundle(io.BytesIO(raw), KEY, KEY.name)
        assert report["passed"] is True, path.name
        assert report["selected"] > 0, path.name
