"""``saksi serve --read-only`` beside the writer's ``saksi serve``, on one database.

Two processes as an operator runs them: the writer appends, the read-only one
(no passphrase, no key file but ``log.vkey``) follows its signed head and
serves the same checkpoint, tiles, entries and proofs, which an observer
checks with the verifier's own code; writes sent to it are refused.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import httpx
import pytest

from keys import load_key_file
from saksi_client import SaksiClient
from tests.helpers import cli_env, run_saksi, serving
from verifier.checkpoint import verify_checkpoint
from verifier.dsse import envelope_to_json, sign_envelope
from verifier.note import VerifierKey
from verifier.proof_check import verify_inclusion
from verifier.record import RECORD_PAYLOAD_TYPE, format_timestamp, record_payload
from verifier.rfc6962 import hash_leaf
from verifier.tile_client import TileHashes, TileLog, http_fetch

PASS = "read-only-passphrase"
ORIGIN = "replica.saksi.example/log"


@pytest.fixture
def directory(tmp_path, db_url):
    where = tmp_path / "log"
    made = run_saksi(
        "init",
        "--db",
        db_url,
        "--origin",
        ORIGIN,
        "--dir",
        str(where),
        "--kdf",
        "interactive",
        "--admins",
        "1",
        passphrase=PASS,
    )
    assert made.returncode == 0, made.stderr
    return where


def _grant(client: SaksiClient, admin, n: int) -> int:
    """Grant a fresh key a station role through the writer; its entry index."""
    public = bytes([n]) * 32
    import base64
    import hashlib

    keyid = hashlib.sha256(public).hexdigest()
    payload = record_payload(
        schema="keys.grant/v1",
        subject=f"keys/{keyid}",
        revision=0,
        prev=None,
        issued_at=format_timestamp(dt.datetime.now(dt.UTC)),
        body={
            "keyid": keyid,
            "public_key": base64.b64encode(public).decode(),
            "role": "tps",
            "scope": "3171011001001",
            "holder": f"officer {n}",
        },
    )
    envelope = sign_envelope(RECORD_PAYLOAD_TYPE, payload, [admin])
    return client.submit(envelope_to_json(envelope)).index


def _caught_up(reader: str, writer: str) -> bytes:
    """The reader's checkpoint once it is the writer's (it looks every 0.2 s)."""
    want = httpx.get(f"{writer}/log/checkpoint").content
    deadline = time.monotonic() + 30
    while True:
        got = httpx.get(f"{reader}/log/checkpoint").content
        if got == want or time.monotonic() > deadline:
            assert got == want
            return got
        time.sleep(0.1)


def test_a_read_only_server_serves_the_log_while_the_writer_appends(directory, db_url):
    key = VerifierKey.parse((directory / "log.vkey").read_text().strip())
    admin = load_key_file(directory / "admin.key", PASS.encode())
    # The reader has no passphrase: it never opens log.key.
    with (
        serving(directory, db_url, cli_env(PASS)) as writer,
        serving(
            directory, db_url, cli_env(None), "--read-only", "--refresh", "0.2"
        ) as reader,
    ):
        client = SaksiClient(writer, key)
        written = []
        for round_ in range(3):
            written += [_grant(client, admin, 10 * round_ + n) for n in range(4)]
            note = _caught_up(reader, writer)
            checkpoint, _ = verify_checkpoint(note, key, ORIGIN)
            size, root = checkpoint.size, checkpoint.root_hash
            assert size == written[-1] + 1
            # An observer proves every entry from the reader's own tiles.
            tiles = TileHashes(TileLog(http_fetch(f"{reader}/log")), size)
            for index in written:
                entry = httpx.get(f"{reader}/v1/entries/{index}").json()
                assert entry == httpx.get(f"{writer}/v1/entries/{index}").json()
                data = TileLog(http_fetch(f"{reader}/log")).entry(index, size)
                path = tiles.inclusion_proof(index, size)
                verify_inclusion(index, size, hash_leaf(data), path, root)
                served = httpx.get(
                    f"{reader}/v1/proofs/inclusion", params={"index": index}
                ).json()
                assert served["inclusion_proof"] == [h.hex() for h in path]
        refused = httpx.post(
            f"{reader}/v1/entries",
            content=json.dumps({"payloadType": "x"}),
            headers={"content-type": "application/json"},
        )
        assert refused.status_code == 405
        assert refused.json()["type"] == "/problems/read-only"
        keys = httpx.get(f"{reader}/v1/keys").json()
        assert keys == httpx.get(f"{writer}/v1/keys").json()
    # The reader never wrote the writer's address file, nor removed it.
    assert not (directory / "serve.url").exists()
    log = (directory.parent / "serve.log").read_text()
    assert "read-only on http://127.0.0.1:" in log


def test_a_read_only_server_refuses_witnesses_and_needs_the_public_key(
    directory, db_url
):
    asked = run_saksi(
        "serve",
        "--dir",
        str(directory),
        "--db",
        db_url,
        "--read-only",
        "--witness",
        "http://127.0.0.1:9/w",
        "w+01234567+AQ==",
        passphrase=None,
    )
    assert asked.returncode == 2
    assert "read-only server asks no witnesses" in asked.stderr
    (directory / "log.vkey").unlink()
    keyless = run_saksi(
        "serve",
        "--dir",
        str(directory),
        "--db",
        db_url,
        "--read-only",
        passphrase=None,
    )
    assert keyless.returncode == 3
    assert "log.vkey" in keyless.stderr
    assert "Traceback" not in keyless.stderr
