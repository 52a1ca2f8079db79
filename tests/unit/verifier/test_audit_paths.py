"""The audit decides the same whichever way it runs.

Every tampered log of ``test_audit`` (and the clean one) is audited four ways:
in one process, by worker processes (entries in small bundles, so signatures by
keys granted a moment before reach a worker that does not know them yet), and
in two sittings (the state saved to a file part-way, the audit resumed from it
by a new auditor). The reports must be identical. Then tampered logs by kind,
each at many positions, count how many the audit catches when the operator has
also re-signed the tree (the tree check passes; the entries must give it away).
"""

from __future__ import annotations

import base64
import json
import random

import pytest

from keys import Ed25519Signer
from tests.evidence import scale
from tests.recordlog import ADMINS, district_body, form
from tests.unit.verifier.test_audit import (
    REVISED,
    STATIONS,
    audit,
    failures,
)
from verifier.dsse import pae
from verifier.fullaudit import Auditor, AuditStore, run_audit


def bundles(entries, width, start=0):
    for first in range(0, len(entries), width):
        yield start + first, entries[first : first + width]


def audit_parallel(entries, width=3):
    auditor = Auditor()
    run_audit(bundles(entries, width), auditor, workers=2)
    return auditor.report(True)


def audit_in_two_sittings(entries, split, path):
    first = Auditor(AuditStore(path))
    run_audit(bundles(entries[:split], 4), first, workers=0)
    first.save()
    first.store.close()
    second = Auditor(AuditStore(path))
    assert second.size == split
    run_audit(bundles(entries[split:], 4, split), second, workers=0)
    return second.report(True)


def tampered_logs(built):
    """(name, entries) of the clean log and each tampering of test_audit."""
    entries = built.entries
    yield "clean", entries
    yield (
        "revoked",
        [
            *entries,
            built.forge(
                "results.tally/v1",
                f"results/ppwp/{STATIONS[1]}",
                form({"100025": 7}),
                [built.gone],
            ),
        ],
    )
    yield (
        "out of scope",
        [
            *entries,
            built.forge(
                "results.tally/v1",
                f"results/ppwp/{STATIONS[2]}",
                form({"100025": 1}),
                [built.keys["tps"]],
            ),
        ],
    )
    yield (
        "one vote off",
        [
            *entries,
            built.forge(
                "results.recap/v1",
                "recaps/ppwp/3171011001",
                built.recap_body(extra_valid=1) | REVISED,
                [built.keys["village"]],
            ),
        ],
    )
    yield "logged twice", [*entries, entries[built.flagged]]
    swapped = list(entries)
    swapped[built.correction - 1], swapped[built.correction] = (
        swapped[built.correction],
        swapped[built.correction - 1],
    )
    yield "swapped", swapped


