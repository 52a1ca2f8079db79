"""Decoding logged entries: the read side's fast decoder, and what its cache costs.

    python -m bench.decode [--entries 2000] [--cached 1024 20000]

The read side proves an entry's bytes against the signed tree, then decodes
them with ``verifier.record.decode_logged_entry`` (a plain JSON decode) instead
of the strict parsers (canonical-form re-check included), and keeps the
decoded entries most recently read (``ledger.read.entries.ENTRY_CACHE``). This
measures, on real signed tallies (``domains.synthetic``-shaped forms of 3 to 18
candidates): the strict parse and the fast decode of each (the ratio is the
figure), and how long a full garbage collection takes with N decoded entries
held (the cache's size against the pauses it causes). Writes the ``decode``
section of ``BENCHMARKS.md`` (``--out`` another file).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import os
import platform
import statistics
import time
from pathlib import Path

from bench.report import write_section
from keys import Ed25519Signer
from verifier.dsse import sign_envelope
from verifier.record import (
    RECORD_PAYLOAD_TYPE,
    decode_logged_entry,
    format_log_entry,
    parse_log_entry,
    parse_record,
    record_payload,
)

ROOT = Path(__file__).resolve().parent.parent
SIGNER = Ed25519Signer("tps", hashlib.sha256(b"decode bench").digest())


def _entries(count: int) -> list[bytes]:
    """Signed tally entries as the log stores them."""
    out = []
    for n in range(count):
        candidates = 3 + n % 16
        votes = {str(100_000 + c): (n * 7 + c * 13) % 300 for c in range(candidates)}
        valid = sum(votes.values())
        body = {
            "stage": "officer",
            "votes": votes,
            "valid": valid,
            "invalid": n % 9,
            "total": valid + n % 9,
            "form": {"pages": [hashlib.sha256(b"%d" % n).hexdigest()]},
        }
        payload = record_payload(
            schema="results.tally/v1",
            subject=f"results/ppwp/3171{n:09d}",
            revision=0,
            prev=None,
            issued_at="2024-02-14T13:00:00.000Z",
            body=body,
        )
        envelope = sign_envelope(RECORD_PAYLOAD_TYPE, payload, [SIGNER])
        out.append(format_log_entry(envelope, "2024-02-14T13:00:01.000Z"))
    return out


def _per_entry(fn: object, entries: list[bytes], rounds: int = 5) -> float:
    """The best of ``rounds`` runs over every entry, in µs an entry."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for data in entries:
            fn(data)  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best / len(entries) * 1e6


def _strict(data: bytes) -> object:
    entry = parse_log_entry(data)
    return entry, parse_record(entry.envelope.payload)


def _gc_pause(held: int, entries: list[bytes]) -> float:
    """Median full collection in ms with ``held`` decoded entries alive."""
    kept = [decode_logged_entry(entries[i % len(entries)]) for i in range(held)]
    pauses = []
    for _ in range(7):
        start = time.perf_counter()
        gc.collect()
        pauses.append(time.perf_counter() - start)
    del kept
    return statistics.median(pauses) * 1e3


def main(argv: list[str] | None = None) -> int:
    """Measure, print and write the ``decode`` section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=2000, help="entries decoded")
    parser.add_argument(
        "--cached",
        type=int,
        nargs="+",
        default=[0, 1024, 20_000],
        help="decoded entries held during a full collection",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    entries = _entries(args.entries)
    for data in entries:  # the two decide alike on every entry measured
        assert decode_logged_entry(data) == _strict(data)
    strict = _per_entry(_strict, entries)
    fast = _per_entry(decode_logged_entry, entries)
    pauses = {held: _gc_pause(held, entries) for held in args.cached}
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Decoding logged entries: the read side's fast decoder and its cache",
        "",
        f"Command: `python -m bench.decode --entries {args.entries} --cached "
        f"{' '.join(str(c) for c in args.cached)}`.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; measured {now}; load average "
        f"{os.getloadavg()[0]:.2f}.",
        "",
        f"* strict parse (canonical form re-checked): {strict:.1f} µs an entry",
        f"* fast decode of a proven entry: {fast:.1f} µs an entry "
        f"({strict / fast:.1f}x faster than strict)",
        "",
        "| decoded entries held | full garbage collection (median of 7) |",
        "|---|---|",
        *[f"| {held:,} | {ms:.1f} ms |" for held, ms in pauses.items()],
        "",
        "The read side keeps 1,024 decoded entries (`ENTRY_CACHE`): each decoded",
        "form is dozens of objects every full collection scans, and decoding one",
        "again costs the fast-decode time above.",
    ]
    text = "\n".join(lines)
    print(text)
    write_section(args.out, "decode", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
