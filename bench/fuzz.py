"""Coverage-guided fuzzing of every parser that takes outside bytes.

    python -m bench.fuzz [--target NAME ...] [--runs N] [--jobs J] [--json]
                         [--keep-corpus] [--crashes DIR] [--engine ENGINE]

Each target of ``bench.fuzz_targets`` runs in a process of its own
(``bench.fuzz_worker``) under atheris (libFuzzer) with ``-runs=N`` and a fixed
``-seed``. Its corpus, ``tests/fuzz/corpus/<target>/``, is read but never
written: new inputs go to a temporary directory, and ``--keep-corpus`` merges
those that add coverage back (libFuzzer's ``-merge``, at most ``--keep-max`` of
them, the smallest first), together with any crash reproducer, kept as a
``crash-*`` regression seed. A crash, hang (``-timeout``) or memory blow-up
(``-rss_limit_mb``) leaves its reproducer under ``--crashes``.

Per target it reports the executions, libFuzzer's final ``cov:`` (edges) and
``ft:`` (features) figures, the rate, and the crashes with their files. Where
atheris cannot be imported, the targets run under Hypothesis (seeds mutated at
the byte level), and the output says so: no coverage figures then.

Exit codes: 0 no crash, 1 a crash found, 2 usage error, 3 I/O error (a
directory that cannot be made, a worker that failed without a reproducer).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fuzz" / "corpus"
SEED = 24  # issue 24: the same mutations every run
KEEP_MAX = 16
KEEP_MAX_BYTES = 8192
_ARTIFACTS = ("crash-", "timeout-", "oom-", "leak-")
_STATUS = re.compile(r"^#(\d+)\s+(\w+)\s+cov: (\d+) ft: (\d+)")
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)")

EXIT_OK, EXIT_CRASH, EXIT_USAGE, EXIT_IO = 0, 1, 2, 3


@dataclass
class Result:
    """What one target's run found."""

    target: str
    engine: str
    executions: int = 0
    coverage: int | None = None
    features: int | None = None
    seconds: float = 0.0
    new_inputs: int = 0
    crashes: list[str] = field(default_factory=list)
    reason: str | None = None  # the crash: the exception, or libFuzzer's word
    kept: int = 0
    error: str | None = None

    @property
    def rate(self) -> float:
        """Executions per second."""
        return self.executions / self.seconds if self.seconds else 0.0


def atheris_available() -> bool:
    """Can this interpreter import atheris (is the coverage-guided engine here)?"""
    return importlib.util.find_spec("atheris") is not None


def _names() -> list[str]:
    from bench.fuzz_targets import TARGETS

    return list(TARGETS)


def _fast() -> str | None:
    """A memory file system for the scratch files, if there is one (else None).

    The targets of parsers that read a path write every input to a file; on a
    disk that costs most of the run.
    """
    shm = "/dev/shm"  # noqa: S108 (a private mkdtemp directory is made under it)
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def _say(message: str) -> None:
    print(f"fuzz: {message}", file=sys.stderr, flush=True)