def test_every_path_gives_the_same_report(built, tmp_path):
    for name, entries in tampered_logs(built):
        sequential = audit(entries)
        assert audit_parallel(entries) == sequential, name
        assert audit_parallel(entries, width=256) == sequential, name
        for split in (1, len(entries) // 2, len(entries) - 1):
            path = tmp_path / f"{name}-{split}.db"
            assert audit_in_two_sittings(entries, split, path) == sequential, (
                name,
                split,
            )


class _Interrupted(Exception):
    pass


def _cut(source, after):
    """The bundles of ``source``, then a failure (a dropped connection)."""
    for n, item in enumerate(source):
        if n == after:
            raise _Interrupted
        yield item


@pytest.mark.parametrize("workers", [0, 2])
def test_an_interrupted_audit_resumes_from_its_last_step(built, tmp_path, workers):
    """Steps are saved unconfirmed every few entries; an audit killed part-way
    resumes from the last one, and the root that finally matches confirms the
    steps with the rest: the report is the one-sitting report."""
    entries = built.entries
    sequential = audit(entries)
    path = tmp_path / "state.db"
    first = Auditor(AuditStore(path))
    assert len(entries) > 10
    with pytest.raises(_Interrupted):
        run_audit(_cut(bundles(entries, 1), 9), first, workers, save_every=2)
    first.store.close()  # what the last step did not save is rolled back
    second = Auditor(AuditStore(path))
    assert 2 <= second.size <= 8
    assert second.size % 2 == 0
    assert second.confirmed == 0  # no checkpoint has confirmed the steps yet
    run_audit(bundles(entries[second.size :], 2, second.size), second, workers)
    second.save()
    assert second.confirmed == len(entries)
    assert second.report(True) == sequential
    second.store.close()
    assert Auditor(AuditStore(path)).confirmed == len(entries)


@pytest.mark.parametrize("width", [2, 1000])
def test_forms_right_after_a_registry_change_are_decided_by_the_auditor(built, width):
    """Workers decide forms against the election state they were told of; a
    regions record in the same bundle changes it under them. A new district's
    form, refused by the worker's older state, must be accepted; a form at a
    station the registry has just retired, accepted by it, must be refused."""
    new_station = "3171021001001"
    entries = [
        *built.entries,
        built.forge(
            "regions.registry/v1",
            "regions/317102",
            district_body([new_station]),
            ADMINS[:1],
        ),
        built.forge(
            "results.tally/v1",
            f"results/ppwp/{new_station}",
            form({"100025": 3}),
            [built.keys["reader"]],
        ),
        built.forge(
            "regions.registry/v1",
            "regions/317101",
            district_body(STATIONS[:2]),  # retires the village of STATIONS[2]
            ADMINS[:1],
        ),
        built.forge(
            "results.tally/v1",
            f"results/ppwp/{STATIONS[2]}",
            form({"100025": 4}),
            [built.keys["reader"]],
        ),
    ]
    report = audit_parallel(entries, width)
    assert failures(report) == {("authorization", len(entries) - 1)}
    retired = [f for f in report["findings"] if f["index"] == len(entries) - 1]
    assert "not in the region registry in force" in retired[0]["detail"]
    assert report == audit(entries)


def test_grants_used_right_away_are_checked_by_the_auditor(built):
    """Keys granted inside a bundle sign records in the same bundle: the
    workers cannot know them; the result must still be the sequential one,
    and a bad signature by such a key must still be found."""
    entries = list(built.entries)
    sequential = audit(entries)
    assert audit_parallel(entries, width=len(entries)) == sequential
    last = json.loads(entries[-1])
    sig = last["envelope"]["signatures"][0]["sig"]
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    last["envelope"]["signatures"][0]["sig"] = flipped
    entries[-1] = json.dumps(last, separators=(",", ":"), sort_keys=True).encode()
    report = audit_parallel(entries, width=len(entries))
    assert ("signatures", len(entries) - 1) in failures(report)
    assert report == audit(entries)


def _rewrite(entry: bytes, change) -> bytes:
    raw = json.loads(entry)
    change(raw["envelope"])
    return json.dumps(raw, separators=(",", ":"), sort_keys=True).encode()


def _flip(text: str, rng: random.Random) -> str:
    data = bytearray(base64.b64decode(text))
    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return base64.b64encode(bytes(data)).decode()


KINDS = [
    "payload byte",
    "signature byte",
    "no signature",
    "foreign signer",
    "replayed entry",
]


@pytest.mark.parametrize("kind", KINDS)
def test_tampered_logs_are_caught_even_when_the_tree_is_re_signed(
    built, kind, evidence
):
    """``report(True)``: the operator re-signed the tampered tree, so only the
    entries can give it away. Every tampering must fail a check at the entry
    tampered with. 25 positions per kind (40 in the fitness run: RELIABILITY.md
    T2's 200 forged rows); the count is the figure reported. The clean log is
    audited too and must pass."""
    rng = random.Random(kind)
    entries = built.entries
    foreign = Ed25519Signer("foreign", bytes([7]) * 32)
    positions = scale(25, 200 // len(KINDS))
    tried = caught = 0
    for _ in range(positions):
        tampered = list(entries)
        at = rng.randrange(1, len(entries))

        def change(envelope, at=at):
            if kind == "payload byte":
                envelope["payload"] = _flip(envelope["payload"], rng)
            elif kind == "signature byte":
                sig = envelope["signatures"][0]
                sig["sig"] = _flip(sig["sig"], rng)
            elif kind == "no signature":
                envelope["signatures"] = []
            else:  # signed again by a key the registry never granted
                message = pae(
                    envelope["payloadType"], base64.b64decode(envelope["payload"])
                )
                envelope["signatures"] = [
                    {
                        "keyid": foreign.keyid,
                        "sig": base64.b64encode(foreign.sign(message)).decode(),
                    }
                ]

        if kind == "replayed entry":
            tampered[at] = entries[rng.randrange(0, at)]
        else:
            tampered[at] = _rewrite(tampered[at], change)
        tried += 1
        report = audit_parallel(tampered)
        if not report["passed"] and at in {i for _, i in failures(report)}:
            caught += 1
    assert (tried, caught) == (positions, positions)
    clean = audit_parallel(entries)
    assert clean["passed"], failures(clean)
    evidence.record(
        "T2",
        attempts=tried,
        detected=caught,
        false_alarms=0 if clean["passed"] else 1,
        kind=kind,
        log_entries=len(entries),
        tree_re_signed=True,
    )


def test_bundles_larger_than_a_pipe_flow_both_ways(tmp_path, signer):
    """Full 256-entry bundles out and their examined records back are each far
    larger than a pipe's buffer: workers and auditor must never wait on each
    other (this once deadlocked)."""
    from tests.recordlog import RecordLog, setup_election

    stations = [f"317101100{v}{n:03d}" for v in range(1, 5) for n in range(1, 501)]
    log = RecordLog(f"sqlite:///{tmp_path / 'big.db'}", signer)
    try:
        keys = setup_election(log, stations)
        votes = {str(100025 + k): 10 + k for k in range(3)}
        for station in stations:
            # Form photo pages make the entries as large as real forms.
            pages = [
                {"page": n, "sha256": f"{n:02d}{station}".ljust(64, "a")}
                for n in range(1, 13)
            ]
            body = form(votes) | {"form": pages}
            log.submit(
                log.payload("results.tally/v1", f"results/ppwp/{station}", body),
                [keys["reader"]],
            )
        size = log.ledger.head.size
        entries = [row.data for row in log.storage.read_entries(0, size)]
    finally:
        log.close()
    # Larger than a Linux socket pair's buffers, both ways.
    assert sum(map(len, entries[:256])) > 400 * 1024
    assert audit_parallel(entries, width=256) == audit(entries)


def test_a_state_of_another_format_is_refused_not_misread(built, tmp_path):
    """A state written by an earlier saksi-verify (other tables) must not be
    resumed as if it were this version's: it is refused, and the CLI says to
    start again with --fresh."""
    import sqlite3

    path = tmp_path / "state.db"
    first = Auditor(AuditStore(path))
    run_audit(bundles(built.entries, 4), first)
    first.save()
    first.store.close()
    assert Auditor(AuditStore(path)).size == len(built.entries)
    db = sqlite3.connect(path)
    db.execute("DELETE FROM meta WHERE k = 'format'")  # as before formats
    db.commit()
    db.close()
    with pytest.raises(sqlite3.DatabaseError, match="format"):
        AuditStore(path)
    db = sqlite3.connect(path)
    db.execute("INSERT INTO meta VALUES ('format', '1')")
    db.commit()
    db.close()
    with pytest.raises(sqlite3.DatabaseError, match="format"):
        AuditStore(path)
