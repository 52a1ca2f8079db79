"""Hypothesis: recap staleness kept up to date as the log grows, against its definition.

The results reads keep, per recap subject, whether its latest revision is stale
and every correction per region, updated from the records logged since the last
read (``results.ResultsIndex``). Here random sequences of form
corrections and recap (re)signings, at any level and in any order, some naming
only part of their children, run against a real log (SQLite). After every step
each region's answer must equal the definition, recomputed from scratch by the
test from what it submitted: a recap is stale when a child revision it names
is no longer that child's latest, or a child recap it names is itself stale.
An index rebuilt from an empty start on the same log answers the same.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from keys import Ed25519Signer
from results import ResultsIndex, ResultsReader
from tests.conftest import ORIGIN, TEST_SEED
from tests.recordlog import SIX_STATIONS, RecordLog, form, setup_election
from verifier.election import child_subject, recap_subject, tally_subject
from verifier.rules import add_totals, totals_of

STATIONS = SIX_STATIONS
REGIONS = sorted(
    {s[:n] for s in STATIONS for n in (10, 6, 4, 2)} | {""}, key=lambda r: -len(r)
)
ROLE = {10: "village", 6: "district", 4: "regency", 2: "province", 0: "national"}


def _children(region: str) -> list[str]:
    codes = STATIONS + [r for r in REGIONS if r]
    return sorted(c for c in codes if child_subject("ppwp", region, c) is not None)


def _subject(code: str) -> str:
    return (
        tally_subject("ppwp", code) if len(code) == 13 else recap_subject("ppwp", code)
    )


class Model:
    """What the test submitted: every subject's latest payload, and its body."""

    def __init__(self, log: RecordLog) -> None:
        self.log = log
        self.bodies: dict[str, dict] = {}

    def head(self, code: str) -> str | None:
        found = self.log.heads.get(_subject(code))
        return None if found is None else found[1]

    def stale(self, region: str) -> list[str]:
        """The stale children of the recap of ``region``, from the definition."""
        body = self.bodies[_subject(region)]
        return sorted(
            code
            for code, digest in body["children"].items()
            if self.head(code) != digest or (len(code) < 13 and bool(self.stale(code)))
        )


actions = st.lists(
    st.one_of(
        st.tuples(st.just("correct"), st.sampled_from(STATIONS), st.integers(0, 9)),
        st.tuples(st.just("recap"), st.sampled_from(REGIONS), st.integers(0, 3)),
        st.tuples(st.just("build"), st.sampled_from(REGIONS), st.just(0)),
    ),
    min_size=1,
    max_size=14,
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(actions)
@example([("build", "", 0), ("correct", STATIONS[0], 1)])
@example([("build", "", 0), ("correct", STATIONS[0], 1), ("build", "3171011001", 0)])
@example([("build", "31", 0), ("recap", "", 0), ("correct", STATIONS[3], 2)])
def test_staleness_follows_its_definition_step_by_step(steps):
    with tempfile.TemporaryDirectory() as tmp:
        signer = Ed25519Signer(ORIGIN, TEST_SEED)
        log = RecordLog(f"sqlite:///{Path(tmp) / 'log.db'}", signer)
        try:
            _run(log, steps)
        finally:
            log.close()


def _run(log: RecordLog, steps) -> None:
    keys = setup_election(log, STATIONS)
    reader = Ed25519Signer("reader", hashlib.sha256(b"national reader").digest())
    log.grant(reader, "tps", "")
    recap_keys = {}
    for region in REGIONS:
        key = Ed25519Signer("recap", hashlib.sha256(region.encode() + b"r").digest())
        log.grant(key, ROLE[len(region)], region)
        recap_keys[region] = key
    model = Model(log)
    for n, station in enumerate(STATIONS):
        body = form({"100025": 10 + n, "100026": 20 - n, "100027": n})
        model.bodies[_subject(station)] = body
        log.submit(log.payload("results.tally/v1", _subject(station), body), [reader])
    for step in steps:
        if step[0] == "correct":
            _, station, votes = step
            body = form({"100025": votes, "100026": 3, "100027": 1})
            body["stage"] = "authority_correction"
            body["correction"] = {"reason_code": "recount_order", "reference": "x"}
            model.bodies[_subject(station)] = body
            log.submit(
                log.payload("results.tally/v1", _subject(station), body, reason="fix"),
                [keys["national"]],
            )
        elif step[0] == "recap":
            _sign(log, model, recap_keys, step[1], step[2])
        else:  # every recap under a region, bottom-up, naming every child
            for region in REGIONS:
                if region.startswith(step[1]):
                    _sign(log, model, recap_keys, region, 0)
        _check(log, model)
    fresh = ResultsIndex(log.service.entries)
    fresh.catch_up()
    for region in REGIONS:
        subject = _subject(region)
        assert fresh.stale(subject) == _index(log).stale(subject)
        assert fresh.corrections("ppwp", region) == _index(log).corrections(
            "ppwp", region
        )


def _index(log: RecordLog) -> ResultsIndex:
    """The log's one index, caught up step by step as the test writes."""
    index = getattr(log, "results_index", None)
    if index is None:
        index = log.results_index = ResultsIndex(log.service.entries)
    return index


def _sign(log: RecordLog, model: Model, recap_keys, region: str, leave_out: int):
    present = [c for c in _children(region) if model.head(c) is not None]
    named = present[: max(1, len(present) - leave_out)]
    if not present:
        return
    body = {
        "totals": add_totals(totals_of(model.bodies[_subject(c)]) for c in named),
        "children": {c: model.head(c) for c in named},
    }
    subject = _subject(region)
    if subject in log.heads:
        body["correction"] = {"reason_code": "child_corrected", "reference": "x"}
    model.bodies[subject] = body
    log.submit(log.payload("results.recap/v1", subject, body), [recap_keys[region]])


def _check(log: RecordLog, model: Model) -> None:
    for region in REGIONS:
        results = ResultsReader(
            log.service.entries, log.service.registry.election(), _index(log)
        )
        view = results.region("ppwp", region)
        if _subject(region) not in model.bodies:
            assert view["recap"] is None
            continue
        expected = model.stale(region)
        assert view["recap"]["stale_children"] == expected, region
        assert view["recap"]["stale"] == bool(expected), region
