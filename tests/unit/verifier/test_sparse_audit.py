"""The audit of a selection (``Auditor(sparse=True)``): gaps are not failures.

A proof bundle holds some entries of the log, in order, with gaps. The audit's
own checks run on them; what rests on an entry the selection does not hold (the
revision before a gap, a recap's children) is counted as not checkable rather
than found missing, and everything the selection does hold is still checked:
a broken chain between two revisions it holds, a replayed revision, entries out
of order.
"""

from __future__ import annotations

import pytest

from tests.golden.build import write_log
from verifier.fullaudit import Auditor
from verifier.proof_bundle import CONTEXT_SCHEMAS
from verifier.record import parse_log_entry, parse_record


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """[(index, entry bytes, record)] of the golden log."""
    log = write_log(tmp_path_factory.mktemp("golden"))
    try:
        rows = list(log.storage.iter_entries())
    finally:
        log.close()
    return [
        (r.index, r.data, parse_record(parse_log_entry(r.data).envelope.payload))
        for r in rows
    ]


def _context(logged, before: int):
    return [(i, e) for i, e, r in logged if i < before and r.schema in CONTEXT_SCHEMAS]


def _failing(auditor: Auditor) -> dict[str, int]:
    summary = auditor.summary(None)
    return {
        c["check"]: c["findings"] for c in summary["checks"] if c["status"] == "fail"
    }


def _revisions(logged, subject: str):
    return [(i, e) for i, e, r in logged if r.subject == subject]


def test_a_revision_whose_predecessor_is_not_held_is_not_checkable(logged):
    _, correction = _revisions(logged, "results/ppwp/3171011001001")
    auditor = Auditor(sparse=True)
    for index, entry in [*_context(logged, correction[0]), correction]:
        auditor.add(index, entry)
    assert _failing(auditor) == {}
    assert auditor.unchecked["revision-chain"] == 1
    assert auditor.summary(None)["passed"] is True


def test_two_revisions_the_selection_holds_are_chained(logged):
    revisions = _revisions(logged, "results/ppwp/3171011001001")
    auditor = Auditor(sparse=True)
    entries = sorted(_context(logged, revisions[-1][0]) + revisions)
    for index, entry in entries:
        auditor.add(index, entry)
    assert auditor.unchecked == {}
    assert _failing(auditor) == {}
    # Revision 1 given twice (a replay at a later index): the chain check
    # fires on what the selection holds.
    replay = Auditor(sparse=True)
    for index, entry in [*entries, (revisions[-1][0] + 1000, revisions[-1][1])]:
        replay.add(index, entry)
    assert "revision-chain" in _failing(replay)


def test_a_recap_whose_children_are_missing_is_counted_not_found(logged):
    recaps = _revisions(logged, "recaps/ppwp/3171011001")
    auditor = Auditor(sparse=True)
    for index, entry in sorted(_context(logged, recaps[0][0]) + recaps[:1]):
        auditor.add(index, entry)
    assert _failing(auditor) == {}
    assert auditor.unchecked == {"recap-children": 1, "recap-sum": 1}
    # With every child held, the sum is checked (and holds).
    held = Auditor(sparse=True)
    for index, entry, _ in logged[: recaps[0][0] + 1]:
        held.add(index, entry)
    assert held.unchecked == {}
    assert held.checked["recap-sum"] == 1
    assert _failing(held) == {}


def test_entries_out_of_order_or_repeated_are_refused(logged):
    auditor = Auditor(sparse=True)
    auditor.add(0, logged[0][1])
    auditor.add(5, logged[5][1])
    for index in (5, 3):
        with pytest.raises(ValueError, match="expected an entry after 5"):
            auditor.add(index, logged[index][1])


def test_the_full_audit_still_refuses_gaps(logged):
    auditor = Auditor()
    auditor.add(0, logged[0][1])
    with pytest.raises(ValueError, match="expected entry 1"):
        auditor.add(2, logged[2][1])
