"""Hypothesis stateful model: the real ledger (SQLite) against a plain list.

Rules: append, append_many, repeat an earlier entry, prove inclusion, prove
consistency between remembered checkpoints, remember a checkpoint, restart, and
tamper with a copy of the database. Invariants after every step: size, root and
stored entries equal the model's, and the signed checkpoint verifies.
Fast profile: 30 examples x 30 steps; the fitness run takes RELIABILITY.md
R14's 500 x 100 (SAKSI_STATEFUL_EXAMPLES overrides the examples).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import sqlalchemy as sa
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from keys import Ed25519Signer
from ledger.fullcheck import check_log
from ledger.ledger import Ledger
from ledger.storage.sql import SqlStorage
from tests import oracle
from tests.conftest import ORIGIN, FixedClock, create_log
from tests.evidence import scale
from tests.helpers import TEST_SEED
from verifier.checkpoint import verify_checkpoint, verify_inclusion_in_checkpoint
from verifier.proof_check import verify_consistency, verify_inclusion

EXAMPLES = int(os.environ.get("SAKSI_STATEFUL_EXAMPLES", scale(30, 500)))
STEPS = scale(30, 100)
# What the machines did, over every example of a run (the fitness figures).
DONE: Counter[str] = Counter()
entries = st.binary(min_size=0, max_size=64)


class LedgerMachine(RuleBasedStateMachine):
    checkpoints = Bundle("checkpoints")

    @initialize()
    def setup(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="saksi-stateful-"))
        self.url = f"sqlite:///{self.dir / 'log.db'}"
        self.signer = Ed25519Signer(ORIGIN, TEST_SEED)
        create_log(self.url, self.signer).close()
        self.clock = FixedClock()
        self.model: list[bytes] = []
        self.ledger: Ledger | None = None
        self.open()
        DONE["examples"] += 1

    def open(self) -> None:
        self.ledger = Ledger.of_entries(
            SqlStorage.open(self.url),
            self.signer,
            self.signer.verifier_key,
            ORIGIN,
            clock=self.clock,
        )
        self.ledger.start()

    def teardown(self) -> None:
        if self.ledger is not None:
            self.ledger.close()
            self.ledger.storage.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def expect_index(self, data: bytes) -> int:
        if data in self.model:
            return self.model.index(data)
        self.model.append(data)
        return len(self.model) - 1

    def check_receipt(self, receipt) -> None:
        checkpoint = verify_inclusion_in_checkpoint(
            receipt.checkpoint,
            self.signer.verifier_key,
            ORIGIN,
            receipt.index,
            receipt.leaf_hash,
            receipt.proof,
        )
        assert checkpoint.size == receipt.size

    @rule(data=entries)
    def append(self, data: bytes) -> None:
        want = self.expect_index(data)
        receipt = self.ledger.append(data)
        assert receipt.index == want
        self.check_receipt(receipt)
        DONE["appends"] += 1

    @rule(batch=st.lists(entries, max_size=120))
    def append_many(self, batch: list[bytes]) -> None:
        want = [self.expect_index(d) for d in batch]
        receipts = self.ledger.append_many(batch)
        assert [r.index for r in receipts] == want
        for r in receipts[::17]:
            self.check_receipt(r)
        DONE["appends"] += len(batch)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def repeat(self, data) -> None:
        index = data.draw(st.integers(0, len(self.model) - 1))
        receipt = self.ledger.append(self.model[index])
        assert receipt.index == index
        assert receipt.duplicate
        DONE["repeats"] += 1

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def prove_inclusion(self, data) -> None:
        size = data.draw(st.integers(1, len(self.model)))
        index = data.draw(st.integers(0, size - 1))
        leaves = [oracle.leaf(x) for x in self.model[:size]]
        proof = self.ledger.reader.inclusion_proof(index, size)
        verify_inclusion(index, size, leaves[index], proof, oracle.mth(leaves))
        DONE["inclusion_proofs"] += 1

    @rule(target=checkpoints)
    def checkpoint(self) -> tuple[int, bytes]:
        cp, _ = verify_checkpoint(
            self.ledger.reader.checkpoint(), self.signer.verifier_key, ORIGIN
        )
        return cp.size, cp.root_hash

    @rule(old=checkpoints, new=checkpoints)
    def prove_consistency(self, old, new) -> None:
        (m, root_m), (n, root_n) = sorted([old, new])
        if m == 0:
            return
        proof = self.ledger.reader.consistency_proof(m, n)
        verify_consistency(m, n, root_m, root_n, proof)
        DONE["consistency_proofs"] += 1

    @rule()
    def restart(self) -> None:
        self.ledger.close()
        self.ledger.storage.close()
        self.open()
        DONE["restarts"] += 1

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def tamper_copy(self, data) -> None:
        copy = self.dir / "tampered.db"
        with self.ledger.storage.engine.connect() as conn:
            conn.exec_driver_sql(f"VACUUM INTO '{copy}'")
        index = data.draw(st.integers(0, len(self.model) - 1))
        storage = SqlStorage.open(f"sqlite:///{copy}")
        with storage.engine.begin() as conn:
            conn.execute(sa.text("DROP TRIGGER entries_no_update"))
            conn.execute(
                sa.text("UPDATE entries SET data = :d WHERE idx = :i"),
                {"d": self.model[index] + b"\x00", "i": index},
            )
        report = check_log(storage, self.signer.verifier_key, ORIGIN)
        storage.close()
        copy.unlink()
        DONE["tampered"] += 1
        assert not report.ok
        # The dropped trigger is reported first, then the edited entry.
        assert report.problems[0].kind == "guards"
        assert next(p for p in report.problems if p.kind != "guards").index == index
        DONE["tamper_detected"] += 1

    @invariant()
    def matches_model(self) -> None:
        if self.ledger is None:
            return
        assert self.ledger.size == len(self.model)
        leaves = [oracle.leaf(x) for x in self.model]
        assert self.ledger.head.root == oracle.mth(leaves)
        DONE["invariant_checks"] += 1


def test_the_ledger_follows_its_model(evidence):
    DONE.clear()
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None
        ),
    )
    evidence.record(
        "R14",
        attempts=DONE["tampered"],
        detected=DONE["tamper_detected"],
        examples=DONE["examples"],
        steps_at_most=STEPS,
        appends=DONE["appends"],
        repeats=DONE["repeats"],
        restarts=DONE["restarts"],
        inclusion_proofs=DONE["inclusion_proofs"],
        consistency_proofs=DONE["consistency_proofs"],
        invariant_checks=DONE["invariant_checks"],
    )
