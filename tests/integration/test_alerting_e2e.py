"""Every alert path, end to end, with real Prometheus, Alertmanager and a pager.

The stack, all on 127.0.0.1 and started and stopped here:

* ``saksi serve`` on its own PostgreSQL cluster, with a witness;
* ``saksi monitor`` A following that log; ``saksi monitor`` B following a
  lying log (static tiles this test signs with the log's key and changes);
* Prometheus scraping the service and both monitors with the shipped rules,
  their durations divided by 60 (a 10-minute window is 10 s here: the exact
  durations are held by ``promtool test rules``), sending to Alertmanager;
* Alertmanager routing everything to a webhook receiver (the team's pager),
  which the monitors also POST their own alerts to, through Alertmanager.

Each condition is driven for real: a revoked key used, a forked log and a
revoked key's write in a log shown to the monitor, a correction burst, a tally
changed under a signed recap, the log not growing, the writer stopped, the
witness gone, the database stopped. For each: the alert fires in Prometheus,
reaches the receiver through Alertmanager, is in the monitor's JSON log (for
the monitor's alerts) and clears when the condition ends.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from keys import Ed25519Signer, load_key_file
from saksi_client import Refused, SaksiClient, grant_body
from tests.conftest import ORIGIN
from tests.helpers import (
    ROOT,
    cli_env,
    grant_over_http,
    init_log,
    run_saksi,
    serving,
)
from tests.pg import PgCluster, find_pg_bin
from tests.prom import RULES, Alertmanager, Prometheus, Receiver, free_port, need
from tests.recordlog import RecordLog, form
from tests.tilelog import NoteKey, TileServer, view
from verifier.dsse import sign_envelope
from verifier.election import tally_subject
from verifier.record import RECORD_PAYLOAD_TYPE, format_log_entry, format_timestamp
from verifier.witness_protocol import WitnessKey
from verifier.witness_server import Witness, serve_witness

pytestmark = [pytest.mark.slow]

PASS = "alerting-e2e-passphrase"
WAIT = 90.0  # seconds any one alert may take to fire or clear here
HOLD = 15.0  # the monitors' hold of an event alert


# -- the pager ----------------------------------------------------------------------


# -- helpers ----------------------------------------------------------------------


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310
            return True
    except OSError:
        return False


def _until(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def _scaled(rules: Path, out: Path) -> Path:
    """The shipped rules with every duration divided by 60 (minutes to seconds)."""
    text = rules.read_text(encoding="utf-8")

    def seconds(match: re.Match[str]) -> str:
        number, unit = int(match.group(1)), match.group(2)
        return f"{number * (60 if unit == 'h' else 1)}s"

    text = re.sub(r"(?<=\[)(\d+)([mh])(?=\])", seconds, text)
    text = re.sub(r"(?<=for: )(\d+)([mh])", seconds, text)
    out.write_text(text, encoding="utf-8")
    return out


def _firing(prometheus: Prometheus, name: str, **labels: str) -> bool:
    return any(
        a["state"] == "firing"
        and a["labels"].get("alertname") == name
        and all(a["labels"].get(k) == v for k, v in labels.items())
        for a in prometheus.alerts()
    )


class Monitor:
    """``saksi monitor`` as a subprocess, with its JSON alert log."""

    def __init__(self, workdir: Path, config: dict[str, str]) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.alerts = workdir / "alerts.jsonl"
        path = workdir / "monitor.toml"
        path.write_text(config["toml"].format(port=self.port), encoding="utf-8")
        self.err = (workdir / "monitor.err").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api", "monitor", "--config", str(path)],
            env=cli_env(PASS),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=self.err,
        )
        _until(
            lambda: _ok(f"http://127.0.0.1:{self.port}/metrics"), 60, "monitor metrics"
        )

    def lines(self) -> list[dict[str, Any]]:
        if not self.alerts.exists():
            return []
        return [json.loads(x) for x in self.alerts.read_text().splitlines() if x]

    def logged(self, status: str, alert: str) -> bool:
        return any(x["status"] == status and x["alert"] == alert for x in self.lines())

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        self.err.close()


def _monitor_toml(
    tiles: str, url: str, vkey: Path, state: Path, am: str, alerts: Path
) -> str:
    now = dt.datetime.now(dt.UTC)
    start = format_timestamp(now - dt.timedelta(hours=1))
    end = format_timestamp(now + dt.timedelta(hours=1))
    return f"""
