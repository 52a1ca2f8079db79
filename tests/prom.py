"""Throwaway Prometheus and Alertmanager on 127.0.0.1 (Debian's packages), a pager.

``Prometheus`` writes its own configuration (scrape targets, the shipped rule
files, an optional Alertmanager), starts ``prometheus`` on a free port with its
data in a temporary directory, and stops it; ``Alertmanager`` routes every
alert to one webhook; ``Receiver`` is that webhook (the team's pager). Tests
that need the binaries skip when they are missing (``.ci/run`` installs them).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "saksi-rules.yml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} is not installed (Debian: apt install prometheus)")
    return path


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
        return json.load(response)


class Prometheus:
    """``prometheus`` scraping ``targets`` ({job: [host:port]}) every second."""

    def __init__(
        self,
        workdir: Path,
        targets: dict[str, list[str]],
        *,
        rules: tuple[Path, ...] = (RULES,),
        alertmanager: str | None = None,
    ) -> None:
        binary = need("prometheus")
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(r) for r in rules],
            "scrape_configs": [
                {
                    "job_name": job,
                    "scrape_interval": "1s",
                    "static_configs": [{"targets": list(addresses)}],
                }
                for job, addresses in targets.items()
            ],
        }
        if alertmanager is not None:
            config["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]
            }
        path = workdir / "prometheus.yml"
        path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
        self.log = (workdir / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready(workdir)

    def _wait_ready(self, workdir: Path) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    "prometheus exited: "
                    + (workdir / "prometheus.log").read_text(errors="replace")[-2000:]
                )
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1):  # noqa: S310
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("prometheus did not become ready in 60 s")

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar, as one sample) of ``expr`` now."""
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        answer = get_json(url)
        assert answer["status"] == "success", answer
        data = answer["data"]
        if data["resultType"] == "vector":
            return list(data["result"])
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        raise AssertionError(f"unexpected result type {data['resultType']}")

    def wait_for(self, expr: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Poll ``expr`` until it returns a sample."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result or time.monotonic() > deadline:
                return result
            time.sleep(0.5)

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts Prometheus holds now (pending and firing)."""
        return list(get_json(self.url + "/api/v1/alerts")["data"]["alerts"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310
            return True
    except OSError:
        return False


class Receiver:
    """A webhook receiver: keeps every POST, from Alertmanager or a monitor.

    ``notes`` are Alertmanager's notifications (``{"alerts": [...]}``);
    ``arrivals`` every alert received with its arrival time (monotonic), from
    those and from a monitor's own POSTs (a JSON list of alerts).
    """

    def __init__(self) -> None:
        self.notes: list[dict[str, Any]] = []
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        lock = self.lock = threading.Lock()
        notes, arrivals = self.notes, self.arrivals

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.monotonic()
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                alerts = body if isinstance(body, list) else body.get("alerts", [])
                with lock:
                    if isinstance(body, dict):
                        notes.append(body)
                    arrivals.extend((at, alert) for alert in alerts)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def got(self, status: str, **labels: str) -> bool:
        """Has Alertmanager sent an alert with ``labels`` and ``status``?"""
        with self.lock:
            return any(
                alert["status"] == status
                and all(alert["labels"].get(k) == v for k, v in labels.items())
                for note in self.notes
                for alert in note.get("alerts", [])
            )

    def first(self, after: float, since: str, **labels: str) -> float | None:
        """When the first firing alert with ``labels``, started at ``since`` or
        later, arrived after ``after`` (monotonic); None if none has."""
        with self.lock:
            for at, alert in self.arrivals:
                if (
                    at >= after
                    and alert.get("startsAt", "") >= since
                    and alert.get("endsAt", "~") > alert.get("startsAt", "")
                    and all(alert["labels"].get(k) == v for k, v in labels.items())
                ):
                    return at
        return None

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Alertmanager:
    def __init__(self, workdir: Path, receiver: str) -> None:
        binary = need("prometheus-alertmanager")
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "route": {
                "receiver": "pager",
                "group_by": ["..."],  # every alert its own notification
                "group_wait": "1s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "pager",
                    "webhook_configs": [{"url": receiver, "send_resolved": True}],
                }
            ],
        }
        path = workdir / "alertmanager.yml"
        path.write_text(json.dumps(config), encoding="utf-8")
        self.log = (workdir / "alertmanager.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={path}",
                f"--storage.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while not _ready(self.url + "/-/ready"):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("alertmanager did not become ready")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)
        self.log.close()
