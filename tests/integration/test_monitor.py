"""``saksi monitor`` against bad logs, restarts, bad configurations, and its canary.

* A log that serves garbage (entry bundles or hash tiles that are not the signed
  tree's), a checkpoint under another key, an unreachable log: each is an alert
  or a clear error, nothing is trusted or committed from it, and the monitor
  goes on checking once the log is honest again.
* A restarted monitor goes on from its state: nothing checked twice, no alert
  raised twice.
* The command: a malformed configuration exits 2 naming what is wrong;
  ``--once --json`` prints one object.
* The canary writes through a real ``saksi serve`` with a witness and measures
  the time to a witnessed checkpoint.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from keys import Ed25519Signer, KdfProfile, load_key_file, write_key_file
from monitor.config import parse_config
from monitor.service import Monitor
from saksi_client import SaksiClient
from tests.conftest import ORIGIN
from tests.helpers import ROOT, cli_env, grant_over_http, init_log, serving
from tests.recordlog import RecordLog
from tests.tilelog import NoteKey, TileServer, view
from verifier.note import VerifierKey
from verifier.tile_format import entries_path, tile_path
from verifier.witness_protocol import WitnessKey
from verifier.witness_server import Witness, serve_witness

SEED = hashlib.sha256(b"monitor-tests").digest()
MERGE_DELAY = 60.0  # RELIABILITY.md R6/R7: the proposed maximum merge delay, s
PASS = "monitor-test-passphrase"


@pytest.fixture(scope="module")
def entries(tmp_path_factory) -> list[bytes]:
    """A real Saksi log's entries: genesis, grants, a revocation."""
    path = tmp_path_factory.mktemp("entries") / "log.db"
    log = RecordLog(f"sqlite:///{path}", Ed25519Signer(ORIGIN, SEED))
    try:
        for n in range(40):
            key = Ed25519Signer(f"k{n}", hashlib.sha256(b"k%d" % n).digest())
            log.grant(key, "tps", "31")
        return [log.ledger.reader.entry_bytes(i) for i in range(log.ledger.size)]
    finally:
        log.close()


@pytest.fixture(scope="module")
def long_entries(tmp_path_factory) -> list[bytes]:
    """A log long enough to be confirmed in parts (over 2,048 entries)."""
    path = tmp_path_factory.mktemp("long") / "log.db"
    log = RecordLog(f"sqlite:///{path}", Ed25519Signer(ORIGIN, SEED))
    try:
        officer = Ed25519Signer("officer", hashlib.sha256(b"officer").digest())
        log.grant(officer, "tps", "31")
        for n in range(2100):
            key = Ed25519Signer(f"l{n}", hashlib.sha256(b"l%d" % n).digest())
            log.grant(key, "tps", "31")
        return [log.ledger.reader.entry_bytes(i) for i in range(log.ledger.size)]
    finally:
        log.close()


@pytest.fixture
def served():
    server = TileServer()
    yield server
    server.stop()


def monitor_for(tmp_path: Path, tiles: str, **extra) -> tuple[Monitor, io.StringIO]:
    vkey = tmp_path / "log.vkey"
    vkey.write_text(str(NoteKey(ORIGIN, SEED).verifier_key) + "\n")
    raw = {
        "log": {"url": tiles, "tiles": tiles, "key": "log.vkey"},
        "monitor": {"state": "state", "listen": "127.0.0.1:0"},
        "thresholds": {"hold_seconds": 60.0},
        **extra,
    }
    raw["monitor"].setdefault("listen", "127.0.0.1:0")
    stream = io.StringIO()
    return Monitor(parse_config(raw, tmp_path), alert_stream=stream), stream


def alerts(stream: io.StringIO, status: str = "firing") -> list[str]:
    return [
        line["alert"]
        for line in map(json.loads, stream.getvalue().splitlines())
        if line["status"] == status
    ]


KEY = NoteKey(ORIGIN, SEED)


def test_garbage_entries_and_tiles_are_alerts_and_change_nothing(
    tmp_path, served, entries
):
    monitor, stream = monitor_for(tmp_path, served.url)
    try:
        served.serve(view(entries[:20], KEY, ORIGIN))
        assert monitor.run_once().error is None
        assert monitor.follower.checked == 20
        # The grown tree, with one new entry's bytes changed in its bundle.
        grown = view(entries, KEY, ORIGIN)
        bad = dict(grown)
        bundle = entries_path(0, len(entries))
        bad[bundle] = bad[bundle].replace(entries[30], entries[30][:-1] + b"X")
        served.serve(bad)
        result = monitor.run_once()
        assert result.error == "garbage"
        assert monitor.follower.checked == 20
        assert "log-serves-garbage" in alerts(stream)
        # Hash tiles that are not the tree's: no consistency proof from them.
        bad = dict(grown)
        tile = tile_path(0, 0, len(entries))
        bad[tile] = bytes(32) * len(entries)
        served.serve(bad)
        assert monitor.run_once().error == "garbage"
        assert "fork" not in alerts(stream)
        assert monitor.follower.checked == 20
        # Honest again: everything is checked, nothing else was raised.
        served.serve(grown)
        assert monitor.run_once().error is None
        assert monitor.follower.checked == len(entries)
        assert set(alerts(stream)) == {"log-serves-garbage"}
        assert monitor.metrics.errors.labels("garbage")._value.get() == 2
    finally:
        monitor.close()


