"""saksi serve, keys and submit as an operator runs them (subprocesses, 127.0.0.1)."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from tests.helpers import cli_env, run_saksi, serving

PASS = "cli-serve-passphrase"


def env():
    return cli_env(PASS)


def saksi(*args: str):
    return run_saksi(*args, passphrase=PASS, timeout=120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path, db_url):
    directory = tmp_path / "log"
    out = saksi(
        "init",
        "--db",
        db_url,
        "--origin",
        "serve.saksi.example/log",
        "--dir",
        str(directory),
        "--kdf",
        "interactive",
        "--admins",
        "3",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["threshold"] == 2
    with serving(directory, db_url, env()) as url:
        yield directory, url


def test_keys_grant_submit_revoke_list_through_the_cli(served, tmp_path, db_url):
    directory, url = served
    remote = ["--log", url, "--log-key", str(directory / "log.vkey")]
    officer = tmp_path / "officer.key"
    out = saksi(
        "keys",
        "new",
        "--out",
        str(officer),
        "--name",
        "kpps",
        "--kdf",
        "interactive",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    keyid = json.loads(out.stdout)["keyid"]
    shown = json.loads(saksi("keys", "show", "--key", str(officer), "--json").stdout)
    assert shown["keyid"] == keyid
    assert shown["verifier_key"].startswith("saksi-key+") or shown[
        "verifier_key"
    ].startswith("kpps+")
    # PEM out and back in gives the same key id; standard tools read the PEM.
    pem = tmp_path / "officer.pem"
    assert (
        saksi(
            "keys", "export", "--key", str(officer), "--public-pem", str(pem)
        ).returncode
        == 0
    )
    assert (
        json.loads(saksi("keys", "show", "--pem", str(pem), "--json").stdout)["keyid"]
        == keyid
    )
    admin1 = str(directory / "admin.key")
    grant = saksi(
        "keys",
        "grant",
        *remote,
        "--key",
        str(officer),
        "--admin-key",
        admin1,
        "--role",
        "tps",
        "--scope",
        "3171011001001",
        "--holder",
        "KPPS 001",
        "--json",
    )
    assert grant.returncode == 0, grant.stderr
    granted = json.loads(grant.stdout)
    assert granted["verified"] is True
    # An admin key needs 2 of the 3 admins.
    new_admin = tmp_path / "admin-new.key"
    saksi("keys", "new", "--out", str(new_admin), "--kdf", "interactive")
    one = saksi(
        "keys",
        "grant",
        *remote,
        "--key",
        str(new_admin),
        "--admin-key",
        admin1,
        "--role",
        "admin",
        "--holder",
        "new admin",
    )
    assert one.returncode == 1
    assert "threshold-not-met" in one.stderr
    two = saksi(
        "keys",
        "grant",
        *remote,
        "--key",
        str(new_admin),
        "--admin-key",
        admin1,
        "--admin-key",
        str(directory / "admin-2.key"),
        "--role",
        "admin",
        "--holder",
        "new admin",
        "--json",
    )
    assert two.returncode == 0, two.stderr
    # The officer revokes its own key with saksi submit (a record file).
    head = httpx.get(f"{url}/v1/subjects/keys/{keyid}").json()["revisions"][-1][
        "record"
    ]
    record = tmp_path / "revoke.json"
    record.write_text(
        json.dumps(
            {
                "schema": "keys.revoke/v1",
                "subject": f"keys/{keyid}",
                "body": {"keyid": keyid, "reason_code": "compromised"},
                "reason": "device lost",
            }
        )
    )
    assert head["revision"] == 0
    sub = saksi(
        "submit", *remote, "--key", str(officer), "--record", str(record), "--json"
    )
    assert sub.returncode == 0, sub.stderr
    assert json.loads(sub.stdout)["index"] == granted["index"] + 2
    # Revoked: its next submission is refused with a clear problem.
    again = saksi("submit", *remote, "--key", str(officer), "--record", str(record))
    assert again.returncode == 1
    assert "key-revoked" in again.stderr
    listed = json.loads(saksi("keys", "list", *remote, "--json").stdout)
    mine = next(k for k in listed["keys"] if k["keyid"] == keyid)
    assert mine["revoked_at"] == json.loads(sub.stdout)["index"]
    before = json.loads(
        saksi(
            "keys", "list", *remote, "--size", str(granted["index"] + 1), "--json"
        ).stdout
    )
    assert next(k for k in before["keys"] if k["keyid"] == keyid)["revoked_at"] is None


def test_client_commands_fail_clearly(tmp_path):
    key = tmp_path / "k.key"
    saksi("keys", "new", "--out", str(key), "--kdf", "interactive")
    again = saksi("keys", "new", "--out", str(key), "--kdf", "interactive")
    assert again.returncode == 2  # usage: never overwrite a key file
    assert "hint:" in again.stderr
    down = saksi(
        "keys",
        "list",
        "--log",
        "http://127.0.0.1:9",
        "--log-key",
        "x+00000000+AQ" + "A" * 42 + "=",
    )
    assert down.returncode in (2, 3)
    assert "Traceback" not in down.stderr


def test_the_operator_interface_exactly_as_documented(tmp_path, db_url):
    # The fixed commands and flags, in the order an operator uses them:
    # init; keys new; keys grant --db (log not served); serve --listen; submit
    # --url RECORD.json; keys revoke --db while the log is served.
    directory = tmp_path / "log"
    init = saksi(
        "init",
        "--db",
        db_url,
        "--origin",
        "ops.saksi.example/log",
        "--dir",
        str(directory),
        "--kdf",
        "interactive",
    )
    assert init.returncode == 0, init.stderr
    for name in ("log.key", "admin.key", "log.vkey"):
        assert (directory / name).is_file(), name
    assert len((directory / "log.vkey").read_text().splitlines()) == 1

    officer = tmp_path / "kpps.key"
    new = saksi("keys", "new", "--out", str(officer), "--kdf", "interactive")
    assert new.returncode == 0, new.stderr
    shown = json.loads(saksi("keys", "show", "--key", str(officer), "--json").stdout)
    assert shown["keyid"] in new.stdout
    assert shown["public_key_hex"] in new.stdout

    grant = saksi(
        "keys",
        "grant",
        "--db",
        db_url,
        "--admin-key",
        str(directory / "admin.key"),
        "--public-key",
        shown["public_key_hex"],
        "--role",
        "tps",
        "--scope",
        "3171011001001",
    )
    assert grant.returncode == 0, grant.stderr
    assert "inclusion proof verified" in grant.stdout
    # A national scope is spelled 'all'.
    auditor = tmp_path / "auditor.key"
    saksi("keys", "new", "--out", str(auditor), "--kdf", "interactive")
    aud = json.loads(saksi("keys", "show", "--key", str(auditor), "--json").stdout)
    assert (
        saksi(
            "keys",
            "grant",
            "--db",
            db_url,
            "--admin-key",
            str(directory / "admin.key"),
            "--public-key",
            aud["public_key_hex"],
            "--role",
            "auditor",
            "--scope",
            "all",
        ).returncode
        == 0
    )

    with serving(directory, db_url, env()) as url:
        record = tmp_path / "record.json"
        record.write_text(
            json.dumps(
                {
                    "schema": "keys.revoke/v1",
                    "subject": f"keys/{aud['keyid']}",
                    "revision": 1,
                    "prev": httpx.get(f"{url}/v1/subjects/keys/{aud['keyid']}").json()[
                        "revisions"
                    ][-1]["record"]["payload_hash"],
                    "body": {"keyid": aud["keyid"], "reason_code": "retired"},
                    "reason": "the auditor retires its own key",
                }
            )
        )
        sub = saksi("submit", "--url", url, "--key", str(auditor), str(record))
        assert sub.returncode == 0, sub.stderr
        receipt = json.loads(sub.stdout)  # JSON without asking
        assert receipt["verified"] is True
        assert receipt["index"] == 3  # genesis, two grants, this
        assert "pin it with --log-key" in sub.stderr  # the key was not pinned

        # Revoking through --db while the log is served goes through the server.
        revoke = saksi(
            "keys",
            "revoke",
            "--db",
            db_url,
            "--admin-key",
            str(directory / "admin.key"),
            "--key-id",
            shown["keyid"],
        )
        assert revoke.returncode == 0, revoke.stderr
        assert "being served" in revoke.stderr
        keys = httpx.get(f"{url}/v1/keys").json()["keys"]
        mine = next(k for k in keys if k["keyid"] == shown["keyid"])
        assert mine["revoked_at"] == 4
    assert not (directory / "serve.url").exists()
    # The log is not served any more: --db writes directly again, and the
    # refusal of a revoked key's grant change is a clear, non-zero answer.
    again = saksi(
        "keys",
        "revoke",
        "--db",
        db_url,
        "--admin-key",
        str(directory / "admin.key"),
        "--key-id",
        shown["keyid"],
    )
    assert again.returncode == 1
    assert "Traceback" not in again.stderr


def test_serve_refuses_a_bad_listen_address(tmp_path):
    out = saksi("serve", "--dir", str(tmp_path), "--listen", "localhost")
    assert out.returncode == 2
    assert "HOST:PORT" in out.stderr
