"""Static tiles: ``saksi publish`` to a directory, served by nginx vs. ``saksi serve``.

    python -m bench.publish [--entries 100000] [--requests 20000] [--clients 64]
                            [--out BENCHMARKS.md]

On one SQLite log of plain 200-byte entries (made once in /tmp):
  * the first ``saksi publish --once`` (files, bytes, seconds: one fsync per
    file) and one after 100 more entries (what it writes, how long it takes);
  * reads/s of full hash tiles and of full entry bundles with ``--clients``
    keep-alive clients, from Debian's nginx (one worker process, serving the
    published directory) and from ``saksi serve --read-only`` (one process),
    on the same machine as the load generator.
Prints the figures; with ``--out`` writes its ``publish`` section there.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.http import free_port, run_reads, wait_ready
from bench.nginx import find_nginx, nginx_serving
from bench.report import machine, write_section

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = "bench.saksi.example/publish"


def progress(text: str) -> None:
    print(f"[bench.publish] {text}", file=sys.stderr, flush=True)


def make_log(directory: Path, entries: int) -> None:
    """A plain-entry log of ``entries`` in ``directory`` (log.vkey, saksi.db)."""
    from keys import Ed25519Signer
    from ledger.publisher import CheckpointPublisher
    from ledger.storage.rows import Head, LogMeta
    from ledger.storage.sql import SqlStorage
    from verifier.rfc6962 import EMPTY_ROOT

    signer = Ed25519Signer(ORIGIN, bytes(range(32)))  # a throwaway benchmark log
    directory.mkdir(parents=True)
    (directory / "log.vkey").write_text(f"{signer.verifier_key}\n")
    storage = SqlStorage.open(f"sqlite:///{directory / 'saksi.db'}")
    storage.migrate()
    publisher = CheckpointPublisher(ORIGIN, signer, signer.verifier_key)
    storage.initialize(
        LogMeta(ORIGIN, str(signer.verifier_key)),
        Head(0, EMPTY_ROOT, publisher.sign(0, EMPTY_ROOT), int(time.time() * 1000)),
    )
    append(storage, signer, 0, entries)


def append(storage: object, signer: object, first: int, count: int) -> None:
    from ledger.ledger import Ledger

    ledger = Ledger.of_entries(
        storage,  # type: ignore[arg-type]
        signer,  # type: ignore[arg-type]
        signer.verifier_key,  # type: ignore[attr-defined]
        ORIGIN,
        clock=time.time,
    )
    ledger.start()
    try:
        for start in range(first, first + count, 5000):
            end = min(first + count, start + 5000)
            ledger.append_many(
                [b"entry %09d " % i + bytes(186) for i in range(start, end)]
            )
    finally:
        ledger.close()


def grow(directory: Path, count: int) -> None:
    from keys import Ed25519Signer
    from ledger.storage.sql import SqlStorage

    storage = SqlStorage.open(f"sqlite:///{directory / 'saksi.db'}")
    try:
        size = storage.head().size
        append(storage, Ed25519Signer(ORIGIN, bytes(range(32))), size, count)
    finally:
        storage.close()


def publish(directory: Path, out: Path) -> tuple[dict[str, int], float]:
    import json

    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "api", "publish", "--dir", str(directory),
         "--out", str(out), "--once", "--json"],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )  # fmt: skip
    return json.loads(done.stdout), time.perf_counter() - started


def reads(
    port: int, prefix: str, size: int, requests: int, clients: int
) -> dict[str, float]:
    """Full tiles and full bundles/s under ``prefix``, spread over the log."""
    from verifier.tile_format import entries_path, tile_path

    tiles = size // 256
    tile_paths = [f"{prefix}/{tile_path(0, (i * 7) % tiles)}" for i in range(requests)]
    bundle_paths = [
        f"{prefix}/{entries_path((i * 7) % tiles)}" for i in range(requests)
    ]
    return {
        "tile": asyncio.run(run_reads(port, tile_paths, clients)),
        "bundle": asyncio.run(run_reads(port, bundle_paths, clients)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.publish")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--out", type=Path, help="write the section to this report")
    args = parser.parse_args(argv)
    nginx = find_nginx()
    if nginx is None:
        print("nginx is not installed (Debian: apt-get install nginx)", file=sys.stderr)
        return 3
    directory = Path(tempfile.gettempdir()) / f"saksi-publish-log-{args.entries}"
    if not (directory / "saksi.db").exists():
        progress(f"making a log of {args.entries:,} entries in {directory}")
        shutil.rmtree(directory, ignore_errors=True)
        make_log(directory, args.entries)
    work = Path(tempfile.mkdtemp(prefix="saksi-publish-bench-"))
    work.chmod(0o755)
    try:
        out = work / "public"
        progress("first publish")
        first, first_s = publish(directory, out)
        grow(directory, 100)
        progress("publish after 100 more entries")
        second, second_s = publish(directory, out)
        size = second["size"]

        with nginx_serving(nginx, out, work / "nginx") as url:
            port = int(url.rsplit(":", 1)[1])
            progress("reads from nginx")
            from_nginx = reads(port, "", size, args.requests, args.clients)

        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--read-only", "--dir",
             str(directory), "--listen", f"127.0.0.1:{port}", "--no-access-log",
             "--no-security-log"],
            cwd=ROOT,
        )  # fmt: skip
        try:
            wait_ready(f"http://127.0.0.1:{port}/healthz")
            progress("reads from saksi serve --read-only")
            served = reads(port, "/log", size, args.requests, args.clients)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = [
        "## Static tiles: saksi publish, nginx and saksi serve",
        "",
        f"Command: `python -m bench.publish --entries {args.entries} --requests "
        f"{args.requests} --clients {args.clients}`.",
        "",
        machine(
            "Load generator (raw keep-alive HTTP/1.1), nginx (one worker) and "
            "saksi serve (one process, SQLite) share the machine's cores."
        ),
        "",
        f"* first publish of {first['size']:,} entries: {first['written']:,} files, "
        f"{first['bytes'] / 1e6:,.1f} MB in {first_s:.1f} s (command start-up "
        "and one fsync per file included)",
        f"* publish after 100 more entries: {second['written']} files, "
        f"{second['bytes']:,} bytes in {second_s:.1f} s",
        "",
        f"| reads/s ({args.clients} clients) | nginx | saksi serve | ratio |",
        "|---|---|---|---|",
    ]
    for kind, what in (
        ("tile", "full hash tile (8 KiB)"),
        ("bundle", "full entry bundle"),
    ):
        lines.append(
            f"| {what} | {from_nginx[kind]:,.0f} | {served[kind]:,.0f} "
            f"| {from_nginx[kind] / served[kind]:.1f}x |"
        )
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        write_section(args.out, "publish", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
