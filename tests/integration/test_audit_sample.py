"""The audit sample as an auditor, the operator and an observer run it.

A fresh log served on 127.0.0.1 with the real 2024 sample (DKI Jakarta's
region table, the presidential candidates, the published forms). An auditor
logs a plan with ``saksi audit plan``; until the log reaches the plan's seed
tree nothing can be drawn; then the operator draws it from the database
(``saksi audit sample``) and an observer draws it again through the verifier
alone over HTTP (``saksi-verify sample --check``): the same sample. A sample
file edited after the draw, a plan logged after its seed, and an entry that is
no plan are refused, with exit 1.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.helpers import dki_election, granted_key, run_saksi
from tests.helpers import run_verify as verify

PASS = "audit-sample-passphrase"


def saksi(*args: str) -> subprocess.CompletedProcess[str]:
    return run_saksi(*args, passphrase=PASS)


@pytest.fixture(scope="module")
def election(tmp_path_factory):
    """(directory, db URL, served URL, remote flags, keys, base): the sample."""
    base = tmp_path_factory.mktemp("audit-sample")
    with dki_election(base, "sample.saksi.example/pemilu2024", PASS) as served:
        yield (*served, base)


def plan(election, *args: str) -> dict:
    _, _, _, remote, keys, _ = election
    out = saksi(
        "audit", "plan", *remote, "--key", str(keys["auditor"]), "--json", *args
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def grow(election, count: int) -> None:
    """``count`` more entries: keys granted by the admin."""
    directory, _, _, remote, _, base = election
    for _ in range(count):
        n = len(list(base.glob("grown-*.key")))
        granted_key(
            base / f"grown-{n}.key",
            remote,
            str(directory / "admin.key"),
            "tps",
            "3171",
            PASS,
        )


def _size(election) -> int:
    """The served log's tree size, from its checkpoint."""
    answer = httpx.get(f"{election[2]}/log/checkpoint", timeout=30)
    return int(answer.text.split("\n")[1])


def operator_sample(election, index: int, out: Path) -> subprocess.CompletedProcess:
    directory, db, *_ = election
    return saksi(
        "audit", "sample", "--dir", str(directory), "--db", db,
        "--plan", str(index), "--out", str(out), "--json",
    )  # fmt: skip


def observer_sample(election, index: int, *args: str) -> subprocess.CompletedProcess:
    directory, _, url, *_ = election
    return verify(
        "sample", "--log", url, "--key", str(directory / "log.vkey"),
        "--plan", str(index), "--json", *args,
    )  # fmt: skip


def test_operator_and_observer_draw_the_same_stratified_sample(election, tmp_path):
    receipt = plan(
        election, "--name", "dki-recount", "--region", "31", "--strata", "4",
        "--risk-limit", "0.05", "--max-shift", "0.2", "--seed-after", "2",
    )  # fmt: skip
    index = receipt["index"]

    # Before the log reaches the seed tree, nobody can draw it.
    early = operator_sample(election, index, tmp_path / "early.json")
    assert early.returncode == 1
    assert "cannot be drawn until" in early.stderr
    assert not (tmp_path / "early.json").exists()
    assert observer_sample(election, index).returncode == 1

    grow(election, 3)
    mine = operator_sample(election, index, tmp_path / "operator.json")
    assert mine.returncode == 0, mine.stderr
    drawn = json.loads((tmp_path / "operator.json").read_text())
    theirs = observer_sample(
        election, index, "--check", str(tmp_path / "operator.json"),
        "--out", str(tmp_path / "observer.json"),
    )  # fmt: skip
    assert theirs.returncode == 0, theirs.stderr
    report = json.loads(theirs.stdout)
    assert report["verified"] is True
    assert report["check"]["differences"] == []
    again = json.loads((tmp_path / "observer.json").read_text())
    for key in ("plan", "population", "size", "strata", "units"):
        assert again[key] == drawn[key]
    assert again["seed"]["root"] == drawn["seed"]["root"]

    # As a person reads it.
    directory, _, url, *_ = election
    text = verify(
        "sample", "--log", url, "--key", str(directory / "log.vkey"),
        "--plan", str(index), "--check", str(tmp_path / "operator.json"),
    )  # fmt: skip
    assert text.returncode == 0, text.stderr
    print(text.stdout)
    assert f"plan: entry {index:,}, audits/31/dki-recount" in text.stdout
    assert "MATCHES the sample drawn here" in text.stdout
    assert text.stdout.rstrip().endswith("VERIFIED")
    assert drawn["units"][0]["unit"] in text.stdout

    # What the plan fixed, and what the log decided.
    assert drawn["plan"]["index"] == index
    assert drawn["seed"]["tree_size"] == index + 3
    size = drawn["size"]
    assert size["method"] == "aslam-popa-rivest-2008"
    assert size["margin"]["votes"] > 0
    assert size["stations_to_change_outcome"] >= 1
    assert size["n"] >= 1
    # Stratified by regency: DKI Jakarta's six (Kepulauan Seribu, five cities).
    strata = {row["stratum"] for row in drawn["strata"]}
    assert strata == {"3101", "3171", "3172", "3173", "3174", "3175"}
    assert sum(row["drawn"] for row in drawn["strata"]) == len(drawn["units"])
    assert drawn["population"]["units"] > drawn["population"]["with_forms"] > 0
    assert all(unit["unit"].startswith("31") for unit in drawn["units"])

    # A sample file edited after the draw is refused, with what differs.
    edited = dict(drawn)
    edited["units"] = [dict(u) for u in drawn["units"]]
    edited["units"][0]["unit"] = "3171011001999"
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    refused = observer_sample(election, index, "--check", str(tmp_path / "edited.json"))
    assert refused.returncode == 1
    differences = json.loads(refused.stdout)["check"]["differences"]
    assert any("3171011001999" in d for d in differences)


