"""Nothing is written to a log the pinned key does not sign for.

The client checks the log's signed checkpoint (GET /log/checkpoint) under the
pinned key and origin before its first write; ``saksi submit`` and ``saksi keys
grant|revoke`` check it before any other request, over HTTP and with ``--db``.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from cli.main import main
from keys import Ed25519Signer
from keys.keyfile import KdfProfile, write_key_file
from saksi_client import SaksiClient, WrongLog
from tests.api.flaky_http import FlakyServer
from tests.api.test_client import grant_body
from tests.conftest import ORIGIN
from tests.recordlog import ADMINS
from verifier.errors import VerificationError
from verifier.record import format_timestamp

PASS = "identity-test-passphrase"
# Another log's key under this log's name, and a key under another name.
IMPOSTOR = Ed25519Signer(ORIGIN, bytes([77]) * 32)
WRONG_KEYS = {
    "same-origin-other-key": str(IMPOSTOR.verifier_key),
    "other-origin": str(ADMINS[1].verifier_key),
}


def _envelope(client: SaksiClient, api, seed: int) -> dict:
    key = Ed25519Signer(f"k{seed}", bytes([seed]) * 32)
    payload = client.record(
        "keys.grant/v1", f"keys/{key.keyid}", grant_body(key), now=api.log.now()
    )
    return client.sign(payload, ADMINS[:1])


@pytest.mark.parametrize("wrong", sorted(WRONG_KEYS))
def test_submission_to_a_log_another_key_signs_sends_nothing(live, wrong):
    api, url = live
    before = api.size
    with FlakyServer(upstream=url) as server:
        client = SaksiClient(server.url, WRONG_KEYS[wrong], sleep=lambda _: None)
        envelope = _envelope(client, api, 70)
        with pytest.raises(WrongLog) as err:
            client.submit(envelope)
        with pytest.raises(WrongLog):
            client.submit_many([envelope])
        assert [(m, p) for m, p, _ in server.requests] == [
            ("GET", "/log/checkpoint"),
            ("GET", "/log/checkpoint"),
        ]
    assert isinstance(err.value, VerificationError)
    assert str(err.value).startswith(
        f"the log at {server.url} is not signed by the pinned key {WRONG_KEYS[wrong]} ("
    )
    assert api.size == before


def test_the_log_identity_is_checked_once_per_client(live, signer):
    api, url = live
    with FlakyServer(upstream=url) as server:
        client = SaksiClient(server.url, str(signer.verifier_key))
        assert client.check_identity().origin == ORIGIN
        client.submit(_envelope(client, api, 71))
        client.submit_many([_envelope(client, api, 72)])
        assert server.attempts("GET", "/log/checkpoint") == 1


# -- the CLI ------------------------------------------------------------------


@pytest.fixture
def admin_key(tmp_path, monkeypatch):
    monkeypatch.setenv("SAKSI_KEY_PASSPHRASE", PASS)
    path = tmp_path / "admin.key"
    write_key_file(path, ADMINS[0], PASS.encode(), KdfProfile.INTERACTIVE)
    return path


def _grant_record(tmp_path, seed: int, when) -> str:
    key = Ed25519Signer(f"k{seed}", bytes([seed]) * 32)
    record = tmp_path / f"grant-{seed}.json"
    spec = {
        "schema": "keys.grant/v1",
        "subject": f"keys/{key.keyid}",
        "body": grant_body(key),
        "issued_at": format_timestamp(when),
    }
    record.write_text(json.dumps(spec))
    return str(record)


def _wrong_key_refused(err: str, where: str, hint: str) -> None:
    assert f"saksi: error: the log {where} is not signed by the pinned key" in err
    assert hint in err
    assert "Traceback" not in err
    if where.startswith("at "):
        assert "the verifier_key that GET /v1/log on this log shows" in err


@pytest.mark.parametrize("wrong", sorted(WRONG_KEYS))
def test_saksi_submit_with_a_wrong_log_key_logs_nothing(
    live, signer, admin_key, tmp_path, capsys, wrong
):
    api, url = live
    before = api.size
    record = _grant_record(tmp_path, 80, api.log.now())
    argv = ["submit", "--url", url, "--key", str(admin_key), record]
    assert main([*argv, "--log-key", WRONG_KEYS[wrong]]) == 1
    _wrong_key_refused(
        capsys.readouterr().err, f"at {url}", "nothing was sent. Compare the pinned key"
    )
    assert api.size == before
    grant = ["keys", "grant", "--url", url, "--admin-key", str(admin_key)]
    grant += ["--public-key", "ab" * 32, "--role", "tps", "--scope", "3171011001001"]
    assert main([*grant, "--log-key", WRONG_KEYS[wrong]]) == 1
    _wrong_key_refused(
        capsys.readouterr().err, f"at {url}", "nothing was sent. Compare the pinned key"
    )
    assert api.size == before
    # The same command with the right key logs it.
    assert main([*argv, "--log-key", str(signer.verifier_key)]) == 0
    assert json.loads(capsys.readouterr().out)["index"] == before
    assert api.size == before + 1


def test_saksi_submit_db_with_a_wrong_log_key_logs_nothing(
    tmp_path, db_url, monkeypatch, capsys
):
    monkeypatch.setenv("SAKSI_KEY_PASSPHRASE", PASS)
    directory = tmp_path / "log"
    init = ["init", "--db", db_url, "--origin", "db.saksi.example/log"]
    init += ["--dir", str(directory), "--kdf", "interactive"]
    assert main(init) == 0
    capsys.readouterr()
    local = ["--db", db_url, "--dir", str(directory)]

    def size() -> int:
        assert main(["keys", "list", *local, "--json"]) == 0
        return int(json.loads(capsys.readouterr().out)["tree_size"])

    before = size()

    record = _grant_record(tmp_path, 81, dt.datetime.now(dt.UTC))
    submit = ["submit", *local, "--key", str(directory / "admin.key"), record]
    wrong = Ed25519Signer("db.saksi.example/log", bytes([78]) * 32).verifier_key
    assert main([*submit, "--log-key", str(wrong)]) == 1
    _wrong_key_refused(
        capsys.readouterr().err,
        f"in {directory}",
        f"nothing was written. Compare --log-key with {directory / 'log.vkey'}",
    )
    assert size() == before
    assert main(submit) == 0  # the pinned key defaults to DIR/log.vkey
    assert json.loads(capsys.readouterr().out)["index"] == before
    assert size() == before + 1
