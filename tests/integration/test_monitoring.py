"""The shipped alert rules and dashboard, against promtool and a real Prometheus.

* ``promtool check rules`` and ``promtool test rules`` pass on
  ``deploy/prometheus/``, and every alert has a unit test where it fires, one
  where it does not, and a runbook in the README.
* A ``saksi serve`` (SQLite, one witness) and a ``saksi monitor`` following it
  (with its canary and a webhook) are scraped by a Prometheus that loads the
  shipped rules while the demo writes real records through HTTP: every panel
  query of ``deploy/grafana/saksi-dashboard.json`` returns data, and every
  metric the rules name is one the service or the monitor exports.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from keys import Ed25519Signer, KdfProfile, load_key_file, write_key_file
from saksi_client import SaksiClient
from tests.helpers import ROOT, cli_env, grant_over_http, init_log, run_saksi, serving
from tests.prom import RULES, Prometheus, Receiver, free_port, need
from verifier.witness_protocol import WitnessKey
from verifier.witness_server import Witness, serve_witness

PASS = "monitoring-passphrase"
RULES_TEST = RULES.with_name("saksi-rules.test.yml")
DASHBOARD = ROOT / "deploy" / "grafana" / "saksi-dashboard.json"
README = ROOT / "README.md"
# Made by the monitor and its canary (saksi monitor), not by saksi serve.
MONITOR_PREFIXES = ("saksi_monitor_", "saksi_canary_")


def _monitor(tmp_path: Path, url: str, hook: str, port: int) -> subprocess.Popen:
    """``saksi monitor`` with its canary, following the log at ``url``."""
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[log]\nurl = "{url}"\nkey = "log/log.vkey"\n'
        '[witnesses]\nkeys = ["witness.vkey"]\nmin = 1\n'
        f'[monitor]\nstate = "monitor-state"\nlisten = "127.0.0.1:{port}"\n'
        'poll_seconds = 0.5\nalert_log = "alerts.jsonl"\n'
        f'[webhook]\nurls = ["{hook}"]\n'
        '[canary]\nkey = "canary.key"\ninterval_seconds = 0.5\n',
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "api", "monitor", "--config", str(config)],
        env=cli_env(PASS),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "monitor.err").open("wb"),
    )
    return process


def _alerts() -> dict[str, list[dict]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    out: dict[str, list[dict]] = {}
    for group in groups:
        for rule in group["rules"]:
            if "alert" in rule:
                out.setdefault(rule["alert"], []).append(rule)
    return out


def test_promtool_checks_and_unit_tests_the_rules():
    promtool = need("promtool")
    for command in (
        [promtool, "check", "rules", str(RULES)],
        [promtool, "test", "rules", str(RULES_TEST)],
    ):
        out = subprocess.run(
            command, capture_output=True, text=True, timeout=120, check=False
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert "SUCCESS" in out.stdout + out.stderr


def test_every_alert_fires_and_stays_quiet_in_a_unit_test_and_has_a_runbook():
    tests = yaml.safe_load(RULES_TEST.read_text(encoding="utf-8"))["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    alerts = _alerts()
    assert set(alerts) == firing, set(alerts) ^ firing
    assert set(alerts) == quiet, set(alerts) ^ quiet
    readme = README.read_text(encoding="utf-8")
    headings = {
        re.sub(r"[^a-z0-9-]", "", line.lstrip("#").strip().lower().replace(" ", "-"))
        for line in readme.splitlines()
        if line.startswith("#")
    }
    for name, rules in alerts.items():
        for rule in rules:
            assert rule["annotations"]["runbook"] == f"README.md#{name.lower()}"
            assert rule["labels"]["severity"] in {"critical", "warning"}
        assert name.lower() in headings, f"no runbook section for {name}"


def _panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", "1m")
            out.append((panel["title"], expr))
    return out


def _rule_metrics() -> set[str]:
    names: set[str] = set()
    recorded = set()
    for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]:
        for rule in group["rules"]:
            recorded.add(rule.get("record", ""))
            names |= set(re.findall(r"\bsaksi_[a-z_]+", rule["expr"]))
    base = set()
    for name in names - recorded:
        for suffix in ("_bucket", "_count", "_sum"):
            if name.endswith(suffix):
                name = name.removesuffix(suffix)
        base.add(name)
    return base


@pytest.fixture
def witness(tmp_path):
    key = WitnessKey.generate("witness.test.example")
    holder: dict = {}

    def start(log_key):
        server = serve_witness(Witness(key, [log_key], tmp_path / "w"), "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        holder["server"] = server
        return f"http://127.0.0.1:{server.server_address[1]}", str(key.verifier_key)

    yield start
    if "server" in holder:
        holder["server"].shutdown()
        holder["server"].server_close()


def test_every_dashboard_query_returns_data_from_a_real_prometheus(tmp_path, witness):
    from verifier.note import VerifierKey

    directory = tmp_path / "log"
    db_url = f"sqlite:///{tmp_path / 'saksi.db'}"
    init_log(directory, db_url, "monitoring.saksi.example/log", PASS)
    log_key = VerifierKey.parse(
        (directory / "log.vkey").read_text(encoding="utf-8").strip()
    )
    witness_url, witness_vkey = witness(log_key)
    (tmp_path / "witness.vkey").write_text(witness_vkey + "\n", encoding="utf-8")
    receiver = Receiver()
    monitor_port = free_port()
    monitor = None
    with serving(
        directory, db_url, cli_env(PASS), "--witness", witness_url, witness_vkey
    ) as url:
        target = url.removeprefix("http://")
        prometheus = Prometheus(
            tmp_path / "prometheus",
            {"saksi": [target], "saksi-monitor": [f"127.0.0.1:{monitor_port}"]},
        )
        try:
            assert prometheus.wait_for('up{job="saksi"} == 1'), "never scraped"
            demo = run_saksi(
                "demo", "--url", url, "--dir", str(directory), passphrase=PASS
            )
            assert demo.returncode == 0, demo.stderr
            # Then the monitor, with a canary writing every half second.
            admin = load_key_file(directory / "admin.key", PASS.encode())
            canary = Ed25519Signer("canary", bytes(range(32)))
            write_key_file(
                tmp_path / "canary.key", canary, PASS.encode(), KdfProfile.INTERACTIVE
            )
            grant_over_http(SaksiClient(url, log_key), admin, canary, "canary", "")
            monitor = _monitor(tmp_path, url, receiver.url, monitor_port)
            assert prometheus.wait_for('up{job="saksi-monitor"} == 1', timeout=90)
            for path in ("/log/checkpoint", "/v1/proofs/inclusion?index=1"):
                with urllib.request.urlopen(url + path, timeout=5):  # noqa: S310
                    pass
            assert prometheus.wait_for("increase(saksi_appends_total[1m]) > 0")
            assert prometheus.wait_for(
                "saksi:append_latency_slo_errors:ratio_rate5m", timeout=30
            )
            exported = {
                row["metric"]["__name__"]
                for row in prometheus.query('{job=~"saksi|saksi-monitor"}')
            }
            missing = {
                name
                for name in _rule_metrics()
                if not exported & {name, name + "_total", name + "_bucket"}
            }
            assert not missing, f"the rules name metrics nobody exports: {missing}"
            # Every query has its points once two scrapes follow the last read.
            deadline = time.monotonic() + 60
            while True:
                empty = []
                for title, expr in _panel_queries():
                    rows = prometheus.query(expr)
                    values = [float(row["value"][1]) for row in rows]
                    if not rows or not any(math.isfinite(v) for v in values):
                        empty.append((title, expr))
                if not empty or time.monotonic() > deadline:
                    break
                time.sleep(1)
            assert not empty, f"dashboard queries without data: {empty}"
        finally:
            prometheus.stop()
            if monitor is not None:
                monitor.terminate()
                monitor.wait(timeout=60)
            receiver.stop()


def test_the_dashboard_is_valid_grafana_json():
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] == "saksi-ledger"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
        for target in panel["targets"]:
            assert "{{" not in target["expr"]  # a legend template in a query
    assert Path(DASHBOARD).read_text(encoding="utf-8").endswith("\n")
