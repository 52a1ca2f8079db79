"""Saksi log benchmark: durable appends and proof building against physical limits.

    python -m bench.run [--sizes 10000,100000,1000000] [--backends sqlite,postgres]
        [--peer-size N] [--out BENCHMARKS.md]

Measures, in one run on this machine, with ~600-byte entries:
  * limits: SHA-256 leaf+node hashing, Ed25519 signing, raw SQL commit rate of
    2,500-row batches into a table laid out like the log's entries, at each size
    (SQLAlchemy Core, same durability settings);
  * Saksi: durable appends/s through append_many (4 concurrent batch callers),
    from 64 threads and from 1,024 asyncio tasks appending one entry each, and
    resident memory, at each size; proof building latency at the largest size;
  * peer: pymerkle (SQLite backend, WAL) appending (bulk and one by one) and
    proving at --peer-size entries.
Figures are reported as ratios to the baselines measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
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

from bench.report import write_section
from keys import Ed25519Signer
from ledger.ledger import Ledger
from ledger.publisher import CheckpointPublisher
from ledger.storage.rows import Head, LogMeta
from ledger.storage.sql import SqlStorage
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


def limit_commits(url: str, sizes: list[int], progress) -> dict[int, float]:
    """Raw SQL commit rate at each size: the same table layout, index and insert
    statement as the log's entries, 2,500-row commits, same durability.

    Leaf hashes arrive in random order, so the index gets costlier as it grows:
    this is the floor under every append at that size.
    """
    storage = SqlStorage.open(url)
    engine = storage.engine
    meta = sa.MetaData()
    sa.Table(
        "bench_rows",
        meta,
        sa.Column("idx", sa.BigInteger, primary_key=True),
        sa.Column("k", sa.BigInteger, nullable=False, index=True),
        sa.Column("h", sa.LargeBinary),
        sa.Column("data", sa.LargeBinary),
    )
    meta.create_all(engine)
    out: dict[int, float] = {}
    filled = 0

    if storage.dialect == "postgresql":
        sql = (
            "INSERT INTO bench_rows (idx, k, h, data) SELECT * FROM "
            "unnest(%b::bigint[], %b::bigint[], %b::bytea[], %b::bytea[])"
        )
    else:
        sql = "INSERT INTO bench_rows (idx, k, h, data) VALUES (?, ?, ?, ?)"

    def insert(count: int, chunk: int) -> None:
        nonlocal filled
        data = entries(count, filled)
        for start in range(0, count, chunk):
            rows = []
            for i in range(start, min(count, start + chunk)):
                h = hashlib.sha256(b"\0" + data[i]).digest()
                rows.append(
                    (filled + i, int.from_bytes(h[:8], "big", signed=True), h, data[i])
                )
            params = (
                tuple([list(c) for c in zip(*rows, strict=True)])
                if storage.dialect == "postgresql"
                else rows
            )
            with engine.begin() as conn:
                conn.exec_driver_sql(sql, params)
        filled += count

    for size in sizes:
        stretch = max(20_000, size // 20)
        while filled < size - stretch:
            insert(min(50_000, size - stretch - filled), 50_000)
            progress(f"  raw {filled:,}/{size:,}")
        t = time.perf_counter()
        insert(stretch, 2500)
        out[size] = rate(stretch, time.perf_counter() - t)
        progress(f"  raw at {filled:,}: {out[size]:,.0f} rows/s")
    storage.close()
    return out


def new_ledger(url: str) -> Ledger:
    signer = Ed25519Signer(ORIGIN, bytes(range(32)))
    storage = SqlStorage.open(url)
    storage.migrate()
    note = CheckpointPublisher(ORIGIN, signer, signer.verifier_key).sign(0, EMPTY_ROOT)
    storage.initialize(
        LogMeta(ORIGIN, str(signer.verifier_key)),
        Head(0, EMPTY_ROOT, note, int(time.time() * 1000)),
    )
    ledger = Ledger.of_entries(
        storage, signer, signer.verifier_key, ORIGIN, clock=time.time
    )
    ledger.start()
    return ledger


def rss_mib() -> float:
    """Resident memory now (not the peak): flat memory shows as a flat line."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


def batch_callers(ledger: Ledger, data: list[bytes], callers: int, chunk: int) -> float:
    """Durable appends/s from ``callers`` threads each calling append_many."""
    per = len(data) // callers

    def work(part: list[bytes]) -> None:
        for i in range(0, len(part), chunk):
            ledger.append_many(part[i : i + chunk])

    threads = [
        threading.Thread(target=work, args=(data[k * per : (k + 1) * per],))
        for k in range(callers)
    ]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return rate(per * callers, time.perf_counter() - t)


def thread_callers(ledger: Ledger, data: list[bytes], callers: int) -> float:
    """Durable appends/s from ``callers`` threads each calling append per entry."""
    chunks = [data[i::callers] for i in range(callers)]
    threads = [
        threading.Thread(target=lambda c=c: [ledger.append(e) for e in c])
        for c in chunks
    ]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return rate(len(data), time.perf_counter() - t)


