"""The fitness run (uji kelaikan): every reliability and threat test at full size.

    python -m bench.fitness [--small] [--only T14,R1] [--json] [--write]

SECURITY.md's evidence table ("Evidence for the fitness test") names, for each
threat and reliability test of ``../shared/RELIABILITY.md`` that applies, its
control and the tests that prove it (``file::test`` node ids). This command
runs exactly those tests with pytest, at RELIABILITY.md's full size
(``SAKSI_FITNESS_SIZE=full``; ``--small`` runs the suite's size), each test
reporting its figures through the ``evidence`` fixture (``tests/evidence.py``).
Then it prints the same table with the figures this run measured: attempts,
detected or refused, false alarms, and the figures each test adds. ``--write``
puts them in SECURITY.md's table and BENCHMARKS.md's ``fitness`` section.

Exit status: 0 every test passed and every row has its figure; 1 a test failed
or a row has none; 2 usage; 3 pytest could not be run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.report import machine, write_section

ROOT = Path(__file__).resolve().parent.parent
SECURITY = ROOT / "SECURITY.md"
# Every figure a --write run measured, by row: a run of some rows replaces
# theirs and keeps the others', so the table can be filled a few rows at a time.
ARCHIVE = ROOT / "bench" / "figures" / "fitness-evidence.json"
BEGIN, END = "<!-- fitness:begin -->", "<!-- fitness:end -->"
_ROW = re.compile(r"^\|\s*(?P<id>[TR]\d+)\s*\|(?P<rest>.*)\|\s*$")
_NODE = re.compile(r"`(tests/[^`:]+\.py::[^`\s]+)`")


@dataclass
class Row:
    """One row of the evidence table: an id of RELIABILITY.md and its proof."""

    ident: str
    threat: str
    control: str
    tests: tuple[str, ...]  # pytest node ids (a test's every parameter)
    figure: str
    evidence: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cells(self) -> list[str]:
        return [self.ident, self.threat, self.control, self._tests_cell(), self.figure]

    def _tests_cell(self) -> str:
        return ", ".join(f"`{t}`" for t in self.tests) or "—"


def read_table(text: str) -> list[Row]:
    """The rows between the fitness markers of SECURITY.md."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"SECURITY.md has no {BEGIN} ... {END} table")
    block = text[text.index(BEGIN) : text.index(END)]
    rows = []
    for line in block.splitlines():
        match = _ROW.match(line)
        if not match:
            continue
        cells = [c.strip() for c in match["rest"].split("|")]
        if len(cells) != 4:
            raise ValueError(f"SECURITY.md evidence row {match['id']}: want 5 cells")
        threat, control, tests, figure = cells
        rows.append(
            Row(match["id"], threat, control, tuple(_NODE.findall(tests)), figure)
        )
    return rows


def _count(n: int) -> str:
    return f"{n:,}"


def summarize(evidence: list[dict[str, Any]]) -> str:
    """One cell: the counts over every test and backend, then each one's figures."""
    if not evidence:
        return "no figure (the test did not report: failed, skipped or not run)"
    attempts = sum(int(e["attempts"]) for e in evidence)
    detected = sum(int(e["detected"]) for e in evidence)
    false_alarms = sum(int(e["false_alarms"]) for e in evidence)
    parts = [
        f"**{_count(detected)} of {_count(attempts)}** detected or refused, "
        f"{_count(false_alarms)} false alarms"
    ]
    for e in evidence:
        figures = e.get("figures") or {}
        shown = ", ".join(f"{k} {_show(v)}" for k, v in figures.items())
        name = e["test"].split("::", 1)[-1]
        parts.append(f"{name}: {shown}" if shown else name)
    size = {e["size"] for e in evidence}
    parts.append(f"({'/'.join(sorted(size))} size)")
    return "; ".join(parts)


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return _count(value)
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value).replace("|", "/")


