"""The fitness evidence: one size knob and the figures a reliability test reports.

The reliability and threat tests run small in every suite run and at full size
under ``python -m bench.fitness``, which sets ``SAKSI_FITNESS_SIZE=full`` and
names a file in ``SAKSI_FITNESS_EVIDENCE``. A test sizes its load with
:func:`scale` and reports what it did through the ``evidence`` fixture: the
threat or test it is evidence for (an id of ``../shared/RELIABILITY.md``, ``T1``
to ``T18``, ``R1`` to ``R15``), how many attempts it made, how many it detected
or refused, the false alarms, and any further figures. The fitness command
reads those lines back and prints SECURITY.md's evidence table with them.

A test reports only after its assertions hold: a failed test leaves no figure.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Generator
from pathlib import Path

import pytest

__all__ = ["FULL", "SIZE", "Evidence", "evidence", "scale"]

SIZE = os.environ.get("SAKSI_FITNESS_SIZE", "small")
if SIZE not in ("small", "full"):
    raise RuntimeError(f"SAKSI_FITNESS_SIZE is {SIZE!r}: use small or full")
FULL = SIZE == "full"
_ID = re.compile(r"^(T([1-9]|1[0-8])|R([1-9]|1[0-5]))$")


def scale(small: int, full: int) -> int:
    """The count this run uses: ``small`` in the suite, ``full`` in the fitness run."""
    return full if FULL else small


class Evidence:
    """What one test reports; written as JSON lines when the fitness run asks."""

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self.rows: list[dict[str, object]] = []

    def record(
        self,
        ident: str,
        *,
        attempts: int,
        detected: int,
        false_alarms: int = 0,
        **figures: object,
    ) -> None:
        """Report ``attempts`` tries of which ``detected`` were caught or refused.

        ``ident`` is RELIABILITY.md's id (``T14``, ``R1``). ``figures`` are
        JSON values (counts, rates, seconds) the table shows beside the counts.
        """
        if not _ID.match(ident):
            raise ValueError(
                f"{ident!r} is not an id of RELIABILITY.md (T1..T18, R1..R15)"
            )
        if min(attempts, detected, false_alarms) < 0 or detected > attempts:
            raise ValueError("counts must be whole, with detected <= attempts")
        row = {
            "id": ident,
            "test": self.nodeid,
            "size": SIZE,
            "attempts": attempts,
            "detected": detected,
            "false_alarms": false_alarms,
            "figures": figures,
        }
        json.dumps(row)  # a figure that is not JSON fails here, in the test
        self.rows.append(row)

    def flush(self) -> None:
        target = os.environ.get("SAKSI_FITNESS_EVIDENCE")
        if not target or not self.rows:
            return
        with Path(target).open("a", encoding="utf-8") as out:
            for row in self.rows:
                out.write(json.dumps(row, sort_keys=True) + "\n")


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Evidence:
    """The figures this test reports (kept only if the test passes)."""
    found = Evidence(request.node.nodeid)
    request.node.stash[_KEY] = found
    return found


_KEY = pytest.StashKey[Evidence]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if call.when == "call" and report.passed and _KEY in item.stash:
        item.stash[_KEY].flush()
    return report
