"""``saksi-verify audit`` against a live log on 127.0.0.1, as an observer runs it.

A clean log verifies (exit 0). An entry an administrator rewrote behind the
service's back fails the tree check and the record's own checks (exit 1); a key
that is not the log's fails at the checkpoint (exit 1); a bad key file is a usage
error (2) and an unreachable log an I/O error (3). No traceback, ever.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest
import sqlalchemy as sa

from api.settings import ApiSettings
from keys import Ed25519Signer
from tests.api.conftest import Api, LiveServer
from tests.faults.test_tamper import drop_triggers
from tests.helpers import ROOT
from tests.recordlog import RecordLog, form, setup_election
from verifier.commands import main

STATIONS = ["3171011001001", "3171011001002", "3171011001003", "3171011001004"]


def verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verifier.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


@pytest.fixture
def served(db_url, tmp_path, signer):
    api = Api(RecordLog(db_url, signer), ApiSettings())
    keys = setup_election(api.log, STATIONS)
    for station in STATIONS[:2]:
        api.log.submit(
            api.log.payload(
                "results.tally/v1",
                f"results/ppwp/{station}",
                form({"100025": 10, "100026": 20}),
            ),
            [keys["reader"]],
        )
    api.keys = keys
    key = tmp_path / "log.vkey"
    key.write_text(str(signer.verifier_key) + "\n")
    server = LiveServer(api.client.app)
    yield api, server.url, key
    server.stop()
    api.log.close()


def test_a_clean_log_verifies(served):
    api, url, key = served
    out = verify("audit", "--log", url, "--key", str(key), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["passed"]
    assert report["tree_size"] == api.size
    assert report["checks"][0] == report["checks"][0] | {
        "check": "tree",
        "status": "pass",
    }
    assert report["findings"] == []
    # The forensics come with the audit: both forms counted in province 31.
    assert report["forensics"]["provinces"]["31"]["reported"]["ppwp"] == 2
    assert report["forensics"]["flagged"] == []
    human = verify("audit", "--log", url, "--key", str(key))
    assert human.returncode == 0
    assert "VERIFIED" in human.stdout


def test_a_rewritten_entry_fails_the_tree_and_names_the_entry(served):
    api, url, key = served
    index = api.size - 1
    storage = api.log.storage
    with storage.engine.begin() as conn:
        drop_triggers(conn, storage.dialect)
        data = conn.execute(
            sa.text("SELECT data FROM entries WHERE idx = :i"), {"i": index}
        ).scalar_one()
        forged = bytes(data).replace(b'"logged_at":"', b'"logged_at":"1', 1)
        assert forged != bytes(data)
        conn.execute(
            sa.text("UPDATE entries SET data = :d WHERE idx = :i"),
            {"d": forged, "i": index},
        )
    out = verify("audit", "--log", url, "--key", str(key), "--json")
    assert out.returncode == 1, out.stderr
    report = json.loads(out.stdout)
    assert not report["passed"]
    tree = report["checks"][0]
    assert (tree["check"], tree["status"]) == ("tree", "fail")
    assert {f["index"] for f in report["findings"]} == {index}
    assert "Traceback" not in out.stderr


def test_the_wrong_key_bad_key_files_and_unreachable_logs(served, tmp_path):
    _, url, key = served
    other = tmp_path / "other.vkey"
    origin = key.read_text().split("+", 1)[0]
    other.write_text(str(Ed25519Signer(origin, bytes([9]) * 32).verifier_key))
    wrong = verify("audit", "--log", url, "--key", str(other), "--json")
    assert wrong.returncode == 1
    assert "does not verify" in json.loads(wrong.stdout)["error"]
    junk = tmp_path / "junk.vkey"
    junk.write_text("not a key")
    assert verify("audit", "--log", url, "--key", str(junk)).returncode == 2
    missing = verify("audit", "--log", url, "--key", str(tmp_path / "none"))
    assert missing.returncode == 3  # a named file that is not there: I/O
    down = verify("audit", "--log", "http://127.0.0.1:9", "--key", str(key))
    assert down.returncode == 3
    assert "hint" in down.stderr
    for out in (wrong, missing, down):
        assert "Traceback" not in out.stderr


def _audit(capsys, *args: str) -> tuple[int, dict]:
    code = main(["audit", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_a_daily_audit_resumes_where_the_last_stopped(served, tmp_path, capsys):
    api, url, key = served
    state = ["--state", str(tmp_path / "observer")]
    code, first = _audit(capsys, "--log", url, "--key", str(key), *state)
    assert code == 0, first
    assert first["resumed_at"] == 0
    # The log grows: a form, and one that does not add up (a flag).
    broken = form({"100025": 3, "100026": 4}) | {"valid": 8, "total": 8}
    for station, body in zip(STATIONS[2:], [form({"100025": 1}), broken], strict=True):
        api.log.submit(
            api.log.payload("results.tally/v1", f"results/ppwp/{station}", body),
            [api.keys["reader"]],
        )
    code, second = _audit(capsys, "--log", url, "--key", str(key), *state)
    assert code == 0, second
    assert second["resumed_at"] == first["tree_size"]
    assert second["tree_size"] == api.size
    code, fresh = _audit(capsys, "--log", url, "--key", str(key), *state, "--fresh")
    assert fresh["resumed_at"] == 0
    for name in ("checks", "findings", "passed", "size"):
        assert second[name] == fresh[name], name
    assert fresh["checks"][10]["findings"] == 1  # the flag, found once


def test_a_bundle_audits_offline_like_the_log(served, tmp_path, capsys):
    _, url, key = served
    bundle = tmp_path / "log.bundle"
    code = main(["bundle", "--log", url, "--key", str(key), "--out", str(bundle)])
    capsys.readouterr()
    assert code == 0
    online = _audit(capsys, "--log", url, "--key", str(key), "--fresh")[1]
    code, offline = _audit(
        capsys, "--bundle", str(bundle), "--key", str(key), "--fresh"
    )
    assert code == 0, offline
    for name in ("checks", "findings", "passed", "size", "root"):
        assert offline[name] == online[name], name
    # A bundle whose entries were changed does not match its checkpoint.
    data = bytearray(bundle.read_bytes())
    at = data.rindex(b'"logged_at":"') + len(b'"logged_at":"')
    data[at] = ord("1") if data[at] != ord("1") else ord("2")
    bundle.write_bytes(bytes(data))
    code, bad = _audit(capsys, "--bundle", str(bundle), "--key", str(key), "--fresh")
    assert code == 1
    assert bad["checks"][0]["status"] == "fail"


def test_a_log_smaller_than_what_was_audited_is_a_rollback(served, tmp_path, capsys):
    _, url, key = served
    state = ["--state", str(tmp_path / "observer")]
    assert _audit(capsys, "--log", url, "--key", str(key), *state)[0] == 0

    def larger(progress):  # as if a larger tree had been audited before
        progress["size"] += 5

    _edit_progress(tmp_path / "observer", larger)
    code, report = _audit(capsys, "--log", url, "--key", str(key), *state)
    assert code == 1
    assert "rolled back" in report["error"]


def test_steps_no_checkpoint_confirmed_are_named_when_the_root_differs(
    served, tmp_path, capsys
):
    """An interrupted audit leaves steps no root has confirmed. If they came
    from another view of the log, the resumed audit's root cannot match: it
    fails the tree check, says which entries are unconfirmed and what to do;
    --fresh then audits the log as it is."""
    api, url, key = served
    state = ["--state", str(tmp_path / "observer")]
    assert _audit(capsys, "--log", url, "--key", str(key), *state)[0] == 0

    def unconfirmed(progress):  # as if saved part-way, from a different tree
        assert progress["confirmed"] == progress["size"]
        progress["confirmed"] = 2
        progress["frontier"][0][1] = "00" * 32

    _edit_progress(tmp_path / "observer", unconfirmed)
    saved = api.size
    api.log.submit(
        api.log.payload(
            "results.tally/v1", f"results/ppwp/{STATIONS[2]}", form({"100025": 1})
        ),
        [api.keys["reader"]],
    )
    code, report = _audit(capsys, "--log", url, "--key", str(key), *state)
    assert code == 1
    assert report["checks"][0]["status"] == "fail"
    assert f"entries 2 to {saved:,}" in report["hint"]
    assert "--fresh" in report["hint"]
    main(["audit", "--log", url, "--key", str(key), *state])
    assert "hint: the audit state holds entries 2" in capsys.readouterr().out
    code, fresh = _audit(capsys, "--log", url, "--key", str(key), *state, "--fresh")
    assert code == 0, fresh
    assert "hint" not in fresh


def test_a_root_that_differs_names_no_steps_when_none_were_saved(
    served, tmp_path, capsys
):
    """From a confirmed state, a log whose entries no longer hash to its
    checkpoint fails the tree check; nothing unconfirmed was kept, so there is
    no hint about steps, and the next audit starts where the confirmed one did."""
    _, url, key = served
    state = ["--state", str(tmp_path / "observer")]
    code, first = _audit(capsys, "--log", url, "--key", str(key), *state)
    assert code == 0

    def other_tree(progress):  # the confirmed entries hash differently now
        progress["frontier"][0][1] = "00" * 32

    _edit_progress(tmp_path / "observer", other_tree)
    code, report = _audit(capsys, "--log", url, "--key", str(key), *state)
    assert code == 1
    assert report["checks"][0]["status"] == "fail"
    assert "hint" not in report
    code, again = _audit(capsys, "--log", url, "--key", str(key), *state)
    assert code == 1
    assert again["resumed_at"] == first["tree_size"]


def _edit_progress(state_dir, change):
    """Change the progress an audit saved in ``state_dir``, behind its back."""
    db = sqlite3.connect(next(state_dir.glob("*/audit.db")))
    (raw,) = db.execute("SELECT v FROM meta WHERE k = 'progress'").fetchone()
    progress = json.loads(raw)
    change(progress)
    db.execute("UPDATE meta SET v = ? WHERE k = 'progress'", (json.dumps(progress),))
    db.commit()
    db.close()