def render(rows: Iterable[Row]) -> str:
    lines = [
        "| # | threat or test | control | the tests that prove it | figure "
        "(attempts, detected or refused, false alarms) |",
        "|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(row.cells) + " |" for row in rows]
    return "\n".join(lines)


def write_table(path: Path, rows: list[Row], command: str) -> None:
    text = path.read_text(encoding="utf-8")
    start = text.index(BEGIN) + len(BEGIN)
    end = text.index(END)
    note = (
        f"\nFigures of `{command}`, "
        f"{time.strftime('%Y-%m-%d', time.gmtime())} (BENCHMARKS.md, `fitness`, "
        "names the machine).\n\n"
    )
    path.write_text(text[:start] + note + render(rows) + "\n" + text[end:], "utf-8")


def run_tests(nodes: list[str], size: str, out: Path) -> int:
    """pytest on ``nodes`` at ``size``; its evidence lines go to ``out``."""
    env = {
        **os.environ,
        "SAKSI_FITNESS_SIZE": size,
        "SAKSI_FITNESS_EVIDENCE": str(out),
    }
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    command += ["-rfEs", *nodes]
    print(f"fitness: pytest, {len(nodes)} tests at {size} size", file=sys.stderr)
    # pytest's own report goes to stderr: stdout is the table (or the JSON).
    return subprocess.run(
        command, cwd=ROOT, env=env, stdout=sys.stderr, check=False
    ).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fitness",
        description="Run every fitness test at full size and print the evidence.",
    )
    parser.add_argument("--small", action="store_true", help="the suite's size")
    parser.add_argument("--only", help="comma-separated ids (T14,R1): those rows only")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument(
        "--write",
        action="store_true",
        help="put the figures in SECURITY.md and BENCHMARKS.md",
    )
    parser.add_argument(
        "--from-archive",
        action="store_true",
        help="run nothing: write SECURITY.md and BENCHMARKS.md from the figures "
        "kept in bench/figures/fitness-evidence.json",
    )
    args = parser.parse_args(argv)
    try:
        rows = read_table(SECURITY.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        print(f"fitness: {e}", file=sys.stderr)
        return 2
    if args.from_archive:
        return _from_archive(rows)
    every = rows
    if args.only:
        wanted = {i.strip() for i in args.only.split(",") if i.strip()}
        unknown = wanted - {r.ident for r in rows}
        if unknown:
            parser.error(f"no such rows in SECURITY.md: {', '.join(sorted(unknown))}")
        rows = [r for r in rows if r.ident in wanted]
    nodes = sorted({t for r in rows for t in r.tests})
    size = "small" if args.small else "full"
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="saksi-fitness-") as tmp:
        out = Path(tmp) / "evidence.jsonl"
        out.touch()
        try:
            status = run_tests(nodes, size, out) if nodes else 0
        except OSError as e:
            print(f"fitness: cannot run pytest: {e}", file=sys.stderr)
            return 3
        found = [json.loads(line) for line in out.read_text().splitlines() if line]
    seconds = time.monotonic() - started
    for row in rows:
        row.evidence = [
            e for e in found if e["id"] == row.ident and _named(e["test"], row.tests)
        ]
        row.figure = summarize(row.evidence) if row.tests else row.figure
    missing = [r.ident for r in rows if r.tests and not r.evidence]
    if args.json:
        print(json.dumps([_as_json(r) for r in rows], indent=1))
    else:
        print(render(rows))
        print(
            f"\n{len(nodes)} tests at {size} size in {seconds / 60:,.1f} min; "
            f"pytest exit {status}; rows without a figure: {', '.join(missing) or 0}"
        )
    if args.write:
        command = "python -m bench.fitness" + (" --small" if args.small else "")
        if args.only:
            command += f" --only {args.only}"
        _write(every, _archive(rows, command + " --write", size, seconds, status))
    return 0 if status == 0 and not missing else 1


