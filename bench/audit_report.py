"""Audit report benchmark: the report of a big log, and the audit it rests on.

    python -m bench.audit_report [--log DIR] [--entries 1000000] [--out BENCHMARKS.md]

The log is ``--log DIR`` (``bench.audit`` keeps the synthetic national
election's in ``/tmp/saksi-audit-log-4200000``) or one ``bench.audit`` builds
with ``--entries`` records, served on 127.0.0.1. As an auditor runs them:

1. ``saksi-verify audit --log URL --json`` from nothing (the baseline: the audit
   every figure comes from), its time and peak memory;
2. ``saksi audit report --audit audit.json``: the report from that saved audit
   (HTML and PDF);
3. ``saksi audit report --log URL --state S``: the report as an observer who
   has audited makes it (the audit resumes at the log's end, then the report).

Writes BENCHMARKS.md's ``audit-report`` section.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.audit import _rss
from bench.http import free_port, progress, start_server, wait_ready
from bench.report import machine, write_section

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LOG = Path(tempfile.gettempdir()) / "saksi-audit-log-4200000"


def timed(argv: list[str], out: Path | None = None) -> tuple[float, int, int]:
    """(seconds, peak resident bytes, exit code) of one command."""
    with (
        out.open("w") if out else tempfile.TemporaryFile("w") as sink,
        tempfile.TemporaryFile("w+") as errors,
    ):
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", *argv], stdout=sink, stderr=errors, cwd=ROOT
        )
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _rss(proc.pid))
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        if proc.returncode not in (0, 1):
            errors.seek(0)
            raise RuntimeError(f"{' '.join(argv[:3])} failed: {errors.read()[-800:]}")
    return seconds, peak, proc.returncode


def _pages(pdf: Path) -> int:
    info = subprocess.run(
        ["pdfinfo", str(pdf)], capture_output=True, text=True, check=True
    ).stdout
    return int(next(x.split()[-1] for x in info.splitlines() if x.startswith("Pages")))


def measure(log_dir: Path, work: Path) -> dict[str, Any]:
    """The three runs' figures (see the module)."""
    key = (log_dir / "log.vkey").read_text().strip()
    state = work / "observer"
    port = free_port()
    server = start_server(log_dir, port, "--read-only", env={})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url + "/healthz")
        progress("saksi-verify audit, from nothing")
        audit = timed(
            ["verifier", "audit", "--log", url, "--key", key, "--state", str(state),
             "--fresh", "--json"],
            work / "audit.json",
        )  # fmt: skip
        progress("saksi audit report --audit")
        saved = timed(
            ["api", "audit", "report", "--audit", str(work / "audit.json"),
             "--out", str(work / "saved")],
        )  # fmt: skip
        progress("saksi audit report --log, the audit resumed")
        resumed = timed(
            ["api", "audit", "report", "--log", url, "--key", key,
             "--state", str(state), "--out", str(work / "resumed")],
        )  # fmt: skip
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    with (work / "audit.json").open() as f:
        report = json.load(f)
    pdf = work / "saved" / "report.pdf"
    return {
        "entries": report["tree_size"],
        "passed": report["passed"],
        "audit": audit,
        "saved": saved,
        "resumed": resumed,
        "pages": _pages(pdf),
        "pdf_bytes": pdf.stat().st_size,
        "html_bytes": (work / "saved" / "report.html").stat().st_size,
        "json_bytes": (work / "audit.json").stat().st_size,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--log", type=Path)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args(argv)
    log = args.log
    if log is None:
        if (DEFAULT_LOG / "built").exists():
            log = DEFAULT_LOG
        else:
            from bench.audit import build_log

            log = build_log(args.entries)
    work = Path(tempfile.mkdtemp(prefix="saksi-bench-report-"))
    r = measure(log, work)

    def row(name: str, run: tuple[float, int, int]) -> str:
        seconds, peak, _ = run
        rate = r["entries"] / seconds
        return (
            f"| {name} | {seconds / 60:,.1f} min ({seconds:,.0f} s) | "
            f"{rate:,.0f} entries/s | {peak / 2**20:,.0f} MiB |"
        )

    lines = [
        "## The audit report of a big log",
        "",
        f"Command: `python -m bench.audit_report` (writes this section), on the log "
        f"in `{log}`: {r['entries']:,} entries.",
        "",
        machine(
            "Each command in its own process, as an auditor runs it; the log "
            "served read-only on 127.0.0.1 by `saksi serve`."
        ),
        "",
        "| run | time | over the log's entries | peak memory |",
        "|---|---|---|---|",
        row("`saksi-verify audit --json` from nothing (the baseline)", r["audit"]),
        row("`saksi audit report --audit audit.json` (HTML and PDF)", r["saved"]),
        row("`saksi audit report --log` after an audit (it resumes)", r["resumed"]),
        "",
        f"The report: {r['pages']} PDF pages ({r['pdf_bytes'] / 1e6:,.1f} MB), "
        f"HTML {r['html_bytes'] / 1e6:,.1f} MB; the audit's JSON "
        f"{r['json_bytes'] / 1e6:,.1f} MB. The audit "
        + ("verified the log." if r["passed"] else "did NOT verify the log."),
    ]
    write_section(args.out, "audit-report", "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
