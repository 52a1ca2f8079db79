"""Audit benchmark: ``saksi-verify audit`` of a Saksi log, over HTTP and from a bundle.

    python -m bench.audit [--entries 1000000] [--log DIR] [--sources http,bundle]
                          [--out BENCHMARKS.md] [--section audit]

The log is ``--log DIR`` (any Saksi log directory, e.g. the one
``bench.election`` keeps: ``/tmp/saksi-election-sqlite-*/log``) or else one built
here: ``--entries`` records, nearly all of them signed forms of a synthetic
election on the commission's real region codes (districts in code order until
there are enough stations), checked and appended in process; it is kept in
``/tmp/saksi-audit-log-<entries>`` for the next run.

In the same run, the ceilings: Ed25519 verifications per second on one core and
on every core (one process each), and RFC 6962 leaf hashing per second. Then
``saksi serve`` serves the log on 127.0.0.1 and ``saksi-verify audit --fresh``
(one worker process per core) reads and replays it over HTTP; then
``saksi-verify bundle`` writes it to one file and the audit runs again from the
bundle (``--sources http`` leaves the bundle out: on a log of millions of
entries it doubles the run). For each: entries/s, total time, the ratio to the
all-core Ed25519 ceiling, and the peak memory of the verifier (its process and
its workers, sampled from /proc). Last, where an entry's CPU goes: 30,000
entries audited in one process with each stage timed (after the first 30,000,
replayed but not counted). Writes
``BENCHMARKS.md``'s ``audit`` section (or ``--section``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import nacl.signing

from bench.election import _make_form, setup_records
from bench.http import PASS, free_port, progress, saksi, start_server, wait_ready
from bench.report import write_section
from domains.regions import DEFAULT_TPS, DEFAULT_WILAYAH, district_bodies
from domains.synthetic import ElectionSpec, subjects
from keys import Ed25519Signer, load_key_file
from verifier.rfc6962 import hash_leaf

ROOT = Path(__file__).resolve().parent.parent
STAGE_SAMPLE = 30_000  # entries audited in one process to apportion the CPU
ENV = {**os.environ, "SAKSI_KEY_PASSPHRASE": PASS}


def _verify_many(count: int) -> float:
    key = nacl.signing.SigningKey(bytes(32))
    message = b"x" * 1200  # about a form's payload
    signature = key.sign(message).signature
    verify = key.verify_key
    t = time.perf_counter()
    for _ in range(count):
        verify.verify(message, signature)
    return time.perf_counter() - t


def ceilings() -> dict[str, float]:
    """Ed25519 verifications/s on one core and on all, leaf hashes/s."""
    one = 20_000 / _verify_many(20_000)
    cores = os.cpu_count() or 1
    with ProcessPoolExecutor(cores) as pool:
        list(pool.map(_verify_many, [2_000] * cores))  # warm up
        t = time.perf_counter()
        list(pool.map(_verify_many, [20_000] * cores))
        every = 20_000 * cores / (time.perf_counter() - t)
    data = [os.urandom(1800) for _ in range(50_000)]
    t = time.perf_counter()
    for item in data:
        hash_leaf(item)
    hashing = len(data) / (time.perf_counter() - t)
    return {"verify_one": one, "verify_all": every, "hash": hashing, "cores": cores}


def build_log(entries: int, log_dir: Path | None = None) -> Path:
    """A Saksi log of about ``entries`` records of the synthetic national election.

    In ``log_dir`` (default: a directory in the temporary directory, kept for
    later runs); the districts are taken in the region table's order, province
    11 first, until their stations' forms make ``entries``.
    """
    from cli.local import open_service

    if log_dir is None:
        log_dir = Path(tempfile.gettempdir()) / f"saksi-audit-log-{entries}"
    if (log_dir / "built").exists():
        return log_dir
    if log_dir.exists():
        subprocess.run(["rm", "-rf", str(log_dir)], check=True)
    init = ["init", "--origin", "bench.saksi.example/audit", "--dir", str(log_dir)]
    saksi(*init, "--kdf", "interactive", env=ENV)
    admin = load_key_file(log_dir / "admin.key", PASS.encode())
    spec = ElectionSpec()
    districts, stations = [], []
    for code, body in district_bodies(DEFAULT_WILAYAH, DEFAULT_TPS, ""):
        districts.append((code, body))
        stations += [
            f"{v}{n:03d}" for v, i in body["villages"].items() for n in i["tps"]
        ]
        if len(stations) * len(spec.ballots) >= entries:
            break
    os.environ["SAKSI_KEY_PASSPHRASE"] = PASS
    service = open_service(log_dir, None, None)
    now = dt.datetime.now(dt.UTC)
    seed = os.urandom(32)
    keys = {
        "reader": Ed25519Signer("reader", seed),
        "lists": Ed25519Signer.generate("lists"),
        "parties": Ed25519Signer.generate("parties"),
    }
    setup = [
        r
        for phase in setup_records(spec, now, admin, keys, districts, stations)
        for r in phase
    ]
    try:
        for envelope in setup:
            service.ledger.submit(service.writer.prepare(envelope))
        every = list(subjects(spec, stations))[: max(0, entries - len(setup) - 1)]
        progress(f"  building a log of {len(every) + len(setup) + 1:,} entries")
        with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
            for start in range(0, len(every), 20_000):
                made = pool.map(
                    _make_form,
                    [
                        (spec, seed, now, *item)
                        for item in every[start : start + 20_000]
                    ],
                    chunksize=500,
                )
                subs = [service.writer.prepare(envelope) for envelope, _, _ in made]
                for i in range(0, len(subs), 500):
                    for outcome in service.ledger.submit_many(subs[i : i + 500]):
                        if isinstance(outcome, Exception):
                            raise RuntimeError(f"refused: {outcome}")
                progress(f"    {start + len(subs):,}")
    finally:
        service.close()
    (log_dir / "built").write_text("ok\n")
    return log_dir


# What ``examine`` and ``Auditor.apply`` call, timed where the auditor calls it:
# each stage's functions, as (module, name or Class.method).
STAGES = {
    "entry: leaf hash": (("verifier.fullaudit.examiner", "hash_leaf"),),
    "entry: parse (canonical JSON, DSSE envelope)": (
        ("verifier.fullaudit.examiner", "parse_log_entry"),
    ),
    "record: parse (canonical JSON, fields)": (
        ("verifier.fullaudit.examiner", "parse_record"),
        ("verifier.fullaudit.auditor", "parse_record"),
        ("verifier.fullaudit.store", "parse_record"),
    ),
    "schema": (("verifier.fullaudit.examiner", "check"),),
    "signatures (DSSE, Ed25519)": (("verifier.fullaudit.examiner", "verify_envelope"),),
    "arithmetic rules": (("verifier.fullaudit.examiner", "tally_flags"),),
    "totals and their JSON": (
        ("verifier.fullaudit.examiner", "totals_of"),
        ("verifier.fullaudit.examiner", "compact_json"),
        ("verifier.fullaudit.auditor", "compact_json"),
    ),
    "election state": (("verifier.rules.state", "ElectionState.check"),),
}


def stage_costs(log_dir: Path, count: int) -> dict[str, Any] | None:
    """CPU µs per entry of each audit stage: one process, ``count`` entries.

    The real ``Auditor`` replays the log's first ``2 * count`` entries (read from
    its SQLite file; None if it has none) with each stage's function wrapped in a
    timer, and the second half is counted: past the keys, regions and lists at
    the start of a log, where the forms are. "The rest" is the auditor's own
    work in log order (key registry, revision chains, duplicates, its SQLite
    state) and the glue between stages.
    """
    import importlib
    import sqlite3

    from verifier.fullaudit import Auditor

    if not (log_dir / "saksi.db").exists():
        return None
    spent = dict.fromkeys(STAGES, 0.0)
    calls = [0]
    undo = []

    def timed(name: str, function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            t = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] += time.process_time() - t

        return wrapper

    for name, functions in STAGES.items():
        for module, attr in functions:
            owner: Any = importlib.import_module(module)
            if "." in attr:
                cls, attr = attr.split(".")
                owner = getattr(owner, cls)
            undo.append((owner, attr, getattr(owner, attr)))
            setattr(owner, attr, timed(name, getattr(owner, attr)))
    db = sqlite3.connect(f"file:{log_dir / 'saksi.db'}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT idx, data FROM entries WHERE idx < ? ORDER BY idx", (2 * count,)
        ).fetchall()
        auditor = Auditor()
        first = len(rows) - min(count, len(rows) // 2)  # the counted half
        for index, data in rows[:first]:
            auditor.add(index, bytes(data))
        calls[0] = 0
        spent.update(dict.fromkeys(spent, 0.0))
        rows = rows[first:]
        t = time.process_time()
        for index, data in rows:
            auditor.add(index, bytes(data))
        total = time.process_time() - t
    finally:
        db.close()
        for owner, attr, original in undo:
            setattr(owner, attr, original)
    t = time.process_time()
    for _ in range(100_000):
        time.process_time()
    timer = (time.process_time() - t) / 100_000 * 2  # two reads per call
    per = 1e6 / len(rows)
    costs = {name: seconds * per for name, seconds in spent.items()}
    costs["the rest (auditor in log order, glue)"] = total * per - sum(costs.values())
    return {
        "entries": len(rows),
        "first": first,
        "total": total * per,
        "stages": costs,
        "timers": calls[0] * timer * per,
    }


def _rss(pid: int) -> int:
    """Resident bytes of ``pid`` and its children (Linux /proc), 0 if gone."""
    total = 0
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for each in [str(pid), *children]:
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def timed_verify(*args: str) -> tuple[float, int, dict[str, Any]]:
    """(seconds, peak bytes, JSON report) of one saksi-verify run."""
    # The report goes to a file: a pipe nobody reads while polling would fill.
    with tempfile.TemporaryFile("w+", encoding="utf-8") as sink:
        t = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "verifier.cli", *args, "--json"],
            stdout=sink,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _rss(proc.pid))
            time.sleep(0.2)
        seconds = time.perf_counter() - t
        sink.seek(0)
        out = sink.read()
    report = json.loads(out) if out.strip().startswith("{") else {"error": out[-500:]}
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"saksi-verify {args[0]} failed: {report}")
    return seconds, peak, report


def _run(
    seconds: float, peak: int, report: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """One audit's figures for the report, from ``timed_verify``'s answer."""
    return {
        "seconds": seconds,
        "peak": peak,
        "size": report["tree_size"],
        "passed": report["passed"],
        **extra,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--log", type=Path, help="an existing Saksi log directory")
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument(
        "--section",
        default="audit",
        help="the BENCHMARKS.md section written (e.g. audit-country for --log of "
        "the whole-country election)",
    )
    parser.add_argument(
        "--sources",
        default="http,bundle",
        help="what is audited: http, bundle or both (the bundle is written over HTTP)",
    )
    args = parser.parse_args(argv)
    sources = set(args.sources.split(","))
    if sources - {"http", "bundle"}:
        parser.error("--sources takes http, bundle or http,bundle")
    progress("ceilings: Ed25519 verify (one core, every core), leaf hashing")
    limits = ceilings()
    log_dir = args.log or build_log(args.entries)
    key = (log_dir / "log.vkey").read_text().strip()
    state = Path(tempfile.mkdtemp(prefix="saksi-audit-state-"))
    port = free_port()
    server = start_server(
        log_dir,
        port,
        env={**ENV, "SAKSI_CLIENT_RATE": "1000000", "SAKSI_CLIENT_BURST": "1000000"},
    )
    url = f"http://127.0.0.1:{port}"
    runs: dict[str, dict[str, Any]] = {}
    try:
        wait_ready(url + "/healthz")
        common = ["--key", key, "--state", str(state), "--fresh"]
        if "http" in sources:
            progress("audit over HTTP")
            runs["http"] = _run(*timed_verify("audit", "--log", url, *common))
        bundle = state / "log.bundle"
        if "bundle" in sources:
            progress("bundle")
            b_seconds, _, _ = timed_verify(
                "bundle", "--log", url, "--key", key, "--out", str(bundle)
            )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    if "bundle" in sources:
        progress("audit of the bundle")
        runs["bundle"] = _run(
            *timed_verify("audit", "--bundle", str(bundle), *common),
            written_in=b_seconds,
            bytes=bundle.stat().st_size,
        )
    progress("where an entry's CPU goes (one process)")
    costs = stage_costs(log_dir, STAGE_SAMPLE)
    write_report(args, log_dir, limits, runs, costs)
    return 0


def write_report(
    args: argparse.Namespace,
    log_dir: Path,
    limits: dict[str, float],
    runs: dict[str, dict[str, Any]],
    costs: dict[str, Any] | None,
) -> None:
    lines = [
        "## The observer's audit: saksi-verify audit of a Saksi log",
        "",
        "Command: `python -m bench.audit "
        + (f"--log {log_dir}" if args.log else f"--entries {args.entries}")
        + ("" if args.section == "audit" else f" --section {args.section}")
        + ("" if args.sources == "http,bundle" else f" --sources {args.sources}")
        + "`. Machine: "
        f"{platform.machine()}, {limits['cores']:.0f} cores, Python "
        f"{platform.python_version()}; measured "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
        f"{multiprocessing.cpu_count()} worker processes check entries; the server "
        "(over HTTP) shares the cores.",
        "",
        "* ceilings measured in this run: Ed25519 verify "
        f"{limits['verify_one']:,.0f}/s on one core, {limits['verify_all']:,.0f}/s "
        "on all cores; RFC 6962 leaf "
        f"hashing of 1.8 KB entries {limits['hash']:,.0f}/s",
        "",
        "| source | entries | time | entries/s | vs all-core Ed25519 | peak memory | "
        "verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, run in runs.items():
        rate = run["size"] / run["seconds"]
        lines.append(
            f"| {name} | {run['size']:,} | {run['seconds']:,.1f} s | {rate:,.0f} | "
            f"{rate / limits['verify_all']:.2f} | {run['peak'] / 2**20:,.0f} MiB | "
            f"{'passed' if run['passed'] else 'FAILED'} |"
        )
    lines.append("")
    if "bundle" in runs:
        bundle = runs["bundle"]
        lines.append(
            f"The bundle ({bundle['bytes'] / 2**20:,.0f} MiB) was written from the "
            f"log over HTTP in {bundle['written_in']:,.1f} s."
        )
    for name, run in runs.items():
        lines.append(
            f"A national election (about 4.1 million forms) at the {name} rate: "
            f"{4_100_805 / (run['size'] / run['seconds']) / 60:,.1f} min."
        )
    if costs is not None:
        lines += _stage_lines(limits, costs)
    write_section(args.out, args.section, "\n".join(lines))


def _stage_lines(limits: dict[str, float], costs: dict[str, Any]) -> list[str]:
    verify_us = 1e6 / limits["verify_one"]
    return [
        "",
        "Where an entry's CPU goes: the audit, in one process, of "
        f"{costs['entries']:,} entries from index {costs['first']:,} (the ones "
        "before replayed first), each stage timed where the auditor calls it "
        f"(CPU time; the timers themselves cost about {costs['timers']:.0f} µs "
        f"per entry, counted in the figures). One raw Ed25519 verification cost "
        f"{verify_us:.0f} µs in this run.",
        "",
        "| stage | µs per entry | share |",
        "|---|---|---|",
        *(
            f"| {name} | {us:,.0f} | {us / costs['total']:.0%} |"
            for name, us in costs["stages"].items()
        ),
        f"| all | {costs['total']:,.0f} | |",
        "",
        f"At {costs['total']:,.0f} µs of CPU per entry, {limits['cores']:.0f} cores "
        f"audit at most {limits['cores'] * 1e6 / costs['total']:,.0f} entries/s "
        f"({limits['cores'] * 1e6 / costs['total'] / limits['verify_all']:.2f} of the "
        "all-core Ed25519 ceiling), before the cost of handing entries between "
        "processes and, over HTTP, the server's share of the cores.",
    ]


if __name__ == "__main__":
    raise SystemExit(main())
