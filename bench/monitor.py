"""Security monitor benchmark: its lag behind a log written at the country's rate,
and the time from an attack to the alert at the receiver.

    python -m bench.monitor [--forms 60000] [--trials 5] [--busy 1]
                            [--orders station,ballot] [--out BENCHMARKS.md]

In one run, all on 127.0.0.1:

* lag: ``saksi serve`` (SQLite) gets the election's setup (DKI Jakarta's region
  table, parties, candidate lists, as ``bench.election`` writes them), then
  ``--forms`` signed tallies at ``--rate`` a second (default 1,679: the whole
  country's rate ``bench.election`` measured on this machine), while
  ``saksi monitor`` follows the log through its tiles. Every 0.25 s the
  server's tree size and the monitor's checked size are sampled: the lag in
  entries, and in seconds (how long ago the log first held the oldest entry
  the monitor has not checked). p50, p99 and max while the writer runs; then
  the time to catch up after it stops. One run per ``--orders``: the forms
  station by station (as they arrive) and ballot by ballot (as
  ``bench.election`` writes them). With ``--busy N``, each order runs again
  with N processes spinning on the CPU while the writer runs: the noisy
  neighbour a shared machine has at times, made to happen.
* time to alert: ``saksi monitor`` follows a log served as static tiles; the
  log is switched to a fork (``--trials`` times, each a different fork), or
  grown by a write of a revoked key; the time from the switch to the alert's
  arrival at a webhook receiver (the monitor's own POST, Alertmanager's
  format), with the monitor reading the checkpoint every half second.

Writes BENCHMARKS.md's ``monitor`` section.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.election import BATCH, _make_form, _setup, stations_of
from bench.http import (
    PASS,
    ROOT,
    bench_env,
    free_port,
    pct,
    progress,
    saksi,
    start_server,
    wait_ready,
)
from bench.report import machine, write_section
from domains.regions import DEFAULT_TPS, DEFAULT_WILAYAH, district_bodies
from domains.synthetic import ElectionSpec, subjects
from keys import Ed25519Signer, load_key_file
from saksi_client import Refused, SaksiClient
from verifier.election import tally_subject
from verifier.note import VerifierKey


def _metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(
        f"http://127.0.0.1:{port}/metrics", timeout=5
    ) as response:
        text = response.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("saksi_monitor_") and "{" not in line:
            name, value = line.split()
            out[name] = float(value)
    return out


def _monitor(
    work: Path, url: str, tiles: str, vkey: Path, hook: str
) -> tuple[Any, int]:
    port = free_port()
    config = work / "monitor.toml"
    config.write_text(
        f'[log]\nurl = "{url}"\ntiles = "{tiles}"\nkey = "{vkey}"\n'
        f'[monitor]\nstate = "{work / "state"}"\nlisten = "127.0.0.1:{port}"\n'
        f'poll_seconds = 0.5\nalert_log = "{work / "alerts.jsonl"}"\n'
        + (f'[webhook]\nurls = ["{hook}"]\n' if hook else ""),
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "api", "monitor", "--config", str(config)],
        cwd=ROOT,
        stderr=(work / "monitor.err").open("wb"),
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            _metrics(port)
            return process, port
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the monitor did not start") from None
            time.sleep(0.2)


def _send_paced(client: SaksiClient, envelopes: list[Any], rate: float) -> None:
    """Batches of 500, 3 in flight, each sent no sooner than ``rate`` allows."""
    from concurrent.futures import ThreadPoolExecutor

    batches = [envelopes[i : i + BATCH] for i in range(0, len(envelopes), BATCH)]
    started = time.monotonic()

    def send(number: int) -> None:
        due = started + number * BATCH / rate
        time.sleep(max(0.0, due - time.monotonic()))
        for outcome in client.submit_many(batches[number]):
            if isinstance(outcome, Refused):
                raise RuntimeError(f"refused: {outcome.cause}")

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(send, range(len(batches))))


ORDERS = {"station": "station by station", "ballot": "ballot by ballot"}


def _in_order(
    spec: ElectionSpec, stations: list[str], order: str
) -> Iterator[tuple[str, str, str]]:
    """(subject, ballot, station) of every form, in ``order`` (``ORDERS``).

    Station by station: how forms arrive on election night, each polling
    station's five ballots together, so the log gets the five ballots' mix
    throughout (the mix whose average rate ``bench.election`` measured).
    Ballot by ballot: as ``bench.election`` writes them, all presidential
    forms (the smallest) and then the DPR's (four times the bytes).
    """
    if order == "ballot":
        yield from subjects(spec, stations)
        return
    for station in stations:
        for ballot in spec.ballots:
            yield tally_subject(ballot, station), ballot, station


def lag(
    forms: int, rate: float, work: Path, order: str, busy: int = 0
) -> dict[str, Any]:
    """The monitor's lag behind a log written at ``rate`` forms a second.

    ``busy``: that many processes spin on the CPU while the writer runs (a
    noisy neighbour, as on a shared machine).
    """
    env = bench_env()
    log_dir = work / "log"
    saksi(
        "init",
        "--origin",
        "bench.saksi.example/monitor",
        "--dir",
        str(log_dir),
        "--kdf",
        "interactive",
        env=env,
    )
    seed = os.urandom(32)
    now = dt.datetime.now(dt.UTC)
    spec = ElectionSpec()
    districts = list(district_bodies(DEFAULT_WILAYAH, DEFAULT_TPS, "31"))
    stations = stations_of(districts)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(log_dir, port, "--no-security-log", env=env)
    monitor = None
    try:
        wait_ready(url + "/healthz")
        key = VerifierKey.parse((log_dir / "log.vkey").read_text().strip())
        client = SaksiClient(url, key)
        admin = load_key_file(log_dir / "admin.key", PASS.encode())
        reader = Ed25519Signer("reader", seed)
        progress("setup: keys, regions, parties, candidate lists")
        _setup(client, spec, seed, now, admin, reader, districts, stations, {}, {})
        chosen = list(_in_order(spec, stations, order))[:forms]
        progress(f"signing {len(chosen):,} forms")
        with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
            made = list(
                pool.map(
                    _make_form,
                    [(spec, seed, now, *item) for item in chosen],
                    chunksize=500,
                )
            )
        envelopes = [envelope for envelope, _, _ in made]
        monitor, mport = _monitor(
            work / "m", url, url + "/log", log_dir / "log.vkey", ""
        )
        samples: list[tuple[float, int, int]] = []  # (time, log size, checked)
        writing = threading.Event()
        writing.set()

        # One client for the samples: a new one each time would build a TLS
        # context each time, a fifth of a core taken from what is measured.
        sampler_client = httpx.Client(timeout=5)

        def sample() -> None:
            while writing.is_set():
                t = time.monotonic()
                size = sampler_client.get(url + "/healthz").json()["tree_size"]
                checked = int(_metrics(mport)["saksi_monitor_checked_size"])
                samples.append((t, size, checked))
                time.sleep(max(0.0, 0.25 - (time.monotonic() - t)))

        sampler = threading.Thread(target=sample, daemon=True)
        _wait_checked(mport, httpx.get(url + "/healthz").json()["tree_size"], 120)
        progress(f"writing {len(envelopes):,} forms while the monitor follows")
        sampler.start()
        spinners = [
            subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(busy)
        ]
        try:
            started = time.monotonic()
            _send_paced(client, envelopes, rate)
            wrote = time.monotonic() - started
        finally:
            for spinner in spinners:
                spinner.kill()
                spinner.wait()
        during = list(samples)
        head = httpx.get(url + "/healthz").json()["tree_size"]
        caught = _wait_checked(mport, head, 600)
        writing.clear()
        sampler.join()
        sampler_client.close()
    finally:
        if monitor is not None:
            monitor.send_signal(signal.SIGTERM)
            monitor.wait(timeout=60)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    entries = [size - checked for _, size, checked in during]
    seconds = [_behind(during, i) for i in range(len(during))]
    return {
        "forms": len(envelopes),
        "write_seconds": wrote,
        "rate": len(envelopes) / wrote,
        "entries": entries,
        "seconds": seconds,
        "catch_up": caught,
        "samples": len(during),
    }


def _behind(samples: list[tuple[float, int, int]], i: int) -> float:
    """Seconds since the log first held an entry sample ``i``'s monitor lacks."""
    t, _, checked = samples[i]
    for when, size, _ in samples[: i + 1]:
        if size > checked:
            return t - when
    return 0.0