def _worker(job: dict[str, object], scratch: Path) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["SAKSI_FUZZ_SCRATCH"] = str(scratch)
    env["PYTHONHASHSEED"] = "0"  # set and dict order, hence coverage, repeat
    return subprocess.Popen(
        [sys.executable, "-m", "bench.fuzz_worker", json.dumps(job)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )


def _run_one(name: str, args: argparse.Namespace, work: Path) -> Result:
    """Fuzz one target; its figures and reproducers."""
    result = Result(name, args.engine)
    seeds = args.corpus / name
    out, scratch = work / name / "new", work / name / "scratch"
    artifacts = args.crashes / name
    for folder in (out, scratch, artifacts):
        folder.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in artifacts.iterdir()}
    job = {
        "target": name,
        "engine": args.engine,
        "runs": args.runs,
        "seed": args.seed,
        "seeds": str(seeds),
        "out": str(out),
        "artifacts": str(artifacts),
        "timeout": args.timeout,
        "rss_limit_mb": args.rss_limit_mb,
        "max_time": args.max_time,
    }
    started = time.monotonic()
    proc = _worker(job, scratch)
    stats: dict[str, int] = {}
    tail: list[str] = []
    assert proc.stderr is not None
    for line in proc.stderr:
        tail = [*tail[-40:], line.rstrip()]
        if line.startswith(("=== Uncaught Python exception", "==")) and (
            "ERROR: libFuzzer:" in line or "Uncaught" in line
        ):
            result.reason = result.reason or line.strip("= \n")
        elif (
            result.reason
            and result.reason.startswith("Uncaught")
            and (re.match(r"^[A-Za-z_.]+(Error|Exception|Exit)\b", line))
        ):
            result.reason = line.strip()[:300]
        status = _STATUS.match(line)
        if status:
            result.executions = int(status[1])
            result.coverage, result.features = int(status[3]), int(status[4])
            if status[2] in ("pulse", "DONE"):
                _say(
                    f"{name}: {status[1]} runs, cov {status[3]}, ft {status[4]}"
                    + (" (done)" if status[2] == "DONE" else "")
                )
        stat = _STAT.match(line)
        if stat:
            stats[stat[1]] = int(stat[2])
    output = proc.stdout.read() if proc.stdout else ""
    code = proc.wait()
    result.seconds = time.monotonic() - started
    if args.engine == "hypothesis":
        for line in output.splitlines():
            if line.startswith("{"):
                result.executions = json.loads(line)["executions"]
    elif "number_of_executed_units" in stats:
        result.executions = stats["number_of_executed_units"]
    result.new_inputs = sum(1 for _ in out.iterdir())
    result.crashes = sorted(
        str(p)
        for p in artifacts.iterdir()
        if p.name not in before and p.name.startswith(_ARTIFACTS)
    )
    if code != 0 and not result.crashes:
        result.error = f"worker exited {code}: " + " | ".join(tail[-5:])
    if args.keep_corpus and not result.error:
        result.kept = _keep(name, args, out, seeds, scratch, result.crashes)
    return result


def _keep(
    name: str,
    args: argparse.Namespace,
    out: Path,
    seeds: Path,
    scratch: Path,
    crashes: list[str],
) -> int:
    """Merge what adds coverage (and every reproducer) into the corpus; how many."""
    known = {hashlib.sha256(p.read_bytes()).digest() for p in seeds.iterdir()}
    found: list[bytes] = []
    if args.engine == "atheris":
        merged = out.parent / "merged"
        merged.mkdir(exist_ok=True)
        job = {
            "target": name,
            "engine": "atheris",
            "merge": True,
            "seed": args.seed,
            "timeout": args.timeout,
            "rss_limit_mb": args.rss_limit_mb,
            "dirs": [str(merged), str(seeds), str(out)],
        }
        proc = _worker(job, scratch)
        proc.communicate()
        found = sorted(
            (p.read_bytes() for p in merged.iterdir()), key=lambda d: (len(d), d)
        )
    kept = 0
    for data in found:
        digest = hashlib.sha256(data).digest()
        if digest in known or len(data) > KEEP_MAX_BYTES or kept >= args.keep_max:
            continue
        (seeds / f"fuzz-{digest.hex()[:16]}").write_bytes(data)
        known.add(digest)
        kept += 1
    for crash in crashes:
        data = Path(crash).read_bytes()
        digest = hashlib.sha256(data).digest()
        if digest not in known:
            (seeds / f"crash-{digest.hex()[:16]}").write_bytes(data)
            known.add(digest)
            kept += 1
    return kept