def test_a_long_read_is_confirmed_in_parts_and_a_bad_part_is_not(
    tmp_path, served, long_entries
):
    entries = long_entries
    monitor, stream = monitor_for(
        tmp_path, served.url, monitor={"state": "state", "workers": 0}
    )
    try:
        served.serve(view(entries[:10], KEY, ORIGIN))
        assert monitor.run_once().error is None
        # The grown tree, with entry 1,800's bytes changed in its bundle: the
        # entries before it are proven by consistency proofs and committed.
        grown = view(entries, KEY, ORIGIN)
        bad = dict(grown)
        bundle = entries_path(1800 // 256, 256)
        bad[bundle] = bad[bundle].replace(entries[1800], entries[1800][:-1] + b"X")
        served.serve(bad)
        assert monitor.run_once().error == "garbage"
        checked = monitor.follower.checked
        assert 1024 <= checked <= 1800
        assert checked % 256 == 0
        # An early entry changed: nothing of the read is confirmed.
        bad = dict(grown)
        bundle = entries_path(checked // 256, 256)
        early = entries[checked + 5]
        bad[bundle] = bad[bundle].replace(early, early[:-1] + b"X")
        served.serve(bad)
        assert monitor.run_once().error == "garbage"
        assert monitor.follower.checked == checked
        served.serve(grown)
        assert monitor.run_once().error is None
        assert monitor.follower.checked == len(entries)
        assert set(alerts(stream)) == {"log-serves-garbage"}
    finally:
        monitor.close()


def test_a_checkpoint_under_another_key_and_an_unreachable_log(
    tmp_path, served, entries
):
    monitor, stream = monitor_for(tmp_path, served.url)
    try:
        other = NoteKey(ORIGIN, hashlib.sha256(b"someone else").digest())
        served.serve(view(entries, other, ORIGIN))
        assert monitor.run_once().error == "invalid"
        assert "invalid-checkpoint" in alerts(stream)
        assert monitor.follower.checked == 0
        served.stop()
        assert monitor.run_once().error == "unreachable"
        assert "log-unreachable" in alerts(stream)
    finally:
        monitor.close()
    # A new server: the log is back (another port: a new configuration).
    back = TileServer()
    try:
        back.serve(view(entries, KEY, ORIGIN))
        again, stream = monitor_for(tmp_path, back.url)
        try:
            assert again.run_once().error is None
            assert again.follower.checked == len(entries)
        finally:
            again.close()
    finally:
        back.stop()


def test_a_restarted_monitor_goes_on_from_its_state(tmp_path, served, entries):
    served.serve(view(entries[:25], KEY, ORIGIN))
    first, _ = monitor_for(tmp_path, served.url)
    try:
        first.run_once()
        assert first.follower.checked == 25
    finally:
        first.close()
    served.serve(view(entries, KEY, ORIGIN))
    second, stream = monitor_for(tmp_path, served.url)
    try:
        assert second.follower.checked == 25  # from the state, before any read
        assert second.run_once().error is None
        assert second.follower.checked == len(entries)
        assert alerts(stream) == []
    finally:
        second.close()
    # A rollback to a smaller tree is a fork alert for the restarted monitor too.
    served.serve(view(entries[:10], KEY, ORIGIN))
    third, stream = monitor_for(tmp_path, served.url)
    try:
        assert third.run_once().error == "fork"
        assert alerts(stream) == ["fork"]
        evidence = list((tmp_path / "state").rglob("evidence/*.json"))
        assert evidence
        assert json.loads(evidence[0].read_text())["kind"] == "rollback"
    finally:
        third.close()
    # Restarted again: the fork is still active (its hold goes on), and not
    # raised a second time.
    fourth, stream = monitor_for(tmp_path, served.url)
    try:
        assert [a.name for a, _ in fourth.book.active()] == ["fork"]
        samples = fourth.metrics.render().decode()
        assert 'saksi_monitor_alert_active{alert="fork"} 1.0' in samples
    finally:
        fourth.close()


def saksi_monitor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api", "monitor", *args],
        capture_output=True,
        text=True,
        env=cli_env(None),
        cwd=ROOT,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[log]\nurl = 'http://x'\nkey = 'log.vkey'\n", "[monitor]"),
        ("not toml [", "not TOML"),
        (
            "[log]\nurl='http://x'\nkey='log.vkey'\n[monitor]\nstate='s'\nlisten=5\n",
            "listen",
        ),
        ("[log]\nurl='ftp://x'\nkey='log.vkey'\n[monitor]\nstate='s'\n", "url"),
        (
            "[log]\nurl='http://x'\nkey='log.vkey'\n[monitor]\nstate='s'\n"
            "[thresholds]\nmax_revisons = 3\n",
            "max_revisons",
        ),
    ],
)
def test_a_malformed_configuration_exits_2_naming_what_is_wrong(tmp_path, text, said):
    (tmp_path / "log.vkey").write_text(str(KEY.verifier_key) + "\n")
    path = tmp_path / "monitor.toml"
    path.write_text(text)
    out = saksi_monitor("--config", str(path), "--check-config")
    assert out.returncode == 2, out.stderr
    assert said in out.stderr
    assert "Traceback" not in out.stderr


