"""What the metrics and the security event log cost on the write path.

    python -m bench.metrics_cost [--count 4000] [--rounds 3] [--out BENCHMARKS.md]

One fresh SQLite log served by ``saksi serve`` (its own process, 127.0.0.1),
restarted for each variant, the variants interleaved round by round so that a
noisy neighbour hits them alike:

* ``--no-metrics --no-security-log`` (the baseline),
* metrics on (the default), security log off,
* metrics on and the security event log written to a file beside the
  database, and on another file system (tmpfs), to tell the cost of making
  the events from the cost of storing them.

Each round and variant appends ``--count`` fresh signed records with 64
concurrent clients, one envelope per request, then as many in batches of 100.
Writes BENCHMARKS.md's ``metrics`` section: the median appends/s of each
variant and its ratio to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import tempfile
from pathlib import Path

from bench.http import (
    PASS,
    CpuMeter,
    bench_env,
    envelopes,
    free_port,
    progress,
    run_writes,
    saksi,
    start_server,
    wait_ready,
)
from bench.report import machine, write_section
from keys import load_key_file

VARIANTS = {
    "metrics off (baseline)": ["--no-metrics", "--no-security-log"],
    "metrics on": ["--no-security-log"],
    "metrics on, security log beside the database": [
        "--security-log",
        "{dir}/security.log",
    ],
    "metrics on, security log on another file system (tmpfs)": [
        "--security-log",
        "{shm}/security.log",
    ],
}
CASES = [(64, 1), (64, 100)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=4000, help="appends per case")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="saksi-metrics-"))
    env = bench_env()
    shm = Path(tempfile.mkdtemp(prefix="saksi-metrics-", dir="/dev/shm"))
    log = tmp / "log"
    saksi(
        "init",
        "--origin",
        "bench.saksi.example/metrics",
        "--dir",
        str(log),
        "--kdf",
        "interactive",
        env=env,
    )
    admin = load_key_file(log / "admin.key", PASS.encode())
    rates: dict[tuple[str, tuple[int, int]], list[float]] = {}
    cpu: dict[tuple[str, tuple[int, int]], list[float]] = {}
    for round_ in range(args.rounds):
        for number, (name, flags) in enumerate(VARIANTS.items()):
            progress(f"round {round_ + 1}/{args.rounds}: {name}")
            port = free_port()
            server = start_server(
                log, port, *(f.format(dir=tmp, shm=shm) for f in flags), env=env
            )
            try:
                wait_ready(f"http://127.0.0.1:{port}/healthz")
                for case in CASES:
                    clients, batch = case
                    work = envelopes(admin, args.count, f"r{round_}v{number}b{batch}-")
                    meter = CpuMeter(server.pid)
                    rate, _ = asyncio.run(run_writes(port, work, clients, batch))
                    rates.setdefault((name, case), []).append(rate)
                    cpu.setdefault((name, case), []).append(meter.per(args.count)[0])
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=30)
    baseline = next(iter(VARIANTS))
    lines = [
        "## The cost of metrics and the security event log on the write path",
        "",
        f"Command: `python -m bench.metrics_cost --count {args.count} --rounds "
        f"{args.rounds}` (writes this section).",
        "",
        machine(
            "One `saksi serve` on SQLite, restarted per variant, variants "
            "interleaved per round; 64 concurrent clients; median appends/s over "
            "the rounds (each round's figures in brackets)."
        ),
        "",
        "| variant | envelopes per request | appends/s | vs metrics off "
        "| server CPU per append | vs metrics off |",
        "|---|---|---|---|---|---|",
    ]
    for name in VARIANTS:
        for case in CASES:
            values = rates[(name, case)]
            median = statistics.median(values)
            base = statistics.median(rates[(baseline, case)])
            each = ", ".join(f"{v:,.0f}" for v in values)
            used = statistics.median(cpu[(name, case)])
            base_cpu = statistics.median(cpu[(baseline, case)])
            lines.append(
                f"| {name} | {case[1]} | {median:,.0f} [{each}] "
                f"| {median / base:.3f} | {used:,.0f} µs | {used / base_cpu:.3f} |"
            )
    lines += [
        "",
        "Throughput on this shared 2-core machine moves by up to 10% from one "
        "round to the next (the brackets); the server's CPU time per append "
        "(user + system of its process over the case) is the steadier measure "
        "of what the metrics and the security log cost.",
    ]
    write_section(args.out, "metrics", "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
