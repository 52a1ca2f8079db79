"""Start-up benchmark: how long the writer takes to prove what it will act on.

    python -m bench.startup [--entries 1000000] [--log DIR] [--out BENCHMARKS.md]
                            [--section startup]

The log is ``--log DIR`` (any Saksi log directory on SQLite, e.g. the one
``bench.audit`` keeps: ``/tmp/saksi-audit-log-<entries>``) or else one built as
``bench.audit`` builds it. Three starts of ``saksi serve``'s writer
(``open_service``, then close), in one run:

* the first start without a seal (a log written before the seal existed, or
  whose seal was lost): the full check of every entry, tile, checkpoint and
  index row, then the seal;
* the sealed start: the right edge, the guards, the index streamed against its
  seal, the registries replayed from entries proven by inclusion proofs;
* the sealed start again (a warm page cache), as the operator's restart sees it.

Beside them, in the same run, the baselines: streaming the index rows with
nothing done to them, and SHA-256 of 1.8 KB entries per second. Each start's
stages are timed where they are called. Writes ``BENCHMARKS.md``'s ``startup``
section (or ``--section``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import platform
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.audit import build_log
from bench.http import PASS, progress
from bench.report import write_section

ROOT = Path(__file__).resolve().parent.parent

# What a start calls, timed where it is called: (module, attribute) per stage.
STAGES = {
    "guards, head and right edge": (("ledger.sequencer", "recover_state"),),
    "index against its seal": (("ledger.sequencer", "verify_records"),),
    "full check (no seal)": (("ledger.sequencer", "check_and_digest"),),
    "registries from proven entries": (("ledger.read.registry", "replay_registry"),),
}


def _timed(stages: dict[str, float]) -> Callable[[], None]:
    """Wrap every stage function; returns the function that unwraps them."""
    import importlib

    undo = []
    for stage, functions in STAGES.items():
        for module_name, name in functions:
            module = importlib.import_module(module_name)
            original = getattr(module, name)

            def wrapper(
                *args: Any,
                _original: Any = original,
                _stage: str = stage,
                **kwargs: Any,
            ) -> Any:
                started = time.perf_counter()
                try:
                    return _original(*args, **kwargs)
                finally:
                    stages[_stage] = stages.get(_stage, 0.0) + (
                        time.perf_counter() - started
                    )

            setattr(module, name, wrapper)
            undo.append((module, name, original))

    def restore() -> None:
        for module, name, original in undo:
            setattr(module, name, original)

    return restore


def start_once(log_dir: Path) -> dict[str, Any]:
    """One start of the writer (``open_service``) and its close, timed."""
    from cli.local import open_service

    stages: dict[str, float] = {}
    load = os.getloadavg()[0]
    restore = _timed(stages)
    try:
        started = time.perf_counter()
        service = open_service(log_dir, None, None)
        elapsed = time.perf_counter() - started
        size = service.reader.size
        service.close()
    finally:
        restore()
    return {"seconds": elapsed, "size": size, "stages": stages, "load": load}


def drop_seal(db: Path) -> None:
    """Forget the head's seal (what a log written before it looks like)."""
    conn = sqlite3.connect(db)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(tree_head)")}
    if "seal" in columns:  # a log from before the seal gets its column at start
        with conn:
            conn.execute(
                "UPDATE tree_head SET seal = NULL, made_at_ms = made_at_ms + 1"
            )
    conn.close()


def baselines(db: Path, size: int) -> dict[str, float]:
    """Index rows streamed per second (nothing done), SHA-256 of entries per second."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    started = time.perf_counter()
    rows = 0
    for _ in conn.execute(
        "SELECT idx, subject, revision, schema_name, payload_hash FROM records "
        "WHERE idx < ? ORDER BY idx",
        (size,),
    ):
        rows += 1
    streamed = rows / (time.perf_counter() - started)
    conn.close()
    data = [os.urandom(1800) for _ in range(50_000)]
    started = time.perf_counter()
    for item in data:
        hashlib.sha256(b"\x00" + item).digest()
    return {
        "rows_per_s": streamed,
        "sha256_per_s": 50_000 / (time.perf_counter() - started),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--log", type=Path, help="an existing Saksi log directory")
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--section", default="startup")
    args = parser.parse_args(argv)
    os.environ["SAKSI_KEY_PASSPHRASE"] = PASS
    log_dir = args.log or build_log(args.entries)
    db = log_dir / "saksi.db"
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    progress(f"start-up of {log_dir}")
    drop_seal(db)
    first = start_once(log_dir)
    progress(f"  without a seal (full check): {first['seconds']:.1f} s")
    sealed = start_once(log_dir)
    progress(f"  sealed: {sealed['seconds']:.1f} s")
    again = start_once(log_dir)
    progress(f"  sealed, again: {again['seconds']:.1f} s")
    base = baselines(db, sealed["size"])
    write_report(args, log_dir, when, first, sealed, again, base)
    return 0


def write_report(
    args: argparse.Namespace,
    log_dir: Path,
    when: str,
    first: dict[str, Any],
    sealed: dict[str, Any],
    again: dict[str, Any],
    base: dict[str, float],
) -> None:
    command = "python -m bench.startup"
    if args.log:
        command += f" --log {args.log}"
    else:
        command += f" --entries {args.entries}"
    if args.section != "startup":
        command += f" --section {args.section}"
    size = sealed["size"]
    rows = size / base["rows_per_s"]
    lines = [
        "## Start-up: what the writer proves before it accepts anything",
        "",
        f"Command: `{command}`. Machine: {platform.machine()}, {os.cpu_count()} "
        f"cores, Python {platform.python_version()}; measured {when}. "
        f"A log of {size:,} entries on SQLite ({log_dir.name}).",
        "",
        f"* baselines in this run: the index's {size:,} rows streamed with nothing "
        f"done to them in {rows:.1f} s ({base['rows_per_s']:,.0f} rows/s); "
        f"SHA-256 of 1.8 KB entries {base['sha256_per_s']:,.0f}/s",
        "",
        "| start | time | vs streaming the index | stages | load average before |",
        "|---|---|---|---|---|",
    ]
    for name, run in (
        ("without a seal (full check, then sealed)", first),
        ("sealed", sealed),
        ("sealed, again", again),
    ):
        stages = "; ".join(
            f"{stage} {seconds:.1f} s" for stage, seconds in run["stages"].items()
        )
        lines.append(
            f"| {name} | {run['seconds']:.1f} s | {run['seconds'] / rows:.1f} | "
            f"{stages} | {run['load']:.2f} |"
        )
    write_section(args.out, args.section, "\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