[log]
url = "{url}"
tiles = "{tiles}"
key = "{vkey}"
[monitor]
state = "{state}"
listen = "127.0.0.1:{{port}}"
poll_seconds = 0.5
alert_log = "{alerts}"
[webhook]
urls = ["{am}/api/v2/alerts"]
max_backoff_seconds = 1.0
[thresholds]
corrections_min = 3
stall_seconds = 4.0
hold_seconds = {HOLD}
[[timetable]]
name = "counting"
from = "{start}"
to = "{end}"
schemas = ["results.tally/v1", "results.recap/v1"]
expect_results = true
"""


def _alert_cycle(
    prometheus: Prometheus,
    receiver: Receiver,
    name: str,
    cause: Callable[[], None],
    end: Callable[[], None] | None = None,
    **labels: str,
) -> None:
    """Drive ``cause``; the alert fires and reaches the pager; ``end``; it clears."""
    cause()
    _until(lambda: _firing(prometheus, name, **labels), WAIT, f"{name} firing")
    _until(
        lambda: receiver.got("firing", alertname=name, **labels),
        WAIT,
        f"{name} at the pager",
    )
    if end is not None:
        end()
    _until(lambda: not _firing(prometheus, name, **labels), WAIT, f"{name} clears")
    _until(
        lambda: receiver.got("resolved", alertname=name, **labels),
        WAIT,
        f"{name} resolved at the pager",
    )


# -- the test ---------------------------------------------------------------------


@pytest.fixture
def pg(tmp_path):
    bindir = find_pg_bin()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL (initdb, pg_ctl) is required in CI")
        pytest.skip("PostgreSQL binaries not installed")
    cluster = PgCluster(bindir)  # its own temporary directory, the postgres user's
    cluster.start()
    yield cluster
    cluster.stop()


def test_every_alert_fires_reaches_the_pager_and_clears(tmp_path, pg):
    need("prometheus")
    need("prometheus-alertmanager")
    receiver = Receiver()
    am = Alertmanager(tmp_path / "am", receiver.url)
    directory = tmp_path / "log"
    db_url = pg.new_database()
    init_log(directory, db_url, "alerting.saksi.example/log", PASS)
    log_vkey = directory / "log.vkey"
    from verifier.note import VerifierKey

    log_key = VerifierKey.parse(log_vkey.read_text(encoding="utf-8").strip())
    witness_key = WitnessKey.generate("witness.alerting.example")
    witness_state = tmp_path / "witness"

    def start_witness(port: int = 0):
        server = serve_witness(
            Witness(witness_key, [log_key], witness_state), "127.0.0.1", port
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    witness = start_witness()
    witness_port = witness.server_address[1]
    liar = TileServer()
    started: list[Any] = []
    try:
        with serving(
            directory,
            db_url,
            cli_env(PASS, SAKSI_READY_MAX_AGE="3600"),
            "--witness",
            f"http://127.0.0.1:{witness_port}",
            str(witness_key.verifier_key),
        ) as url:
            server_pid = _server_pid(url)
            monitor_a = Monitor(
                tmp_path / "monitor-a",
                {
                    "toml": _monitor_toml(
                        url + "/log",
                        url,
                        log_vkey,
                        tmp_path / "monitor-a" / "state",
                        am.url,
                        tmp_path / "monitor-a" / "alerts.jsonl",
                    )
                },
            )
            started.append(monitor_a)
            lying = _lying_log(tmp_path)
            liar.serve(lying["honest"])
            monitor_b = Monitor(
                tmp_path / "monitor-b",
                {
                    "toml": _monitor_toml(
                        liar.url,
                        liar.url,
                        lying["vkey"],
                        tmp_path / "monitor-b" / "state",
                        am.url,
                        tmp_path / "monitor-b" / "alerts.jsonl",
                    )
                },
            )
            started.append(monitor_b)
            prometheus = Prometheus(
                tmp_path / "prometheus",
                {
                    "saksi": [url.removeprefix("http://")],
                    "saksi-monitor": [
                        f"127.0.0.1:{monitor_a.port}",
                        f"127.0.0.1:{monitor_b.port}",
                    ],
                },
                rules=(_scaled(RULES, tmp_path / "rules.yml"),),
                alertmanager=f"127.0.0.1:{am.port}",
            )
            started.append(prometheus)
            assert prometheus.wait_for('up{job="saksi-monitor"} == 1')

            # The demo writes an election; one of its forms is corrected after
            # the recaps above it were signed.
            demo = run_saksi(
                "demo", "--url", url, "--dir", str(directory), passphrase=PASS
            )
            assert demo.returncode == 0, demo.stderr
            _until(
                lambda: monitor_a.logged("firing", "changed-under-signed-recap"),
                WAIT,
                "the monitor's own line",
            )
            _until(
                lambda: receiver.got(
                    "firing",
                    alertname="SaksiMonitorFinding",
                    alert="changed-under-signed-recap",
                    source="saksi-monitor",
                ),
                WAIT,
                "the monitor's webhook through Alertmanager",
            )
            _alert_cycle(
                prometheus,
                receiver,
                "SaksiMonitorFinding",
                lambda: None,
                alert="changed-under-signed-recap",
            )
            assert monitor_a.logged("resolved", "changed-under-signed-recap")

            admin = load_key_file(directory / "admin.key", PASS.encode())
            client = SaksiClient(url, log_key, retries=2)

            # A revoked key tries to write: refused, and the team is paged.
            revoked = Ed25519Signer("revoked", hashlib.sha256(b"revoked").digest())

            def use_revoked() -> None:
                station = "3101011001003"
                grant_over_http(client, admin, revoked, "tps", station)
                client.submit(
                    SaksiClient.sign(
                        SaksiClient.record(
                            "keys.revoke/v1",
                            f"keys/{revoked.keyid}",
                            {"keyid": revoked.keyid, "reason_code": "compromised"},
                            reason="the device was stolen",
                            after=client.head(f"keys/{revoked.keyid}"),
                        ),
                        [admin],
                    )
                )
                tally = SaksiClient.record(
                    "results.tally/v1",
                    tally_subject("ppwp", station),
                    form({"100025": 1}),
                    reason="a second reading",
                    after=client.head(tally_subject("ppwp", station)),
                )
                with pytest.raises(Refused) as refused:
                    client.submit(SaksiClient.sign(tally, [revoked]))
                assert refused.value.cause == "key-revoked"

            _alert_cycle(
                prometheus, receiver, "SaksiRevokedKeyUsed", use_revoked, role="tps"
            )

            # A burst of corrections in one province: the server's rule and the
            # monitor's own check.
            national = Ed25519Signer("national", hashlib.sha256(b"nat").digest())
            grant_over_http(client, admin, national, "national", "")

            def burst() -> None:
                subject = tally_subject("ppwp", "3101011001001")
                for n in range(24):
                    body = form({"100025": 50 + n, "100026": 10})
                    body["stage"] = "authority_correction"
                    body["correction"] = {
                        "reason_code": "ocr_error",
                        "reference": f"BA {n}",
                    }
                    record = SaksiClient.record(
                        "results.tally/v1",
                        subject,
                        body,
                        reason="recount",
                        after=client.head(subject),
                    )
                    client.submit(SaksiClient.sign(record, [national]))

            _alert_cycle(
                prometheus, receiver, "SaksiCorrectionRateUnusual", burst, province="31"
            )
            _until(
                lambda: monitor_a.logged("firing", "corrections-concentrated"),
                WAIT,
                "corrections-concentrated in the monitor's log",
            )
            assert monitor_a.logged("firing", "many-revisions")

            # The log not growing while the timetable expects results.
            _until(
                lambda: monitor_a.logged("firing", "log-not-growing"),
                WAIT,
                "log-not-growing",
            )
            _until(
                lambda: receiver.got(
                    "firing", alertname="SaksiMonitorFinding", alert="log-not-growing"
                ),
                WAIT,
                "log-not-growing at the pager",
            )
            grant_over_http(
                client,
                admin,
                Ed25519Signer("grow", hashlib.sha256(b"grow").digest()),
                "tps",
                "3101011001002",
            )
            _until(
                lambda: monitor_a.logged("resolved", "log-not-growing"),
                WAIT,
                "log-not-growing resolved",
            )

            # The witness goes away: every round fails until it is back.
            witness_box = [witness]

            def witness_gone() -> None:
                witness_box[0].shutdown()
                witness_box[0].server_close()
                for n in range(4):
                    grant_over_http(
                        client,
                        admin,
                        Ed25519Signer(f"w{n}", hashlib.sha256(b"w%d" % n).digest()),
                        "tps",
                        "3101011001002",
                    )
                    time.sleep(0.5)

            def witness_back() -> None:
                witness_box[0] = start_witness(witness_port)

            _alert_cycle(
                prometheus,
                receiver,
                "SaksiWitnessRefusing",
                witness_gone,
                witness_back,
                witness=witness_key.name,
            )

            # The database stops: reads and writes fail until it is back.
            def database_down() -> None:
                pg.stop(keep=True)
                for index in (5, 50, 500):  # entries not read lately
                    httpx.get(f"{url}/v1/entries/{index}", timeout=10)
                    time.sleep(0.5)

            _alert_cycle(
                prometheus,
                receiver,
                "SaksiDatabaseErrors",
                database_down,
                pg._pg_ctl_start,
            )

            # The writer stops (SIGSTOP): nothing answers until it goes on.
            _alert_cycle(
                prometheus,
                receiver,
                "SaksiDown",
                lambda: os.kill(server_pid, signal.SIGSTOP),
                lambda: os.kill(server_pid, signal.SIGCONT),
            )

            # The lying log: a fork, then a revoked key's write in the log.
            liar.serve(lying["fork"])
            _until(lambda: monitor_b.logged("firing", "fork"), WAIT, "fork")
            fork_line = next(x for x in monitor_b.lines() if x["alert"] == "fork")
            assert Path(fork_line["details"]["evidence"]).exists()
            _alert_cycle(
                prometheus,
                receiver,
                "SaksiMonitorFinding",
                lambda: liar.serve(lying["grown"]),
                alert="fork",
            )
            _until(
                lambda: monitor_b.logged("firing", "revoked-key-write"),
                WAIT,
                "revoked-key-write",
            )
            _until(
                lambda: receiver.got(
                    "firing", alertname="SaksiMonitorFinding", alert="revoked-key-write"
                ),
                WAIT,
                "revoked-key-write at the pager",
            )
            _until(
                lambda: monitor_b.logged("resolved", "revoked-key-write"),
                WAIT,
                "revoked-key-write resolved",
            )
    finally:
        for part in reversed(started):
            part.stop()
        liar.stop()
        am.stop()
        receiver.stop()
        try:
            witness.shutdown()
            witness.server_close()
        except OSError:
            pass


def _server_pid(url: str) -> int:
    listen = "127.0.0.1:" + url.rsplit(":", 1)[1]
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in args and listen.encode() in args:
            return int(proc.name)
    raise AssertionError("no saksi serve process found")


def _lying_log(tmp_path: Path) -> dict[str, Any]:
    """Views of a log whose key this test holds: honest, forked, and grown by a
    write its registry never allowed (a key revoked before it signed)."""
    signer = Ed25519Signer(ORIGIN, hashlib.sha256(b"liar").digest())
    log = RecordLog(f"sqlite:///{tmp_path / 'liar.db'}", signer)
    try:
        officer = Ed25519Signer("officer", hashlib.sha256(b"officer").digest())
        log.grant(officer, "tps", "")
        log.revoke(officer)
        size = log.ledger.size
        entries = [log.ledger.reader.entry_bytes(i) for i in range(size)]
    finally:
        log.close()
    key = NoteKey(ORIGIN, hashlib.sha256(b"liar").digest())
    payload = log.payload(
        "keys.grant/v1",
        f"keys/{'ab' * 32}",
        grant_body(bytes(32), "tps", "", "smuggled"),
    )
    forged = format_log_entry(
        sign_envelope(RECORD_PAYLOAD_TYPE, payload, [officer]),
        format_timestamp(log.now() + dt.timedelta(minutes=5)),
    )
    forked = list(entries)
    forked[-1] = forked[-1] + b" "
    vkey = tmp_path / "liar.vkey"
    vkey.write_text(str(key.verifier_key) + "\n", encoding="utf-8")
    return {
        "honest": view(entries, key, ORIGIN),
        "fork": view(forked, key, ORIGIN),
        "grown": view([*entries, forged], key, ORIGIN),
        "vkey": vkey,
    }
