"""Proof bundle benchmark: export and offline check of selections of a big log.

    python -m bench.evidence [--log DIR] [--entries 1000000]
                             [--regions 1101,11] [--out BENCHMARKS.md]

The log is ``--log DIR`` (any Saksi log directory; ``bench.audit`` keeps the
synthetic national election's in ``/tmp/saksi-audit-log-4200000``) or else one
``bench.audit`` builds with ``--entries`` records. For each region of
``--regions`` (a regency, a province; ``all`` for every entry), in separate
processes as the commands run:

* ``saksi export bundle --region R``: the time to write the bundle (entries
  read, proven by their inclusion proofs, written) apart from the time of its
  own check, entries/s of each, the file's size;
* ``saksi-verify check-bundle``: entries/s and the peak memory of the process;
* the baseline, in the same run: the audit's own checks of the same entries
  as ``saksi-verify audit`` runs them (``run_audit``, a worker process per
  core, its state in a file), fed the bundle's entries, without the proofs or
  the bundle's checks of form, entries/s. The check's
  rate over it is the ratio the target names (at least 0.8).

Writes BENCHMARKS.md's ``evidence`` section.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.http import PASS, progress
from bench.report import machine, write_section

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LOG = Path(tempfile.gettempdir()) / "saksi-audit-log-4200000"
ENV = {**os.environ, "SAKSI_KEY_PASSPHRASE": PASS}

_EXPORT_PHASES = """
import json, sys, time
from pathlib import Path
import audit.export as export
from cli.local import open_reader
from verifier.fullaudit.run import default_workers
from verifier.proof_bundle import Selection

log = open_reader(Path(sys.argv[1]), None)
checking = export.check_bundle
timed = {}

def check(*args, **kwargs):
    started = time.perf_counter()
    try:
        if sys.argv[4] == "skip":  # check-bundle runs the same code on the file
            return {"passed": True, "checks": []}
        return checking(*args, **kwargs)
    finally:
        timed["check"] = time.perf_counter() - started

export.check_bundle = check
region = None if sys.argv[2] == "all" else sys.argv[2]
selection = Selection(region=region) if region else Selection(start=0)
started = time.perf_counter()
result = export.export_bundle(
    log, selection, Path(sys.argv[3]), workers=default_workers()
)
total = time.perf_counter() - started
print(json.dumps({"entries": result.entries, "selected": result.selected,
                  "context": result.context, "bytes": result.bytes,
                  "total": total, "check": timed["check"],
                  "passed": result.report["passed"]}))
"""

_BASELINE = """
import base64, gzip, json, sys, tempfile, time
from pathlib import Path
from verifier.fullaudit import Auditor, AuditStore
from verifier.fullaudit.run import default_workers, run_audit

# A store in a file, as saksi-verify audit keeps its state (and check-bundle),
# and its worker processes (one per core).
work = tempfile.mkdtemp(prefix="saksi-bench-baseline-")
auditor = Auditor(AuditStore(Path(work) / "audit.sqlite"), sparse=True)


def chunks():
    indices, entries = [], []
    with gzip.open(sys.argv[1], "rb") as f:
        next(f)
        for line in f:
            item = json.loads(line)
            if "end" in item:
                break
            indices.append(item["index"])
            entries.append(base64.b64decode(item["entry"]))
            if len(entries) == 256:
                yield indices, entries
                indices, entries = [], []
    if entries:
        yield indices, entries


count = 0
def counted(_examined):
    global count
    count += 1
    auditor.recent.clear()


started = time.perf_counter()
run_audit(chunks(), auditor, default_workers(), on_applied=counted)
took = time.perf_counter() - started
print(json.dumps({"entries": count, "seconds": took,
                  "passed": auditor.summary(None)["passed"]}))