def _line(result: Result) -> str:
    figures = (
        f"cov {result.coverage}, ft {result.features}"
        if result.coverage is not None
        else "no coverage figures (hypothesis)"
    )
    head = (
        f"{result.target}: {result.executions:,} executions in {result.seconds:.1f}s "
        f"({result.rate:,.0f}/s), {figures}"
    )
    if result.error:
        return f"{head}: ERROR {result.error}"
    if result.crashes:
        return (
            f"{head}: CRASH ({result.reason or 'see the reproducer'}), "
            f"reproducer {', '.join(result.crashes)}"
        )
    kept = f", {result.kept} kept in the corpus" if result.kept else ""
    return f"{head}: 0 crashes{kept}"


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    names = ", ".join(_names())
    parser = argparse.ArgumentParser(
        prog="python -m bench.fuzz",
        description="Coverage-guided fuzzing of the parsers of outside bytes.",
        epilog=f"Targets: {names}.",
    )
    parser.add_argument(
        "--target",
        action="append",
        metavar="NAME",
        help="a target to fuzz (repeat for several; default: all)",
    )
    parser.add_argument(
        "--runs", type=int, default=100_000, help="executions per target"
    )
    parser.add_argument(
        "--seed", type=int, default=SEED, help="libFuzzer's random seed (fixed)"
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="targets fuzzed at once (processes)"
    )
    parser.add_argument(
        "--max-time",
        type=int,
        default=0,
        metavar="SECONDS",
        help="stop a target after this long, whatever --runs says (0: no limit)",
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=30,
        metavar="SECONDS",
        help="an input running longer than this is a crash (a hang)",
    )
    parser.add_argument(
        "--rss-limit-mb",
        type=int,
        default=2048,
        help="a worker growing past this is a crash (a memory blow-up)",
    )
    parser.add_argument(
        "--corpus", type=Path, default=CORPUS, help="the corpus (read-only)"
    )
    parser.add_argument(
        "--crashes",
        type=Path,
        default=Path(tempfile.gettempdir()) / "saksi-fuzz-crashes",
        help="where reproducers go, one directory per target",
    )
    parser.add_argument(
        "--keep-corpus",
        action="store_true",
        help="merge new inputs that add coverage, and reproducers, into the corpus",
    )
    parser.add_argument(
        "--keep-max",
        type=int,
        default=KEEP_MAX,
        help=f"new inputs kept per target with --keep-corpus (default {KEEP_MAX})",
    )
    parser.add_argument(
        "--engine",
        choices=("auto", "atheris", "hypothesis"),
        default="auto",
        help="auto: atheris where it can be imported, else hypothesis",
    )
    parser.add_argument("--json", action="store_true", help="results as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Fuzz the chosen targets; the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    names = _names()
    chosen = args.target or names
    unknown = [n for n in chosen if n not in names]
    if unknown or args.runs < 1 or args.jobs < 1 or args.keep_max < 0:
        parser.print_usage(sys.stderr)
        problem = (
            f"unknown target {unknown[0]!r} (known: {', '.join(names)})"
            if unknown
            else "--runs and --jobs must be at least 1, --keep-max at least 0"
        )
        print(f"fuzz: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    fallback = args.engine == "auto" and not atheris_available()
    if args.engine == "auto":
        args.engine = "hypothesis" if fallback else "atheris"
    if args.engine == "atheris" and not atheris_available():
        print("fuzz: error: atheris is not installed here", file=sys.stderr)
        return EXIT_USAGE
    if args.engine == "hypothesis":
        why = "atheris is not available: " if fallback else ""
        _say(f"{why}byte-level Hypothesis engine, no coverage figures")
    missing = [n for n in chosen if not (args.corpus / n).is_dir()]
    if missing:
        print(
            f"fuzz: error: no corpus directory {args.corpus / missing[0]}",
            file=sys.stderr,
        )
        return EXIT_IO
    try:
        args.crashes.mkdir(parents=True, exist_ok=True)
        with (
            tempfile.TemporaryDirectory(prefix="saksi-fuzz-", dir=_fast()) as tmp,
            concurrent.futures.ThreadPoolExecutor(args.jobs) as pool,
        ):
            results = list(pool.map(lambda n: _run_one(n, args, Path(tmp)), chosen))
    except OSError as e:
        print(f"fuzz: error: {e}", file=sys.stderr)
        return EXIT_IO
    if args.json:
        rows = [asdict(r) | {"execs_per_second": round(r.rate, 1)} for r in results]
        print(
            json.dumps(
                {
                    "engine": args.engine,
                    "runs": args.runs,
                    "seed": args.seed,
                    "targets": rows,
                },
                indent=2,
            )
        )
    else:
        for result in results:
            print(_line(result))
    if any(r.crashes for r in results):
        return EXIT_CRASH
    if any(r.error for r in results):
        return EXIT_IO
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