def _wait_checked(port: int, size: int, timeout: float) -> float:
    started = time.monotonic()
    while _metrics(port)["saksi_monitor_checked_size"] < size:
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"the monitor did not reach {size} in {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - started


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _wait(receiver: Any, alert: str, after: float, since: str) -> float:
    """Seconds from ``after`` to a new ``alert`` at the receiver."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        at = receiver.first(after, since, alert=alert)
        if at is not None:
            return at - after
        time.sleep(0.01)
    raise RuntimeError(f"no {alert} alert in 60 s")


def time_to_alert(trials: int, work: Path) -> dict[str, list[float]]:
    """Seconds from a fork (or a revoked key's write) to the alert's arrival."""
    sys.path.insert(0, str(ROOT))
    from tests.conftest import ORIGIN
    from tests.prom import Receiver
    from tests.recordlog import RecordLog
    from tests.tilelog import NoteKey, TileServer, view
    from verifier.dsse import sign_envelope
    from verifier.record import RECORD_PAYLOAD_TYPE, format_log_entry, format_timestamp

    seed = hashlib.sha256(b"bench-monitor").digest()
    log = RecordLog(f"sqlite:///{work / 'liar.db'}", Ed25519Signer(ORIGIN, seed))
    try:
        officer = Ed25519Signer("officer", hashlib.sha256(b"officer").digest())
        log.grant(officer, "tps", "")
        log.revoke(officer)
        entries = [log.ledger.reader.entry_bytes(i) for i in range(log.ledger.size)]
    finally:
        log.close()
    key = NoteKey(ORIGIN, seed)
    vkey = work / "liar.vkey"
    vkey.write_text(str(key.verifier_key) + "\n")
    tiles = TileServer()
    receiver = Receiver()
    tiles.serve(view(entries, key, ORIGIN))
    monitor, port = _monitor(work / "t", tiles.url, tiles.url, vkey, receiver.url)
    out: dict[str, list[float]] = {"fork": [], "revoked-key-write": []}
    try:
        _wait_checked(port, len(entries), 60)
        for n in range(trials):
            forked = list(entries)
            forked[n % len(forked)] = forked[n % len(forked)] + b" " * (n + 1)
            time.sleep(0.5 + (n % 4) * 0.23)  # not in step with the monitor's polls
            t, since = time.monotonic(), _now()
            tiles.serve(view(forked, key, ORIGIN))
            out["fork"].append(_wait(receiver, "fork", t, since))
            tiles.serve(view(entries, key, ORIGIN))
        grown = list(entries)
        for n in range(trials):
            payload = RecordLog.payload(
                log,
                "keys.grant/v1",
                f"keys/{hashlib.sha256(b'%d' % n).hexdigest()}",
                {
                    "keyid": hashlib.sha256(b"%d" % n).hexdigest(),
                    "public_key": "A" * 43 + "=",
                    "role": "tps",
                    "scope": "",
                    "holder": f"smuggled {n}",
                },
            )
            grown.append(
                format_log_entry(
                    sign_envelope(RECORD_PAYLOAD_TYPE, payload, [officer]),
                    format_timestamp(log.now() + dt.timedelta(minutes=5 + n)),
                )
            )
            time.sleep(0.5 + (n % 4) * 0.23)
            t, since = time.monotonic(), _now()
            tiles.serve(view(grown, key, ORIGIN))
            out["revoked-key-write"].append(
                _wait(receiver, "revoked-key-write", t, since)
            )
    finally:
        monitor.send_signal(signal.SIGTERM)
        monitor.wait(timeout=60)
        tiles.stop()
        receiver.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--forms", type=int, default=60_000)
    parser.add_argument(
        "--rate",
        type=float,
        default=1679.0,
        help="forms a second the writer sends (default: the whole country's "
        "rate bench.election measured on SQLite here)",
    )
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument(
        "--orders",
        default="station,ballot",
        help="the orders to write the forms in, one run each: station (each "
        "station's five ballots together, as they arrive) and ballot (ballot "
        "by ballot, as bench.election writes them)",
    )
    parser.add_argument(
        "--busy",
        type=int,
        default=0,
        help="also run each order with this many processes spinning on the "
        "CPU while the writer runs (a noisy neighbour taking a core)",
    )
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args(argv)
    orders = args.orders.split(",")
    if not orders or not set(orders) <= set(ORDERS):
        parser.error(f"--orders: a comma-separated list of {', '.join(ORDERS)}")
    if not 0 <= args.busy <= 64:
        parser.error("--busy: 0 to 64 spinning processes")
    work = Path(tempfile.mkdtemp(prefix="saksi-bench-monitor-"))
    (work / "t").mkdir()
    progress("time to alert")
    alerts = time_to_alert(args.trials, work)
    runs = {}
    for order in orders:
        for busy in sorted({0, args.busy}):
            label = ORDERS[order] + (
                f", {busy} core{'s' if busy > 1 else ''} taken by a spinning process"
                if busy
                else ""
            )
            progress(f"the monitor's lag behind the writer, forms {label}")
            run = work / f"{order}-{busy}"
            (run / "m").mkdir(parents=True)
            runs[label] = lag(args.forms, args.rate, run, order, busy)
    lines = [
        "## The security monitor: lag behind the writer, time to alert",
        "",
        f"Command: `python -m bench.monitor --forms {args.forms} --rate "
        f"{args.rate:g} --trials {args.trials} --orders {args.orders}"
        + (f" --busy {args.busy}" if args.busy else "")
        + "` (writes this section).",
        "",
        machine("Server (SQLite), writer and monitor share the cores."),
        "",
        "### Lag while the writer runs",
        "",
        f"{args.forms:,} signed tallies of DKI Jakarta's stations, paced to "
        f"{args.rate:,.0f}/s (the whole country's rate `bench.election` measured "
        "on this machine on SQLite, over all five ballots; batches of 500, 3 in "
        "flight), while `saksi monitor` followed through the tiles (checkpoint "
        "read every half second, its default); samples 0.25 s apart. Station "
        "by station is how forms arrive (each station's five ballots "
        "together); ballot by ballot puts the heaviest forms (the DPR's: "
        "party ballots with hundreds of counts, four times a presidential "
        "form's bytes) in one stretch at the average rate."
        + (
            f" With a core taken: {args.busy} more process"
            f"{'es' if args.busy > 1 else ''} spinning on the CPU while the "
            "writer runs, as a noisy neighbour on a shared machine does."
            if args.busy
            else ""
        ),
        "",
        "| forms | written at | samples | entries behind p50 / p99 / max "
        "| seconds behind p50 / p99 / max | caught up after the writer |",
        "|---|---|---|---|---|---|",
    ]
    for label, figures in runs.items():
        entries, seconds = figures["entries"], figures["seconds"]
        lines.append(
            f"| {label} | {figures['rate']:,.0f}/s | {figures['samples']} "
            f"| {statistics.median(entries):,.0f} / {pct(entries, 0.99):,.0f} / "
            f"{max(entries):,} | {statistics.median(seconds):.1f} / "
            f"{pct(seconds, 0.99):.1f} / {max(seconds):.1f} s "
            f"| {figures['catch_up']:.1f} s |"
        )
    lines += [
        "",
        "### Time to alert (the monitor's webhook, at the receiver)",
        "",
        "| attack | trials | median | max |",
        "|---|---|---|---|",
    ]
    for name, values in alerts.items():
        lines.append(
            f"| {name} | {len(values)} | {statistics.median(values):.2f} s "
            f"| {max(values):.2f} s |"
        )
    lines += [
        "",
        "Through Prometheus and Alertmanager add a scrape interval, a rule "
        "evaluation and Alertmanager's `group_wait` to these (the end-to-end test "
        "`tests/integration/test_alerting_e2e.py` runs that path).",
    ]
    write_section(args.out, "monitor", "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
