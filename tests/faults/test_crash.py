"""R1: SIGKILL the served log again and again under concurrent signed writes.

``bench.hammer`` runs ``saksi serve`` (with a real witness) and writes signed
records from many clients, repeating a tenth of them; the server is killed with
SIGKILL at random moments during the appends and started again. A write whose
answer was lost is sent again until it has one. At the end, on each backend:

* every acknowledged record is in the log at the index it was given, byte for
  byte (read back from entry 0 by the full reader), and proven in a witnessed
  checkpoint;
* the tree grew by exactly the number of distinct payloads: nothing logged
  twice, nothing acknowledged lost, indices contiguous (the full reader
  recomputes every witnessed root from the entries);
* every checkpoint the observer saw is consistent with the next (a proof built
  from the tiles), and the witness cosigned them;
* ``saksi check`` and ``saksi-verify audit`` pass.

Small in the suite (20 kills during 2,000 appends from 16 clients); under
``python -m bench.fitness`` at RELIABILITY.md's size (20 kills during 50,000
appends from 64 clients).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.hammer import Plan, hammer, served_log
from tests.evidence import FULL, scale

KILLS = 20


@pytest.mark.slow
def test_sigkill_under_load_loses_nothing(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, evidence
) -> None:
    db = None
    if backend == "postgres":
        db = request.getfixturevalue("pg_cluster").new_database()
    plan = Plan(
        writers=scale(16, 64),
        appends=scale(2_000, 50_000),
        readers=scale(1, 4),
        kills=KILLS,
        settle=300.0 if FULL else 240.0,
    )
    with served_log(backend, tmp_path, db) as served:
        figures = hammer(served, plan)
        # Every figure, in full, with any failure below (not a shortened repr).
        errors = json.dumps(figures, sort_keys=True, default=str)
        assert figures["kills"] == KILLS
        assert figures["acked"] >= plan.appends
        assert figures["lost"] == 0, errors
        assert figures["unresolved"] == 0, errors
        assert figures["tree_growth"] == figures["distinct_payloads"], figures
        assert figures["not_witnessed"] == 0
        assert figures["not_read_back"] == 0
        assert figures["repeat_mismatches"] == 0, errors
        assert figures["receipt_failures"] == 0, errors
        assert figures["inclusion_failures"] == 0, errors
        assert figures["full_read_mismatches"] == 0, errors
        assert figures["forks"] == 0, errors
        assert figures["inclusion_verified"] >= figures["acked"]
        assert figures["consistency_checks"] >= 1
        assert figures["ok"], figures
        check = served.check()
        assert check["ok"], check
        audit = served.audit(tmp_path / "observer")
        assert audit["passed"], audit
    evidence.record(
        "R1",
        attempts=figures["acked"],
        detected=figures["inclusion_verified"],
        backend=backend,
        kills=figures["kills"],
        clients=plan.writers,
        acknowledged=figures["acked"],
        lost=figures["lost"],
        answers_lost=figures["unknown"],
        recovered=figures["recovered"],
        checkpoints_consistent=figures["consistency_checks"],
        writes_answered=f"{figures['availability']['POST /v1/entries']:.1%}",
        tree_size=check.get("size"),
    )
