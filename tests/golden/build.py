"""The golden log: a small record log written by the current version, and its answers.

    python -m tests.golden.build            # rewrite tests/golden/ (a format change)

The log is written with fixed keys and a clock that does not move on its own,
so every byte is the same on every run: a genesis record, the region registry
of six stations, keys, the presidential candidates, five forms (one corrected
by the district), a village and a district recap (the village's signed again
after the correction). Then the read API (in process) is asked a fixed list of
questions (``QUESTIONS``); each answer's status, content type and exact body
are kept; and two selective proof bundles of it are kept, as their lines
(``bundles/``). ``tests/test_golden.py`` writes the log again and compares every
answer byte for byte: a difference is a format change, to be made on purpose
(run this, review the diff, say so in CHANGELOG.md), never a side effect.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from keys import Ed25519Signer
from keys.policy import DEFAULT_POLICY
from ledger.recordlog import RecordLog as OpenRecordLog
from ledger.sequencer import SequencerConfig
from ledger.storage.sql import SqlStorage
from tests.conftest import ORIGIN
from tests.recordlog import SIX_STATIONS, START, RecordLog, form, setup_election

HERE = Path(__file__).resolve().parent
ANSWERS = HERE / "answers"
BUNDLES = HERE / "bundles"
SIGNER = Ed25519Signer(ORIGIN, hashlib.sha256(b"saksi golden log").digest())
VILLAGE, DISTRICT = SIX_STATIONS[0][:10], SIX_STATIONS[0][:6]


class StillClock:
    """A clock that reads the same instant until told otherwise.

    The writer still dates each commit 1 ms after the last, so entries and
    checkpoints are dated the same way on every run.
    """

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# The policy the golden log was written with: the default policy of its day.
# Roles added to the default since (the monitor's ``canary``) are left out, and
# roles widened since keep their old spec, so that a policy change is not a
# change of every golden answer.
GOLDEN_POLICY = {
    "roles": {
        **{
            role: spec
            for role, spec in DEFAULT_POLICY["roles"].items()
            if role != "canary"
        },
        # The auditor wrote nothing before sampling plans.
        "auditor": {"schemas": [], "scope_lengths": [0]},
    }
}


class GoldenLog(RecordLog):
    """``RecordLog`` on a still clock, with no idle re-signing while it is written."""

    policy = GOLDEN_POLICY

    def open(self) -> None:
        self.clock = StillClock(START)  # type: ignore[assignment]
        self.service = OpenRecordLog(
            SqlStorage.open(self.url),
            self.log_signer,
            self.log_signer.verifier_key,
            ORIGIN,
            clock=self.clock,
            config=SequencerConfig(checkpoint_interval=86_400.0),
        )
        self.storage = self.service.storage
        self.gate = self.service.gate
        self.ledger = self.service.ledger
        self.service.start()


def _recap_body(log: RecordLog, stations: list[str], bodies: dict[str, dict]) -> dict:
    children, totals = {}, {"votes": {}, "valid": 0, "invalid": 0, "total": 0}
    for station in stations:
        children[station] = log.heads[f"results/ppwp/{station}"][1]
        body = bodies[station]
        for k, v in body["votes"].items():
            totals["votes"][k] = totals["votes"].get(k, 0) + v
        for k in ("valid", "invalid", "total"):
            totals[k] += body[k]
    return {"totals": totals, "children": children}


def write_log(directory: Path) -> RecordLog:
    """The golden log in ``directory`` (SQLite), open."""
    log = GoldenLog(f"sqlite:///{directory / 'golden.db'}", SIGNER)
    keys = setup_election(log, SIX_STATIONS)
    bodies: dict[str, dict] = {}
    votes = [(120, 80, 10), (60, 70, 5), (30, 30, 30), (1, 2, 3), (50, 0, 50)]
    for station, (a, b, c) in zip(SIX_STATIONS[:5], votes, strict=True):
        body = form({"100025": a, "100026": b, "100027": c}, stage="machine_reading")
        bodies[station] = body
        log.submit(
            log.payload("results.tally/v1", f"results/ppwp/{station}", body),
            [keys["reader"]],
        )
    in_village = [s for s in SIX_STATIONS[:5] if s.startswith(VILLAGE)]
    log.submit(
        log.payload(
            "results.recap/v1",
            f"recaps/ppwp/{VILLAGE}",
            _recap_body(log, in_village, bodies),
        ),
        [keys["village"]],
    )
    # The district corrects the first station's form: a recount.
    fixed = form({"100025": 121, "100026": 80, "100027": 10}, stage="recount")
    fixed["correction"] = {"reason_code": "recount_order", "reference": "BA-7"}
    bodies[SIX_STATIONS[0]] = fixed
    log.submit(
        log.payload(
            "results.tally/v1",
            f"results/ppwp/{SIX_STATIONS[0]}",
            fixed,
            reason="recount ordered by the district",
        ),
        [keys["district"]],
    )
    revised = _recap_body(log, in_village, bodies) | {
        "correction": {"reason_code": "child_corrected", "reference": "BA-7"}
    }
    log.submit(
        log.payload(
            "results.recap/v1",
            f"recaps/ppwp/{VILLAGE}",
            revised,
            reason="a child was corrected",
        ),
        [keys["village"]],
    )
    return log


def questions(size: int, leaf: str) -> list[str]:
    """The read requests whose answers are kept (``size``: the log's size)."""
    station = SIX_STATIONS[0]
    asked = [
        "/log/checkpoint",
        f"/log/tile/0/000.p/{size}",
        f"/log/tile/entries/000.p/{size}",
        "/v1/log",
        "/v1/keys",
        "/v1/keys?size=3",
        f"/v1/subjects/results/ppwp/{station}",
        f"/v1/subjects/recaps/ppwp/{VILLAGE}",
        f"/v1/proofs/inclusion?leaf_hash={leaf}",
        "/v1/proofs/consistency?old=1",
        f"/v1/proofs/consistency?old=7&new={size - 2}",
        f"/v1/proofs/export?index={size - 1}",
        "/v1/results/ppwp/national",
        f"/v1/results/ppwp/{VILLAGE}",
        f"/v1/results/ppwp/{DISTRICT}",
        f"/v1/results/ppwp/{station}",
        f"/v1/results/ppwp/{VILLAGE}/corrections",
        f"/v1/results/ppwp/{DISTRICT[:4]}/below/village",
        f"/v1/entries/{size}",
        "/problems/stale-revision",
    ]
    asked += [f"/v1/entries/{i}" for i in range(size)]
    asked += [f"/v1/proofs/inclusion?index={i}" for i in range(0, size, 3)]
    return asked


def ask(log: RecordLog) -> dict[str, dict[str, Any]]:
    """Every question's answer: status, content type and body."""
    client = TestClient(create_app(log.service, ApiSettings()))
    size = log.ledger.size
    leaf = log.ledger.reader.leaf_hash(size - 1).hex()
    answers = {}
    for path in questions(size, leaf):
        response = client.get(path)
        answers[path] = {
            "status": response.status_code,
            "content_type": response.headers.get("content-type", ""),
            "body": response.content,
        }
    return answers


def bundles() -> dict[str, bytes]:
    """The golden log's proof bundles (``saksi-proof-bundle/v1``), by name, as
    their lines (gzip's bytes are zlib's business, the lines are the format)."""
    from tests.bundle_mutations import clean_bundles

    BUNDLES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        return {c.name: gzip.decompress(c.raw) for c in clean_bundles(Path(tmp))}


def file_name(number: int) -> str:
    """Where answer ``number`` is kept."""
    return f"{number:03d}.body"


def main() -> int:
    """Rewrite tests/golden/ from the current version."""
    with tempfile.TemporaryDirectory() as tmp:
        log = write_log(Path(tmp))
        try:
            answers = ask(log)
            vkey = str(log.ledger.verifier_key)
            size = log.ledger.size
        finally:
            log.close()
    ANSWERS.mkdir(parents=True, exist_ok=True)
    for old in ANSWERS.glob("*.body"):
        old.unlink()
    index = []
    for number, (path, answer) in enumerate(answers.items()):
        (ANSWERS / file_name(number)).write_bytes(answer["body"])
        index.append(
            {
                "path": path,
                "status": answer["status"],
                "content_type": answer["content_type"],
                "file": file_name(number),
            }
        )
    (HERE / "answers.json").write_text(json.dumps(index, indent=1) + "\n")
    (HERE / "log.vkey").write_text(vkey + "\n")
    for name, lines in bundles().items():
        (BUNDLES / f"{name}.jsonl").write_bytes(lines)
    print(f"golden log: {size} entries, {len(index)} answers", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
