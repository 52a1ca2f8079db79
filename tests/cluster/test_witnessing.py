"""A cluster with a witness: the sequencer of the moment asks, every member serves.

Three ``saksi serve`` on one PostgreSQL, each given the same ``--witness`` (a
real witness server on 127.0.0.1). Writers go on through every member while
the sequencer is SIGKILLed again and again. Each new sequencer goes on from
what the witness holds; no member takes the witness for ahead of the log (as
members asking for their own, older, views would); every member comes to
serve the final tree cosigned by the witness, which an observer pinning the
witness verifies; the witness holds exactly that tree; the audit passes.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from keys import load_key_file
from saksi_client import Receipt
from tests.cluster.members import (
    PASS,
    Member,
    init_cluster_log,
    leader,
    writer_threads,
)
from tests.evidence import scale
from tests.helpers import run_verify
from verifier.cosignature import WitnessPolicy, verify_cosigned
from verifier.note import VerifierKey
from verifier.witness_protocol import WitnessKey, format_add_checkpoint
from verifier.witness_server import Witness, serve_witness

ORIGIN = "cluster.saksi.example/log"
KILLS = scale(2, 6)


def _witness_size(url: str, note: bytes) -> int:
    """The size the witness holds (its 409 answer to a request from size 0)."""
    answer = httpx.post(
        url + "/add-checkpoint", content=format_add_checkpoint(0, [], note)
    )
    assert answer.status_code == 409, answer.status_code
    return int(answer.text.strip())


def test_the_sequencer_of_the_moment_asks_and_every_member_serves(
    tmp_path: Path, pg_cluster
):
    db = pg_cluster.new_database()
    directory = tmp_path / "log"
    init_cluster_log(directory, db)
    key = VerifierKey.parse((directory / "log.vkey").read_text().strip())
    wkey = WitnessKey.generate("w.example.org")
    server = serve_witness(Witness(wkey, [key], tmp_path / "witness"), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    wurl = f"http://127.0.0.1:{server.server_address[1]}"
    members = [
        Member(directory, db, f"member{i}", "--witness", wurl, str(wkey.verifier_key))
        for i in range(3)
    ]
    admin = load_key_file(directory / "admin.key", PASS.encode())
    acked: dict[int, Receipt] = {}
    stop = threading.Event()
    writers = writer_threads(members, key, admin, stop, acked)
    try:
        for member in members:
            member.start()
        for w in writers:
            w.start()
        _, token = leader(db, members)
        for _ in range(KILLS):
            time.sleep(1.0)
            victim, token = leader(db, members, after=token - 1)
            victim.kill()
            _, token = leader(db, members, after=token)
            victim.start()
        time.sleep(1.0)
        stop.set()
        for w in writers:
            w.join(timeout=60)
        size = max(r.index for r in acked.values()) + 1
        policy = WitnessPolicy((wkey.verifier_key,), 1)

        def cosigned(member: Member) -> tuple[int, bytes] | None:
            note = httpx.get(member.url + "/log/checkpoint").content
            checkpoint, _, _ = verify_cosigned(note, key, ORIGIN, policy)
            return (checkpoint.size, note) if checkpoint.size >= size else None

        deadline = time.monotonic() + 30
        while not all(served := [cosigned(m) for m in members]):
            assert time.monotonic() < deadline, "a member serves no cosigned tree"
            time.sleep(0.1)
        sizes = {s for s, _ in served}  # type: ignore[misc]
        assert len(sizes) == 1, sizes  # every member, the final tree
        final, note = served[0]  # type: ignore[misc]
        assert _witness_size(wurl, note) == final
        # An observer pinning the witness, against a member that does not
        # sequence now, and the audit of the whole log.
        follower = next(m for m in members if m is not leader(db, members)[0])
        out = run_verify(
            "checkpoint", "--log", follower.url, "--key", str(key),
            "--witness", str(wkey.verifier_key), "--min-witnesses", "1",
            "--state", str(tmp_path / "observer"),
        )  # fmt: skip
        assert out.returncode == 0, out.stdout + out.stderr
        out = run_verify("audit", "--log", follower.url, "--key", str(key))
        assert out.returncode == 0, out.stdout + out.stderr
        status = httpx.get(follower.url + "/v1/log").json()["witnesses"]
        assert [(s["witness"], s["cosigned_size"]) for s in status] == [
            (wkey.name, final)
        ]
        for member in members:
            text = member.log()
            assert "has cosigned size" not in text, member.name
            assert "Traceback" not in text, member.name
    finally:
        stop.set()
        for member in members:
            member.stop()
        server.shutdown()
        server.server_close()