def _write(rows: list[Row], archive: dict[str, dict[str, Any]]) -> None:
    """SECURITY.md's table and BENCHMARKS.md's section, every row from ``archive``."""
    for row in rows:
        kept = archive.get(row.ident)
        if kept is not None and row.tests:
            row.evidence = kept["evidence"]
            row.figure = summarize(row.evidence)
            failed = kept["run"].get("pytest_exit", 0)
            if failed:
                # Some of the run's tests failed: what passed is shown, marked.
                row.figure = (
                    f"**a test failed in this run (pytest exit {failed})**; "
                    + (row.figure)
                )
    write_table(SECURITY, rows, "python -m bench.fitness --write")
    write_section(ROOT / "BENCHMARKS.md", "fitness", _section(rows, archive))


def _from_archive(rows: list[Row]) -> int:
    try:
        archive = json.loads(ARCHIVE.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        print(f"fitness: cannot read {ARCHIVE}: {e}", file=sys.stderr)
        return 3
    _write(rows, archive)
    missing = [
        r.ident
        for r in rows
        if r.tests and not (archive.get(r.ident) or {}).get("evidence")
    ]
    print(
        f"written from {ARCHIVE.name}; rows without a figure: {', '.join(missing) or 0}"
    )
    return 0 if not missing else 1


def _named(node: str, tests: tuple[str, ...]) -> bool:
    """Whether pytest's ``node`` (with parameters) is one the row names."""
    return any(node == t or node.startswith(t + "[") for t in tests)


def _as_json(row: Row) -> dict[str, Any]:
    return {
        "id": row.ident,
        "threat": row.threat,
        "control": row.control,
        "tests": list(row.tests),
        "figure": row.figure,
        "evidence": row.evidence,
    }


def _archive(
    rows: list[Row], command: str, size: str, seconds: float, status: int
) -> dict[str, dict[str, Any]]:
    """Keep this run's rows in ARCHIVE (the others as they were); all of them."""
    try:
        archive = json.loads(ARCHIVE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        archive = {}
    run = {
        "command": command,
        "size": size,
        "minutes": round(seconds / 60, 1),
        "pytest_exit": status,
        "machine": machine("").rstrip(". "),
    }
    for row in rows:
        if row.tests:
            archive[row.ident] = {"run": run, "evidence": row.evidence}
    ARCHIVE.parent.mkdir(parents=True, exist_ok=True)
    ARCHIVE.write_text(json.dumps(archive, indent=1, sort_keys=True) + "\n", "utf-8")
    return dict(archive)


def _section(rows: list[Row], archive: dict[str, dict[str, Any]]) -> str:
    runs: dict[str, dict[str, Any]] = {}
    for ident, kept in archive.items():
        runs.setdefault(kept["run"]["command"], kept["run"]).setdefault("ids", [])
        runs[kept["run"]["command"]]["ids"].append(ident)
    lines = [
        "## The fitness run (uji kelaikan)",
        "",
        "Written by `python -m bench.fitness --write` (the figures also go into "
        "SECURITY.md's evidence table). The rows come from these runs:",
        "",
    ]
    for command, run in runs.items():
        lines.append(
            f"* `{command}` ({run['size']} size, {run['minutes']:,} min; "
            f"{run['machine']}): {', '.join(sorted(run['ids'], key=_order))}"
        )
    lines += [
        "",
        "Each test starts its own servers on 127.0.0.1 and stops them.",
        "",
        "| # | test | backend | attempts | detected or refused | false alarms "
        "| figures |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for e in archive.get(row.ident, {}).get("evidence", []):
            figures = dict(e.get("figures") or {})
            backend = str(figures.pop("backend", "—"))
            shown = ", ".join(f"{k} {_show(v)}" for k, v in figures.items())
            lines.append(
                f"| {row.ident} | `{e['test']}` | {backend} | {_count(e['attempts'])} "
                f"| {_count(e['detected'])} | {_count(e['false_alarms'])} | {shown} |"
            )
    return "\n".join(lines)


def _order(ident: str) -> tuple[str, int]:
    return ("B" if ident.startswith("R") else "A"), int(ident[1:])


if __name__ == "__main__":
    raise SystemExit(main())
