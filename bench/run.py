"""Saksi log benchmark: durable appends and proof building against physical limits.

    python -m bench.run [--sizes 10000,100000] [--backends sqlite,postgres]
        [--peer-size N] [--out BENCHMARKS.md]

Measures, in one run on this machine, with ~600-byte entries:
  * limits: SHA-256 leaf+node hashing, Ed25519 signing, raw SQL commit rate of
    1,000-row batches (SQLAlchemy Core, same durability settings);
  * Saksi: durable appends/s through append_many (batch) and from 64 concurrent
    single-entry callers, at each size; proof building latency at the largest size;
  * peer: pymerkle (SQLite backend) appending and proving the same entries.
Figures are reported as ratios to the baselines measured in the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import nacl.signing
import sqlalchemy as sa

from keys import Ed25519Signer
from ledger.checkpoint import CheckpointPublisher
from ledger.ledger import Ledger
from ledger.storage.sql import Head, LogMeta, SqlStorage
from verifier.rfc6962 import EMPTY_ROOT, hash_children, hash_leaf

ORIGIN = "bench.saksi.example/log"
ENTRY = 600


def entries(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(ENTRY) for _ in range(count)]


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else float("inf")


def limit_hashing() -> float:
    data = entries(200_000, 1)
    t = time.perf_counter()
    leaves = [hash_leaf(d) for d in data]
    for i in range(0, len(leaves) - 1, 2):
        hash_children(leaves[i], leaves[i + 1])
    return rate(len(data), time.perf_counter() - t)


def limit_signing() -> float:
    key = nacl.signing.SigningKey(bytes(32))
    t = time.perf_counter()
    for i in range(20_000):
        key.sign(i.to_bytes(8, "big") * 12)
    return rate(20_000, time.perf_counter() - t)


def limit_commits(url: str, total: int = 100_000) -> float:
    storage = SqlStorage.open(url)
    engine = storage.engine
    meta = sa.MetaData()
    table = sa.Table(
        "bench_rows",
        meta,
        sa.Column("idx", sa.BigInteger, primary_key=True),
        sa.Column("h", sa.LargeBinary),
        sa.Column("data", sa.LargeBinary),
    )
    meta.create_all(engine)
    data = entries(total, 2)
    t = time.perf_counter()
    for start in range(0, total, 1000):
        with engine.begin() as conn:
            conn.execute(
                sa.insert(table),
                [
                    {"idx": i, "h": hashlib.sha256(data[i]).digest(), "data": data[i]}
                    for i in range(start, min(total, start + 1000))
                ],
            )
    elapsed = time.perf_counter() - t
    storage.close()
    return rate(total, elapsed)


def new_ledger(url: str) -> Ledger:
    signer = Ed25519Signer(ORIGIN, bytes(range(32)))
    storage = SqlStorage.open(url)
    storage.migrate()
    note = CheckpointPublisher(ORIGIN, signer, signer.verifier_key).sign(0, EMPTY_ROOT)
    storage.initialize(
        LogMeta(ORIGIN, str(signer.verifier_key)),
        Head(0, EMPTY_ROOT, note, int(time.time() * 1000)),
    )
    ledger = Ledger(storage, signer, signer.verifier_key, ORIGIN, clock=time.time)
    ledger.start()
    return ledger


def saksi_appends(url: str, sizes: list[int], progress) -> dict[str, object]:
    ledger = new_ledger(url)
    out: dict[str, object] = {"batch": {}, "single": {}}
    seed = 10
    for size in sizes:
        # Grow to the size through the batch interface, timing the last stretch.
        todo = size - ledger.size
        stretch = min(todo, max(10_000, size // 10))
        while ledger.size < size - stretch:
            n = min(50_000, size - stretch - ledger.size)
            seed += 1
            ledger.append_many(entries(n, seed))
            progress(f"  {ledger.size:,}/{size:,}")
        data = entries(stretch, seed + 1000)
        seed += 1
        t = time.perf_counter()
        for i in range(0, stretch, 5000):
            ledger.append_many(data[i : i + 5000])
        out["batch"][size] = rate(stretch, time.perf_counter() - t)
        # 64 concurrent single-entry callers at this size (not counted in the size).
        single = entries(6400, seed + 2000)
        chunks = [single[i::64] for i in range(64)]
        t = time.perf_counter()
        threads = [
            threading.Thread(target=lambda c=c: [ledger.append(e) for e in c])
            for c in chunks
        ]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        out["single"][size] = rate(len(single), time.perf_counter() - t)
        progress(
            f"  {size:,}: batch {out['batch'][size]:,.0f}/s, "
            f"single {out['single'][size]:,.0f}/s"
        )
    # Proof building at the final size (cold reader per proof, warm tile cache).
    n = ledger.size
    rng = random.Random(5)
    lat_inc, lat_con = [], []
    for _ in range(2000):
        i = rng.randrange(n)
        t = time.perf_counter()
        ledger.inclusion_proof(i)
        lat_inc.append(time.perf_counter() - t)
        m = rng.randrange(1, n)
        t = time.perf_counter()
        ledger.consistency_proof(m)
        lat_con.append(time.perf_counter() - t)
    out["proof"] = {"size": n, "inclusion": lat_inc, "consistency": lat_con}
    ledger.close()
    ledger.storage.close()
    return out


def pymerkle_peer(count: int, tmp: Path) -> dict[str, float]:
    from pymerkle import SqliteTree

    tree = SqliteTree(str(tmp / "pymerkle.db"))
    data = entries(count, 77)
    t = time.perf_counter()
    for d in data:
        tree.append_entry(d)
    append_rate = rate(count, time.perf_counter() - t)
    rng = random.Random(3)
    lat = []
    for _ in range(500):
        i = rng.randrange(1, count + 1)
        t = time.perf_counter()
        tree.prove_inclusion(i, count)
        lat.append(time.perf_counter() - t)
    return {"append": append_rate, "proof_median": statistics.median(lat)}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--peer-size", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="saksi-bench-"))
    results: dict[str, object] = {}
    progress("limits: hashing, signing")
    hashing, signing = limit_hashing(), limit_signing()
    cluster = None
    urls = {}
    for backend in args.backends.split(","):
        if backend == "sqlite":
            urls["sqlite"] = (
                f"sqlite:///{tmp / 'limit.db'}",
                f"sqlite:///{tmp / 'log.db'}",
            )
        else:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            from tests.pg import PgCluster, find_pg_bin

            cluster = PgCluster(find_pg_bin())
            cluster.start()
            urls["postgres"] = (cluster.new_database(), cluster.new_database())
    try:
        for backend, (limit_url, log_url) in urls.items():
            progress(f"{backend}: raw commit rate")
            commits = limit_commits(limit_url)
            progress(f"{backend}: saksi appends")
            results[backend] = {
                "commits": commits,
                **saksi_appends(log_url, sizes, progress),
            }
        progress(f"peer: pymerkle sqlite, {args.peer_size:,} entries")
        peer = pymerkle_peer(args.peer_size, tmp)
    finally:
        if cluster is not None:
            cluster.stop()
    write_report(args, sizes, hashing, signing, results, peer)
    return 0


def write_report(args, sizes, hashing, signing, results, peer) -> None:
    cmd = "python -m bench.run " + " ".join(
        f"--{k.replace('_', '-')} {v}"
        for k, v in (
            ("sizes", args.sizes),
            ("backends", args.backends),
            ("peer_size", args.peer_size),
        )
    )
    lines = [
        "# Benchmarks",
        "",
        f"Command: `{cmd}` (writes this file).",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.platform()}; "
        f"measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "Shared, noisy machine: read the ratios, which are measured in the same run.",
        "",
        "## Limits measured in this run",
        "",
        f"* SHA-256 leaf + node hashing of 600-byte entries: {hashing:,.0f} entries/s",
        f"* Ed25519 signing: {signing:,.0f} signatures/s",
    ]
    for backend, r in results.items():
        lines.append(
            f"* {backend}: raw SQL commits of 1,000-row batches: "
            f"{r['commits']:,.0f} rows/s"
        )
    lines += [
        "",
        "## Durable appends (acknowledged after commit, with receipts)",
        "",
        "| backend | size | batch interface /s | vs raw commits | 64 concurrent "
        "single callers /s | vs raw commits |",
        "|---|---|---|---|---|---|",
    ]
    for backend, r in results.items():
        for size in sizes:
            b, s = r["batch"][size], r["single"][size]
            lines.append(
                f"| {backend} | {size:,} | {b:,.0f} | {b / r['commits']:.2f} "
                f"| {s:,.0f} | {s / r['commits']:.3f} |"
            )
    lines += [
        "",
        "## Proof building (from stored tiles, warm tile cache)",
        "",
        "| backend | size | inclusion median | p99 | consistency median | p99 |",
        "|---|---|---|---|---|---|",
    ]
    for backend, r in results.items():
        p = r["proof"]
        us = 1e6
        lines.append(
            f"| {backend} | {p['size']:,} "
            f"| {statistics.median(p['inclusion']) * us:.0f} µs "
            f"| {pct(p['inclusion'], 0.99) * us:.0f} µs "
            f"| {statistics.median(p['consistency']) * us:.0f} µs "
            f"| {pct(p['consistency'], 0.99) * us:.0f} µs |"
        )
    first = next(iter(results.values()))
    lines += [
        "",
        "## Peer: pymerkle (SQLite backend)",
        "",
        f"* pymerkle appends one by one: {peer['append']:,.0f}/s at "
        f"{args.peer_size:,} entries; Saksi batch interface at "
        f"{sizes[0]:,} on {next(iter(results))}: "
        f"{first['batch'][sizes[0]] / peer['append']:.1f}x",
        f"* pymerkle inclusion proof median: {peer['proof_median'] * 1e6:.0f} µs; "
        f"Saksi at {first['proof']['size']:,}: "
        f"{peer['proof_median'] / statistics.median(first['proof']['inclusion']):.1f}x"
        " faster",
        "",
    ]
    args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