def async_callers(ledger: Ledger, data: list[bytes], callers: int) -> float:
    """Durable appends/s from ``callers`` asyncio tasks each awaiting append_async.

    The way the HTTP API calls the ledger: one event loop, many requests in flight.
    """

    async def run() -> None:
        todo = iter(data)

        async def caller() -> None:
            for e in todo:
                await ledger.append_async(e)

        await asyncio.gather(*(caller() for _ in range(callers)))

    t = time.perf_counter()
    asyncio.run(run())
    return rate(len(data), time.perf_counter() - t)


def saksi_appends(url: str, sizes: list[int], progress) -> dict[str, object]:
    ledger = new_ledger(url)
    out: dict[str, dict[int, float]] = {
        "batch": {},
        "threads": {},
        "async": {},
        "rss": {},
        "at": {},
        "growth_rss": {},
    }
    seed = 10
    for size in sizes:
        # Grow through the batch interface, timing the last stretch up to the
        # size (4 concurrent callers of 2,500-entry batches).
        stretch = max(20_000, size // 20)
        while ledger.size < size - stretch:
            n = min(50_000, size - stretch - ledger.size)
            seed += 1
            ledger.append_many(entries(n, seed))
            # Resident memory less the tile cache (bounded; ~16 KiB a tile).
            out["growth_rss"][ledger.size] = rss_mib() - ledger.cached_tiles / 64
            progress(f"  {ledger.size:,}/{size:,}  rss {rss_mib():.0f} MiB")
        seed += 1
        out["batch"][size] = batch_callers(ledger, entries(stretch, seed), 4, 2500)
        out["at"][size] = ledger.size
        seed += 1
        out["threads"][size] = thread_callers(ledger, entries(6400, seed), 64)
        seed += 1
        out["async"][size] = async_callers(ledger, entries(20_000, seed), 1024)
        out["rss"][size] = rss_mib()
        progress(
            f"  {ledger.size:,}: batch {out['batch'][size]:,.0f}/s, "
            f"64 threads {out['threads'][size]:,.0f}/s, "
            f"1,024 async {out['async'][size]:,.0f}/s, rss {out['rss'][size]:.0f} MiB"
        )
    # Proof building at the final size: cold (tile cache emptied first), then
    # warm (every tile read once, as in a long-running server).
    n = ledger.size
    rng = random.Random(5)
    lat_cold = []
    ledger.reader.clear_cache()
    for _ in range(500):
        i = rng.randrange(n)
        t = time.perf_counter()
        ledger.reader.inclusion_proof(i)
        lat_cold.append(time.perf_counter() - t)
    progress("  warming the tile cache")
    for i in range(0, n, 256):
        ledger.reader.inclusion_proof(i)
    lat_inc, lat_con = [], []
    for _ in range(2000):
        i = rng.randrange(n)
        t = time.perf_counter()
        ledger.reader.inclusion_proof(i)
        lat_inc.append(time.perf_counter() - t)
        m = rng.randrange(1, n)
        t = time.perf_counter()
        ledger.reader.consistency_proof(m)
        lat_con.append(time.perf_counter() - t)
    result: dict[str, object] = dict(out)
    result["proof"] = {
        "size": n,
        "inclusion": lat_inc,
        "consistency": lat_con,
        "cold": lat_cold,
    }
    ledger.close()
    ledger.storage.close()
    return result


def pymerkle_peer(count: int, tmp: Path, progress) -> dict[str, float]:
    """pymerkle's SQLite tree, in WAL mode with synchronous=FULL like ours."""
    from pymerkle import SqliteTree

    tree = SqliteTree(str(tmp / "pymerkle.db"))
    tree.con.execute("PRAGMA journal_mode=WAL")
    tree.con.execute("PRAGMA synchronous=FULL")
    seed = 500
    stretch = min(count, 20_000)
    while tree.get_size() < count - stretch:
        seed += 1
        tree.append_entries(
            entries(min(50_000, count - stretch - tree.get_size()), seed)
        )
        progress(f"  pymerkle {tree.get_size():,}/{count:,}")
    data = entries(stretch, 77)
    t = time.perf_counter()
    tree.append_entries(data[: stretch // 2])
    bulk_rate = rate(stretch // 2, time.perf_counter() - t)
    t = time.perf_counter()
    for d in data[stretch // 2 :]:
        tree.append_entry(d)
    append_rate = rate(stretch - stretch // 2, time.perf_counter() - t)
    size = tree.get_size()
    rng = random.Random(3)
    lat = []
    for _ in range(500):
        i = rng.randrange(1, size + 1)
        t = time.perf_counter()
        tree.prove_inclusion(i, size)
        lat.append(time.perf_counter() - t)
    return {
        "size": size,
        "bulk": bulk_rate,
        "append": append_rate,
        "proof_median": statistics.median(lat),
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--peer-size", type=int, default=1_000_000)
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
            commits = limit_commits(limit_url, sizes, progress)
            progress(f"{backend}: saksi appends")
            results[backend] = {
                "commits": commits,
                **saksi_appends(log_url, sizes, progress),
            }
        progress(f"peer: pymerkle sqlite, {args.peer_size:,} entries")
        peer = pymerkle_peer(args.peer_size, tmp, progress)
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
        "## The log core: durable appends and proofs",
        "",
        f"Command: `{cmd}` (writes this section).",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.platform()}; "
        f"measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "Shared, noisy machine: read the ratios, which are measured in the same run.",
        "What bounds each figure, and the targets, are discussed in bench/README.md.",
        "",
        "### Limits measured in this run",
        "",
        f"* SHA-256 leaf + node hashing of 600-byte entries: {hashing:,.0f} entries/s",
        f"* Ed25519 signing: {signing:,.0f} signatures/s",
    ]
    for backend, r in results.items():
        raw = ", ".join(f"{r['commits'][n]:,.0f} at {r['at'][n]:,}" for n in sizes)
        lines.append(
            f"* {backend}: raw SQL commits of 2,500-row batches into a table laid "
            f"out, indexed and inserted into like the log's entries (no tree, no "
            f"signature, no receipt): {raw} rows/s"
        )
    lines += [
        "",
        "### Durable appends (acknowledged after commit, with receipts)",
        "",
        "Every figure is entries acknowledged per second, each with its index, the",
        "signed checkpoint and its inclusion proof. Batch: 4 threads calling",
        "`append_many` with 2,500 entries. Threads: 64 threads calling `append`.",
        "Async: 1,024 asyncio tasks awaiting `append_async` (how the HTTP API calls",
        "the ledger). Ratios are to the raw commit rate of the same backend at the",
        "same size. Size is the log size after the batch stretch; the single-entry",
        "callers then add 26,400 entries.",
        "",
        "| backend | size | batch /s | vs raw | 64 threads /s | 1,024 async /s "
        "| vs raw | RSS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for backend, r in results.items():
        for size in sizes:
            b, t, a = r["batch"][size], r["threads"][size], r["async"][size]
            raw = r["commits"][size]
            lines.append(
                f"| {backend} | {r['at'][size]:,} | {b:,.0f} | {b / raw:.2f} "
                f"| {t:,.0f} | {a:,.0f} | {a / raw:.2f} "
                f"| {r['rss'][size]:.0f} MiB |"
            )
    for backend, r in results.items():
        series = sorted(r["growth_rss"].items())
        half = [v for n, v in series if n >= series[-1][0] // 2] if series else []
        if half:
            lines.append(
                f"\nResident memory of the {backend} run, less the tile cache "
                f"(16 KiB a tile, bounded at 4,096 tiles), while the log grew from "
                f"{series[-1][0] // 2:,} to {series[-1][0]:,} entries: "
                f"{min(half):.0f} to {max(half):.0f} MiB."
            )
    lines += [
        "",
        "### Proof building (from stored tiles)",
        "",
        "Warm: every tile read once before (the tile cache holds 4,096 tiles, all",
        "of a million-entry log). Cold: the cache emptied, so each proof reads and",
        "re-hashes its level-0 tile (255 hashes) and the tiles above it.",
        "",
        "| backend | size | inclusion median | p99 | consistency median | p99 "
        "| cold inclusion median | p99 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for backend, r in results.items():
        p = r["proof"]
        us = 1e6
        lines.append(
            f"| {backend} | {p['size']:,} "
            f"| {statistics.median(p['inclusion']) * us:.0f} µs "
            f"| {pct(p['inclusion'], 0.99) * us:.0f} µs "
            f"| {statistics.median(p['consistency']) * us:.0f} µs "
            f"| {pct(p['consistency'], 0.99) * us:.0f} µs "
            f"| {statistics.median(p['cold']) * us:.0f} µs "
            f"| {pct(p['cold'], 0.99) * us:.0f} µs |"
        )
    name, first = next(iter(results.items()))
    last = sizes[-1]
    lines += [
        "",
        "### Peer: pymerkle 7 (SQLite backend, WAL, synchronous=FULL)",
        "",
        f"* bulk `append_entries` at {peer['size']:,} entries: {peer['bulk']:,.0f}/s; "
        f"Saksi batch at {last:,} on {name}: {first['batch'][last]:,.0f}/s, "
        f"{first['batch'][last] / peer['bulk']:.2f}x (pymerkle's bulk insert signs "
        "nothing and returns no proofs)",
        f"* one-by-one `append_entry`: {peer['append']:,.0f}/s; Saksi batch: "
        f"{first['batch'][last] / peer['append']:.1f}x; Saksi 1,024 async single "
        f"callers: {first['async'][last]:,.0f}/s, "
        f"{first['async'][last] / peer['append']:.1f}x",
        f"* inclusion proof median at {peer['size']:,}: "
        f"{peer['proof_median'] * 1e6:.0f} µs; Saksi at {first['proof']['size']:,}: "
        f"{statistics.median(first['proof']['inclusion']) * 1e6:.0f} µs, "
        f"{peer['proof_median'] / statistics.median(first['proof']['inclusion']):.1f}x"
        " faster warm, "
        f"{peer['proof_median'] / statistics.median(first['proof']['cold']):.1f}x"
        " cold",
        "",
    ]
    write_section(args.out, "core", "\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
