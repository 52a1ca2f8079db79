"""HTTP API benchmark: signed appends and reads through a real server on 127.0.0.1.

    python -m bench.http [--count 6000] [--out BENCHMARKS.md]

In one run, on a fresh SQLite log served by ``saksi serve`` in its own process:
  * limits: Ed25519 verification in this process, and the in-process append rate
    of the same signed records (RecordLog, no HTTP);
  * appends/s and request-to-receipt latency (p50, p99) with 1, 16 and 64
    concurrent clients, one envelope per request and 100 per batch request;
  * read requests/s (inclusion proofs, hash tiles) with 64 concurrent clients.
Each record is a real ``keys.grant/v1`` signed by the log's admin, so every
request pays for JSON, DSSE and schema checks, signature verification, the
registry, the chain, dedupe and a durable commit. Writes ``BENCHMARKS.md``'s
``http`` section.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import httpx
import nacl.signing

from bench.report import write_section
from keys import Ed25519Signer, load_key_file
from verifier.dsse import envelope_to_json, sign_envelope
from verifier.record import RECORD_PAYLOAD_TYPE, format_timestamp, record_payload

ROOT = Path(__file__).resolve().parent.parent
PASS = "bench-only-passphrase"  # noqa: S105 - a throwaway benchmark log


def bench_env() -> dict[str, str]:
    """The environment of a benchmark's server: its passphrase, no rate limits."""
    return {
        **os.environ,
        "SAKSI_KEY_PASSPHRASE": PASS,
        "SAKSI_KEY_RATE": "1000000",
        "SAKSI_KEY_BURST": "1000000",
        "SAKSI_CLIENT_RATE": "1000000",
        "SAKSI_CLIENT_BURST": "1000000",
    }


def start_server(
    log_dir: Path,
    port: int,
    *flags: str,
    env: dict[str, str],
    output: IO[bytes] | None = None,
) -> subprocess.Popen[bytes]:
    """``saksi serve`` of ``log_dir`` on 127.0.0.1:``port`` (no access log).

    Its stdout and stderr go to ``output`` if given (else to this process's).
    """
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "api",
            "serve",
            "--dir",
            str(log_dir),
            "--listen",
            f"127.0.0.1:{port}",
            "--no-access-log",  # figures comparable with earlier runs
            *flags,
        ],
        env=env,
        cwd=ROOT,
        stdout=output,
        stderr=output,
    )


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def envelopes(admin: Ed25519Signer, count: int, tag: str) -> list[bytes]:
    """``count`` signed grants of fresh keys (distinct subjects: no conflicts)."""
    now = format_timestamp(dt.datetime.now(dt.UTC))
    out = []
    for i in range(count):
        seed = nacl.signing.SigningKey.generate()
        public = bytes(seed.verify_key)
        officer = Ed25519Signer(f"{tag}{i}", bytes(seed))
        payload = record_payload(
            schema="keys.grant/v1",
            subject=f"keys/{officer.keyid}",
            revision=0,
            prev=None,
            issued_at=now,
            body={
                "keyid": officer.keyid,
                "public_key": base64.b64encode(public).decode(),
                "role": "tps",
                "scope": f"31710110{i % 10000:05d}",
                "holder": f"bench {tag} {i}",
            },
        )
        envelope = sign_envelope(RECORD_PAYLOAD_TYPE, payload, [admin])
        out.append(json.dumps(envelope_to_json(envelope)).encode())
    return out


def limit_verify() -> float:
    key = nacl.signing.SigningKey(bytes(32))
    signed = [key.sign(b"%d" % i) for i in range(5000)]
    verify = key.verify_key
    t = time.perf_counter()
    for s in signed:
        verify.verify(s)
    return 5000 / (time.perf_counter() - t)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds spent by the server process and by this (the load) process."""

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid
        self.server = cpu_seconds(server_pid)
        self.load = time.process_time()

    def per(self, count: int) -> tuple[float, float]:
        """Microseconds of server and load-generator CPU per unit of ``count``."""
        server = cpu_seconds(self.pid) - self.server
        load = time.process_time() - self.load
        return server / count * 1e6, load / count * 1e6


# The HTTP stack's own ceiling: one 900-byte answer per request from bare ASGI
# and from a trivial FastAPI route, both under the same uvicorn as the API.
_BASELINE_APP = """
import sys
import uvicorn
from fastapi import FastAPI, Query
from fastapi.responses import Response