def test_a_key_file_that_cannot_be_read_exits_3(tmp_path):
    path = tmp_path / "monitor.toml"
    path.write_text("[log]\nurl='http://x'\nkey='nope.vkey'\n[monitor]\nstate='s'\n")
    out = saksi_monitor("--config", str(path), "--check-config")
    assert out.returncode == 3, out.stderr
    assert "nope.vkey" in out.stderr
    missing = saksi_monitor("--config", str(tmp_path / "none.toml"), "--once")
    assert missing.returncode == 3, missing.stderr


def test_once_prints_one_json_object(tmp_path, served, entries):
    served.serve(view(entries, KEY, ORIGIN))
    (tmp_path / "log.vkey").write_text(str(KEY.verifier_key) + "\n")
    path = tmp_path / "monitor.toml"
    path.write_text(
        f"[log]\nurl = '{served.url}'\ntiles = '{served.url}'\nkey = 'log.vkey'\n"
        "[monitor]\nstate = 'state'\nalert_log = 'alerts.jsonl'\n"
    )
    assert saksi_monitor("--config", str(path), "--check-config").returncode == 0
    out = saksi_monitor("--config", str(path), "--once", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report == {
        "ok": True,
        "log_size": len(entries),
        "checked": len(entries),
        "error": None,
        "alerts": [],
    }


def test_the_canary_times_its_records_to_a_witnessed_checkpoint(tmp_path, evidence):
    directory = tmp_path / "log"
    db_url = f"sqlite:///{tmp_path / 'saksi.db'}"
    init_log(directory, db_url, "canary.saksi.example/log", PASS)
    log_key = VerifierKey.parse((directory / "log.vkey").read_text().strip())
    witness_key = WitnessKey.generate("witness.canary.example")
    witness = serve_witness(
        Witness(witness_key, [log_key], tmp_path / "witness"), "127.0.0.1", 0
    )
    threading.Thread(target=witness.serve_forever, daemon=True).start()
    (tmp_path / "witness.vkey").write_text(str(witness_key.verifier_key) + "\n")
    try:
        with serving(
            directory,
            db_url,
            cli_env(PASS),
            "--witness",
            f"http://127.0.0.1:{witness.server_address[1]}",
            str(witness_key.verifier_key),
        ) as url:
            admin = load_key_file(directory / "admin.key", PASS.encode())
            canary = Ed25519Signer("canary", hashlib.sha256(b"canary").digest())
            write_key_file(
                tmp_path / "canary.key", canary, PASS.encode(), KdfProfile.INTERACTIVE
            )
            client = SaksiClient(url, log_key)
            grant_over_http(client, admin, canary, "canary", "")
            raw = {
                "log": {"url": url, "key": "log/log.vkey"},
                "witnesses": {"keys": ["witness.vkey"], "min": 1},
                "monitor": {"state": "state", "listen": "127.0.0.1:0"},
                "canary": {"key": "canary.key", "interval_seconds": 0.5},
            }
            (tmp_path / "pass").write_text(PASS)
            raw["canary"]["passphrase_file"] = "pass"
            monitor = Monitor(parse_config(raw, tmp_path), alert_stream=io.StringIO())
            try:
                canary = monitor.make_canary()  # not started: one at a time here
                assert canary is not None
                delays = [canary.once() for _ in range(3)]
                assert all(d is not None and d > 0 for d in delays)
                samples = {
                    s.name: s.value
                    for family in monitor.metrics.registry.collect()
                    for s in family.samples
                }
                assert samples["saksi_canary_merge_delay_seconds_count"] == 3
                assert samples["saksi_canary_failures_total"] == 0
                assert monitor.run_once().error is None  # canaries audit clean
                assert monitor.book.active() == []
            finally:
                monitor.close()
    finally:
        witness.shutdown()
        witness.server_close()
    evidence.record(
        "R7",
        attempts=len(delays),
        detected=sum(d <= MERGE_DELAY for d in delays),
        false_alarms=int(samples["saksi_canary_failures_total"]),
        merge_delay_max_s=round(max(delays), 3),
        merge_delay_s_exported=int(samples["saksi_canary_merge_delay_seconds_count"]),
        timed_to="a witnessed checkpoint",
        not_measured="a canary every 30 s over days; the alert's firing is "
        "tests/integration/test_alerting_e2e.py",
    )