def test_a_fixed_sample_of_logged_forms(election, tmp_path):
    receipt = plan(
        election, "--name", "form-check", "--region", "31", "--unit", "form",
        "--size", "12", "--strata", "4", "--seed-after", "1",
    )  # fmt: skip
    grow(election, 2)
    made = operator_sample(election, receipt["index"], tmp_path / "forms.json")
    assert made.returncode == 0, made.stderr
    drawn = json.loads((tmp_path / "forms.json").read_text())
    assert drawn["size"] == {"method": "fixed", "n": 12, "drawn": len(drawn["units"])}
    assert len(drawn["units"]) >= 12
    assert all(u["unit"].startswith("results/ppwp/31") for u in drawn["units"])
    assert drawn["population"]["units"] == drawn["population"]["with_forms"]


def test_a_plan_logged_after_its_seed_is_refused(election, tmp_path):
    _, _, _, remote, keys, _ = election
    late = tmp_path / "late.json"
    late.write_text(
        json.dumps(
            {
                "schema": "audit.plan/v1",
                "subject": "audits/31/late",
                "body": {
                    "purpose": "manual recount",
                    "ballot": "ppwp",
                    "unit": "station",
                    "strata": 2,
                    "method": "fixed",
                    "size": 5,
                    "seed_size": 10,  # a tree the log had passed long before
                },
            }
        )
    )
    # The writer refuses it (422): its seed was known when it came. A log
    # that holds one anyway (a lying operator's) fails its audit there and
    # draws nothing from it (tests/unit/verifier/test_sample_check.py).
    size = _size(election)
    logged = saksi("submit", *remote, "--key", str(keys["auditor"]), str(late))
    assert logged.returncode == 1
    assert "schema-violation" in logged.stderr
    assert "not beyond this plan's place" in logged.stderr
    assert _size(election) == size

    # An entry that is no plan draws nothing either.
    other = observer_sample(election, 0)
    assert other.returncode == 1
    assert "not a plan" in other.stderr


def test_plan_usage_errors(election):
    bad = saksi(
        "audit", "plan", *election[3], "--key", str(election[4]["auditor"]),
        "--name", "x", "--ballot", "pdpr", "--risk-limit", "0.05",
    )  # fmt: skip
    assert bad.returncode == 2
    assert "use fixed for pdpr" in bad.stderr
    short = saksi(
        "audit", "plan", *election[3], "--key", str(election[4]["auditor"]),
        "--name", "y", "--region", "31", "--strata", "0", "--size", "3",
    )  # fmt: skip
    assert short.returncode == 2
    assert "no shorter than the plan's region" in short.stderr