BODY = b"x" * 900


async def bare(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"900")]})
    await send({"type": "http.response.body", "body": BODY})


framework = FastAPI()


@framework.get("/p")
async def route(index: int = Query(0, ge=0)):
    return Response(BODY, media_type="application/json")


app = bare if sys.argv[1] == "bare" else framework
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning",
            access_log=False)
"""


def limit_http_stack(requests: int = 12000) -> dict[str, float]:
    """Requests/s, 64 clients, of bare ASGI and of a trivial FastAPI route."""
    rates = {}
    for kind in ("bare", "fastapi"):
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-c", _BASELINE_APP, kind, str(port)], cwd=ROOT
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}/p")
            rates[kind] = asyncio.run(run_reads(port, ["/p?index=5"] * requests, 64))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    return rates


def wait_ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Connection:
    """A minimal keep-alive HTTP/1.1 client over asyncio streams.

    The load generator shares the 2 cores with the server, so it must be cheap:
    a general-purpose client spends more CPU per request than the server does.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> int:
        return (await self.exchange(method, path, body))[0]

    async def exchange(
        self, method: str, path: str, body: bytes = b""
    ) -> tuple[int, bytes]:
        """One request on this connection: the answer's status and body."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(
                self.host, self.port
            )
        assert self.reader is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def run_writes(
    port: int, bodies: list[bytes], clients: int, batch: int
) -> tuple[float, list[float]]:
    """Appends/s and per-request latencies with ``clients`` concurrent clients."""
    if batch > 1:
        requests = [
            b'{"envelopes": [' + b",".join(bodies[i : i + batch]) + b"]}"
            for i in range(0, len(bodies), batch)
        ]
        path = "/v1/entries/batch"
    else:
        requests, path = bodies, "/v1/entries"
    queue = iter(requests)
    latencies: list[float] = []

    async def client() -> None:
        connection = Connection("127.0.0.1", port)
        try:
            for body in queue:
                t = time.perf_counter()
                status = await connection.request("POST", path, body)
                latencies.append(time.perf_counter() - t)
                if status not in (200, 201):
                    raise RuntimeError(f"POST {path}: {status}")
        finally:
            connection.close()

    t = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return len(bodies) / (time.perf_counter() - t), latencies


async def run_reads(port: int, paths: list[str], clients: int) -> float:
    queue = iter(paths)

    async def client() -> None:
        connection = Connection("127.0.0.1", port)
        try:
            for path in queue:
                status = await connection.request("GET", path)
                if status != 200:
                    raise RuntimeError(f"{path}: {status}")
        finally:
            connection.close()

    t = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return len(paths) / (time.perf_counter() - t)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def saksi(*args: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "api", *args],
        check=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=6000, help="appends per case")
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="saksi-http-"))
    env = bench_env()
    progress("limits: Ed25519 verify; signing the workload")
    verify_rate = limit_verify()
    saksi(
        "init",
        "--origin",
        "bench.saksi.example/http",
        "--dir",
        str(tmp / "log"),
        "--kdf",
        "interactive",
        env=env,
    )
    admin = load_key_file(tmp / "log" / "admin.key", PASS.encode())
    cases = [(1, 1), (16, 1), (64, 1), (1, 100), (16, 100), (64, 100)]
    work = {
        case: envelopes(admin, args.count, f"c{case[0]}b{case[1]}-") for case in cases
    }
    inproc = envelopes(admin, args.count, "inproc-")

    progress("in-process appends (no HTTP)")
    from cli.local import open_service

    os.environ["SAKSI_KEY_PASSPHRASE"] = PASS
    service = open_service(tmp / "log", None, None)
    # In process, the same work as a request minus HTTP: check each envelope,
    # then append in batches of 500 (durable, gated, with receipts).
    t = time.perf_counter()
    subs = [service.writer.prepare(json.loads(b)) for b in inproc]
    prepare_rate = len(subs) / (time.perf_counter() - t)
    t = time.perf_counter()
    for i in range(0, len(subs), 500):
        results = service.ledger.submit_many(subs[i : i + 500])
        if any(isinstance(r, Exception) for r in results):
            raise RuntimeError("in-process append refused")
    gated_rate = len(subs) / (time.perf_counter() - t)
    inproc_rate = 1 / (1 / prepare_rate + 1 / gated_rate)
    service.close()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "api",
            "serve",
            "--dir",
            str(tmp / "log"),
            "--port",
            str(port),
            "--no-access-log",  # figures comparable with earlier runs
            "--no-security-log",
        ],
        env=env,
        cwd=ROOT,
    )
    try:
        wait_ready(url + "/healthz")
        rows = []
        for clients, batch in cases:
            progress(f"HTTP appends: {clients} clients, {batch} per request")
            meter = CpuMeter(server.pid)
            rate, lat = asyncio.run(
                run_writes(port, work[(clients, batch)], clients, batch)
            )
            server_us, load_us = meter.per(args.count)
            rows.append(
                (
                    clients,
                    batch,
                    rate,
                    statistics.median(lat),
                    pct(lat, 0.99),
                    server_us,
                    load_us,
                )
            )
        size = httpx.get(url + "/healthz").json()["tree_size"]
        progress("HTTP reads")
        proof_paths = [
            f"/v1/proofs/inclusion?index={(i * 7919) % size}" for i in range(6000)
        ]
        tiles = size // 256
        tile_paths = [f"/log/tile/0/{(i % max(tiles, 1)):03d}" for i in range(6000)]
        meter = CpuMeter(server.pid)
        proof_rate = asyncio.run(run_reads(port, proof_paths, 64))
        proof_cpu = meter.per(len(proof_paths))[0]
        meter = CpuMeter(server.pid)
        tile_rate = asyncio.run(run_reads(port, tile_paths, 64)) if tiles else 0.0
        tile_cpu = meter.per(len(tile_paths))[0]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    progress("HTTP stack limits: bare ASGI and a trivial FastAPI route")
    stack = limit_http_stack()

    lines = [
        "## The HTTP API: signed appends and reads",
        "",
        f"Command: `python -m bench.http --count {args.count}` (writes this section).",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; measured "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Server and load "
        "generator (raw keep-alive HTTP/1.1) share the 2 cores (uvicorn with uvloop "
        "and httptools, one worker, SQLite).",
        "",
        "### Limits measured in this run",
        "",
        f"* Ed25519 verification: {verify_rate:,.0f}/s (one per envelope)",
        f"* checking an envelope in process (JSON, DSSE, schema, signature): "
        f"{prepare_rate:,.0f}/s",
        f"* appending checked envelopes in process (registry, chain, dedupe, durable "
        f"commit, receipts; batches of 500): {gated_rate:,.0f}/s",
        f"* both, in process, no HTTP (the in-process limit below): "
        f"{inproc_rate:,.0f}/s",
        f"* the HTTP stack alone (900-byte answers, 64 clients): bare ASGI under "
        f"uvicorn {stack['bare']:,.0f} requests/s, a trivial FastAPI route "
        f"{stack['fastapi']:,.0f} requests/s",
        "",
        "### Appends through HTTP (each a signed keys.grant/v1, receipt verified by "
        "the server's proof)",
        "",
        "| clients | envelopes per request | appends/s | vs in-process | p50 latency "
        "| p99 latency | server CPU per append | load generator CPU per append |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for clients, batch, rate, p50, p99, server_us, load_us in rows:
        lines.append(
            f"| {clients} | {batch} | {rate:,.0f} | {rate / inproc_rate:.2f} "
            f"| {p50 * 1000:.1f} ms | {p99 * 1000:.1f} ms | {server_us:,.0f} µs "
            f"| {load_us:,.0f} µs |"
        )
    lines += [
        "",
        "### Reads through HTTP (64 concurrent clients)",
        "",
        f"* inclusion proofs: {proof_rate:,.0f} requests/s at tree size {size:,} "
        f"({proof_cpu:,.0f} µs of server CPU each)",
        f"* full hash tiles (8 KiB): {tile_rate:,.0f} requests/s "
        f"({tile_cpu:,.0f} µs of server CPU each)",
        "",
        "Server CPU is user + system time of the server process (all its threads) "
        "over the case, divided by the appends or requests; the server is one "
        "Python process, so about 1,000,000 µs of it per second is its ceiling "
        "while the GIL is held.",
    ]
    write_section(args.out, "http", "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