"""


def _measured(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd``: its seconds, peak memory (KiB, its own), exit code, output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, env=env)
        # wait4: this child's own rusage (its peak, and its waited-for
        # children's), not the largest of every child the bench has run.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        took = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        return {
            "seconds": took,
            "peak_kib": usage.ru_maxrss,
            "code": proc.returncode,
            "stdout": out.read().decode(),
            "stderr": err.read().decode(),
        }


def _python(code: str, *args: str) -> tuple[dict[str, Any], int]:
    """The JSON a bench script prints last, and the peak memory of its process."""
    done = _measured([sys.executable, "-c", code, *args], ENV)
    if done["code"] != 0:
        raise RuntimeError(done["stderr"][-2000:])
    return dict(json.loads(done["stdout"].strip().splitlines()[-1])), done["peak_kib"]


def _check(bundle: Path, key: Path) -> tuple[float, int, dict[str, Any]]:
    """(seconds, peak KiB, report) of saksi-verify check-bundle."""
    done = _measured(
        [
            sys.executable,
            "-m",
            "verifier",
            "check-bundle",
            str(bundle),
            "--key",
            str(key),
            "--json",
        ]
    )
    if done["code"] != 0:
        raise RuntimeError(done["stderr"][-2000:])
    return done["seconds"], done["peak_kib"], json.loads(done["stdout"])


def measure(
    log: Path, region: str, work: Path, self_check: bool = True
) -> dict[str, Any]:
    """One region's export (with its own check, or not), check and baseline."""
    bundle = work / f"{region}.saksi-bundle"
    progress(f"region {region}: export")
    made, export_peak = _python(
        _EXPORT_PHASES, str(log), region, str(bundle), "run" if self_check else "skip"
    )
    progress(f"region {region}: {made['entries']:,} entries; check-bundle")
    took, peak, report = _check(bundle, log / "log.vkey")
    progress(f"region {region}: the audit's own checks of the same entries")
    base, _ = _python(_BASELINE, str(bundle))
    with gzip.open(bundle, "rb") as f:
        inflated = sum(len(line) for line in f)
    write = made["total"] - made["check"]
    return {
        "region": region,
        "entries": made["entries"],
        "selected": made["selected"],
        "context": made["context"],
        "bytes": made["bytes"],
        "inflated": inflated,
        "write_seconds": write,
        "write_rate": made["entries"] / write,
        "self_check_rate": made["entries"] / made["check"] if self_check else None,
        "export_peak_kib": export_peak,
        "check_seconds": took,
        "check_rate": made["entries"] / took,
        "check_peak_kib": peak,
        "baseline_rate": base["entries"] / base["seconds"],
        "passed": report["passed"] and base["passed"] and made["passed"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--log", type=Path)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--regions", default="1101,11")
    parser.add_argument(
        "--self-check",
        help="regions whose export also times its own check (default: every "
        "one; the check is check-bundle's code, timed beside it anyway)",
    )
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args(argv)
    log = args.log
    if log is None:
        if (DEFAULT_LOG / "built").exists():
            log = DEFAULT_LOG
        else:
            from bench.audit import build_log

            log = build_log(args.entries)
    work = Path(tempfile.mkdtemp(prefix="saksi-bench-evidence-"))
    regions = args.regions.split(",")
    checked = set(regions if args.self_check is None else args.self_check.split(","))
    rows = [measure(log, region, work, region in checked) for region in regions]
    lines = [
        "## Evidence: selective proof bundles, exported and checked offline",
        "",
        "Command: `python -m bench.evidence --regions "
        + args.regions
        + ("" if args.self_check is None else f" --self-check {args.self_check}")
        + f"` (writes this section), on the log in `{log}`.",
        "",
        machine(
            "As the commands run (a worker process per core where they use "
            "them): `saksi export bundle` (its own check is timed apart), "
            "`saksi-verify check-bundle`, and the baseline: the audit's own "
            "checks of the same entries as `saksi-verify audit` runs them, "
            "without the proofs or the bundle's checks of form."
        ),
        "",
        "| region | entries (selected + registry) | bundle | written | export's own "
        "check | check-bundle | audit of the same entries | check / audit "
        "| peak memory: export, check-bundle |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['region']} | {r['entries']:,} ({r['selected']:,} + "
            f"{r['context']:,}) | {r['bytes'] / 1e6:,.1f} MB "
            f"({r['inflated'] / r['bytes']:.1f}x inflated) | "
            f"{r['write_rate']:,.0f}/s ({r['write_seconds']:.1f} s) | "
            + (
                f"{r['self_check_rate']:,.0f}/s"
                if r["self_check_rate"]
                else "not run (check-bundle's code)"
            )
            + f" | {r['check_rate']:,.0f}/s "
            f"({r['check_seconds']:.1f} s) | {r['baseline_rate']:,.0f}/s | "
            f"{r['check_rate'] / r['baseline_rate']:.2f} | "
            f"{r['export_peak_kib'] / 1024:,.0f} MiB, "
            f"{r['check_peak_kib'] / 1024:,.0f} MiB |"
        )
    if not all(r["passed"] for r in rows):
        lines += ["", "**A bundle did not verify: the figures are not valid.**"]
    write_section(args.out, "evidence", "\n".join(lines))
    print("\n".join(lines))
    return 0 if all(r["passed"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
