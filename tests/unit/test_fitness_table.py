"""SECURITY.md's evidence table and the fitness command that fills it.

The table is what an auditor reads and what ``python -m bench.fitness`` runs:
every id of RELIABILITY.md appears once, every test it names exists (a renamed
test must not silently drop out of the fitness run), and the command prints
the figures a test really reported.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from bench.fitness import SECURITY, Row, read_table, render, summarize
from tests.helpers import ROOT

IDS = [f"T{n}" for n in range(1, 19)] + [f"R{n}" for n in range(1, 16)]


def _tests_in(path: str) -> set[str]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    names = {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    names |= {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    return names


def test_every_id_has_one_row_and_every_named_test_exists():
    rows = read_table(SECURITY.read_text(encoding="utf-8"))
    ids = [row.ident for row in rows]
    assert sorted(ids, key=IDS.index) == IDS, "each id of RELIABILITY.md, once"
    for row in rows:
        assert row.threat
        assert row.control
        if not row.tests:
            # No test here: the row says why, and what is left to the reader.
            assert len(row.figure) > 20, row.ident
        for node in row.tests:
            path, _, name = node.partition("::")
            assert (ROOT / path).is_file(), node
            assert name.split("::")[0] in _tests_in(path), f"{row.ident}: no {node}"


def test_a_cell_sums_the_counts_and_shows_each_tests_figures():
    evidence = [
        {"id": "R1", "test": "tests/a.py::test_x[sqlite]", "size": "full",
         "attempts": 50_000, "detected": 50_000, "false_alarms": 0,
         "figures": {"kills": 20, "lost": 0}},
        {"id": "R1", "test": "tests/a.py::test_x[postgres]", "size": "full",
         "attempts": 51_000, "detected": 50_999, "false_alarms": 1,
         "figures": {"merge_delay_p99_s": 0.41}},
    ]  # fmt: skip
    cell = summarize(evidence)
    assert cell.startswith("**100,999 of 101,000** detected or refused, 1 false alarms")
    assert "test_x[sqlite]: kills 20, lost 0" in cell
    assert "merge_delay_p99_s 0.41" in cell
    assert "(full size)" in cell
    assert summarize([]).startswith("no figure")
    row = Row("R1", "a threat", "a control", ("tests/a.py::test_x",), cell)
    table = render([row])
    assert table.splitlines()[2].count(" | ") == 4


@pytest.mark.slow
def test_the_fitness_command_runs_a_row_and_prints_its_figure():
    out = subprocess.run(
        [sys.executable, "-m", "bench.fitness", "--small", "--only", "T14", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    (row,) = json.loads(out.stdout)
    assert row["id"] == "T14"
    assert {e["figures"]["backend"] for e in row["evidence"]} == {
        "sqlite",
        "postgresql",
    }
    assert all(e["attempts"] == e["detected"] > 0 for e in row["evidence"])
    assert "detected or refused, 0 false alarms" in row["figure"]


def test_the_fitness_command_refuses_an_unknown_row():
    out = subprocess.run(
        [sys.executable, "-m", "bench.fitness", "--only", "T99"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 2
    assert "T99" in out.stderr
