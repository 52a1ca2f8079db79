"""``saksi serve`` as a service: what it prints, what it logs, how it treats clients.

A real ``saksi serve`` on 127.0.0.1 (SQLite), driven with raw sockets where a
misbehaving client is the point: half-sent requests held open, a body that
never finishes, a client that hangs up mid-upload, wrong methods, a busy port.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.evidence import scale
from tests.helpers import ROOT, cli_env, run_saksi, serving

PASS = "serve-hygiene-passphrase"
SLOW_CLIENTS = scale(300, 1_000)  # RELIABILITY.md T11: 1,000 in the fitness run


def saksi(*args: str):
    return run_saksi(*args, passphrase=PASS, timeout=120)


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("hygiene") / "log"
    out = saksi(
        "init", "--origin", "hygiene.saksi.example/log", "--dir", str(directory),
        "--kdf", "interactive",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return directory


def _db(directory: Path) -> str:
    return f"sqlite:///{directory / 'saksi.db'}"


@pytest.fixture
def served(log_dir):
    env = cli_env(
        PASS,
        SAKSI_HEADER_TIMEOUT="1",
        SAKSI_BODY_TIMEOUT="1",
        SAKSI_KEEP_ALIVE_TIMEOUT="1",
    )
    log = log_dir.parent / "serve.log"
    log.unlink(missing_ok=True)
    with serving(log_dir, _db(log_dir), env) as url:
        yield url, log
    # Stopped: the shutdown line is there.
    assert "saksi: stopped serving hygiene.saksi.example/log" in log.read_text()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _lines(log: Path) -> list[dict]:
    out = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def test_serve_says_where_it_listens(served):
    url, log = served
    assert (
        f"saksi: serving hygiene.saksi.example/log (1 entry) on {url}"
        in log.read_text()
    )


def test_access_log_one_json_line_per_request(served, evidence):
    url, log = served
    httpx.get(url + "/log/checkpoint")
    httpx.get(url + "/v1/entries/0")
    httpx.get(url + "/v1/entries/424242424?evil=%0d%0aforged")
    response = httpx.get(url + "/log/tile/0/000.p/1")
    assert response.headers["x-request-id"]
    time.sleep(0.2)
    lines = _lines(log)
    routes = [(line["method"], line["route"], line["status"]) for line in lines]
    assert ("GET", "/log/checkpoint", 200) in routes
    assert ("GET", "/v1/entries/{index}", 200) in routes
    assert ("GET", "/v1/entries/{index}", 404) in routes
    assert ("GET", "/log/tile/{path}", 200) in routes
    assert response.headers["x-request-id"] in {line["request_id"] for line in lines}
    for line in lines:
        assert set(line) <= {
            "time", "request_id", "method", "route", "status", "duration_ms", "keyids",
        }  # fmt: skip
    # Nothing a client typed reaches the log.
    assert "forged" not in log.read_text()
    # A number no timestamp or duration holds, and a hex request id almost never.
    assert "424242424" not in log.read_text()
    text = log.read_text()
    evidence.record(
        "T17",
        attempts=1,
        detected=int("forged" not in text),
        injected="CR LF and a forged line in the query",
        forged_lines=text.count("forged"),
        access_log_lines=len(lines),
    )


@pytest.mark.parametrize("method", ["PUT", "DELETE", "TRACE", "PATCH"])
def test_a_wrong_method_is_405_with_a_405_problem(served, method):
    url, _ = served
    for path in ("/v1/entries", "/log/checkpoint", "/v1/log"):
        response = httpx.request(method, url + path)
        assert response.status_code == 405, (method, path)
        body = response.json()
        assert body["status"] == 405
        assert body["type"] == "/problems/method-not-allowed"
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["allow"]


def test_half_sent_requests_are_closed_while_reads_go_on(served, evidence):
    url, _ = served
    port = _port(url)
    slow = []
    for _ in range(SLOW_CLIENTS):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /log/checkpoint HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        slow.append(sock)
    try:
        # The server still answers everyone else.
        with httpx.Client(timeout=5) as client:
            reads = [client.get(url + "/log/checkpoint") for _ in range(20)]
        assert {r.status_code for r in reads} == {200}
        # And closes every half-sent request once its headers are late.
        deadline = time.monotonic() + 15
        closed = 0
        for sock in slow:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                if sock.recv(1024) == b"":
                    closed += 1
            except (TimeoutError, ConnectionResetError):
                pass
        assert closed == SLOW_CLIENTS
    finally:
        for sock in slow:
            sock.close()
    evidence.record(
        "T11",
        attempts=SLOW_CLIENTS,
        detected=closed,
        false_alarms=sum(r.status_code != 200 for r in reads),
        slow_connections_closed=closed,
        honest_reads_meanwhile=len(reads),
        honest_read_max_s=round(max(r.elapsed.total_seconds() for r in reads), 3),
    )


def test_a_body_that_never_finishes_gets_408(served, evidence):
    url, _ = served
    sock = socket.create_connection(("127.0.0.1", _port(url)), timeout=10)
    try:
        sock.sendall(
            b"POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            b'\r\nContent-Length: 1000\r\n\r\n{"payloadType":'
        )
        # Headers and body may come in separate segments: read to the close.
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"/problems/request-timeout" in answer
    evidence.record(
        "T11",
        attempts=1,
        detected=int(answer.startswith(b"HTTP/1.1 408")),
        stalled_body="408 after SAKSI_BODY_TIMEOUT (1 s)",
    )


def test_a_client_leaving_mid_upload_logs_no_traceback(served):
    url, log = served
    for _ in range(20):
        sock = socket.create_connection(("127.0.0.1", _port(url)), timeout=10)
        sock.sendall(
            b"POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            b'\r\nContent-Length: 5000\r\n\r\n{"payloadType":'
        )
        sock.close()
    time.sleep(0.5)
    assert httpx.get(url + "/healthz").status_code == 200
    text = log.read_text()
    assert "Traceback" not in text
    assert "ERROR" not in text


def test_a_busy_port_is_a_clear_error(log_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "api", "serve", "--dir", str(log_dir),
             "--listen", f"127.0.0.1:{port}"],
            capture_output=True, text=True, env=cli_env(PASS), cwd=ROOT, timeout=60,
        )  # fmt: skip
    assert out.returncode == 3
    assert f"127.0.0.1:{port} is already in use" in out.stderr
    assert "hint:" in out.stderr
    assert "Traceback" not in out.stderr
