"""The audit's timeline and key events (``verifier.fullaudit.timeline``), on a real log.

A record log written over three hours: the election's set-up (regions, keys,
candidate lists), forms in two provinces an hour later, then the key registry's
other events: an admin granted by the threshold, a key rotated, a grant changed,
a key revoked. The audit's hourly counts must be what the entries' own
``logged_at`` and schemas say; a resumed audit must count exactly as one pass;
the key events must be the registry's, with ordinary grants counted, not listed.
"""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from keys import Ed25519Signer
from tests.conftest import ORIGIN
from tests.recordlog import ADMINS, SIX_STATIONS, RecordLog, form, setup_election
from verifier.fullaudit import Auditor, AuditStore
from verifier.record import parse_log_entry, parse_record

HOUR = 3600.0


def _key(name: str) -> Ed25519Signer:
    return Ed25519Signer(name.replace(" ", "-"), hashlib.sha256(name.encode()).digest())


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The entries of a log written over three hours."""
    path = tmp_path_factory.mktemp("timeline") / "log.db"
    log = RecordLog(
        f"sqlite:///{path}", Ed25519Signer(ORIGIN, hashlib.sha256(b"timeline").digest())
    )
    try:
        keys = setup_election(log, SIX_STATIONS)
        west_java = _key("reader 32")
        log.grant(west_java, "tps", "32")
        log.clock.now += HOUR
        for n, station in enumerate(SIX_STATIONS):
            votes = {"100025": 10 + n, "100026": 5, "100027": 1}
            log.submit(
                log.payload("results.tally/v1", f"results/ppwp/{station}", form(votes)),
                [keys["reader"] if station.startswith("31") else west_java],
            )
        log.clock.now += HOUR
        log.grant(_key("new admin"), "admin", "", ADMINS[:2])
        log.grant(
            _key("tps device 2"), "tps", SIX_STATIONS[0], replaces=keys["tps"].keyid
        )
        log.grant(keys["village"], "village", SIX_STATIONS[0][:10])  # a change
        log.revoke(keys["district"])
        entries = [log.ledger.reader.entry_bytes(i) for i in range(log.ledger.size)]
    finally:
        log.close()
    return entries


def _audited(entries, store=None):
    auditor = Auditor(store)
    for index, entry in enumerate(entries):
        auditor.add(index, entry)
    return auditor


def test_entries_per_hour_are_what_the_entries_say(written):
    auditor = _audited(written)
    assert auditor.summary()["passed"]
    found = auditor.timeline()
    # Recounted here from the entries themselves.
    want: Counter[tuple[str, str]] = Counter()
    for entry in written:
        logged = parse_log_entry(entry)
        schema = parse_record(logged.envelope.payload).schema
        kind = {
            "results.tally/v1": "forms",
            "regions.registry/v1": "election_data",
            "candidates.change/v1": "election_data",
        }.get(schema, "keys")
        want[logged.logged_at[:13], kind] += 1
    hours = found["hours"]
    assert len(hours) == 3
    assert [h["hour"] for h in hours] == sorted({h for h, _ in want})
    for row in hours:
        for kind in ("forms", "election_data", "keys"):
            assert row[kind] == want[row["hour"], kind]
        assert row["entries"] == sum(
            n for (h, _), n in want.items() if h == row["hour"]
        )
    assert hours[-1]["size"] == len(written)
    assert [h["forms"] for h in hours] == [0, 6, 0]
    # Per province: the regions records (4 districts: 3 in 31, 1 in 32), the
    # national candidate list (no province), and the forms (5 in 31, 1 in 32).
    provinces = found["provinces"]
    assert set(provinces) == {"31", "32"}
    assert sum(provinces["31"].values()) == 3 + 5
    assert sum(provinces["32"].values()) == 1 + 1
    assert provinces["32"][hours[1]["hour"]] == 1


def test_a_resumed_audit_counts_as_one_pass(written, tmp_path):
    whole = _audited(written).timeline()
    store = AuditStore(tmp_path / "audit.db")
    first = Auditor(store)
    half = len(written) // 2
    for index, entry in enumerate(written[:half]):
        first.add(index, entry)
    first.save()
    store.close()
    resumed = Auditor(AuditStore(tmp_path / "audit.db"))
    assert resumed.size == half
    for index, entry in enumerate(written[half:], half):
        resumed.add(index, entry)
    assert resumed.timeline() == whole


def test_key_events_are_the_registrys(written):
    events = _audited(written).key_events()
    assert events["threshold"] == 2
    assert events["admins"] == len(ADMINS) + 1
    # setup_election grants eight keys, then the reader for 32 and an admin.
    assert events["counts"] == {
        "grant": 10,
        "rotation": 1,
        "change": 1,
        "revocation": 1,
    }
    assert events["grants_by_role"]["admin"] == 1
    # The station's, the two readers', and the rotated station key.
    assert events["grants_by_role"]["tps"] == 4
    listed = [e["kind"] for e in events["events"]]
    assert listed == ["genesis", "grant", "rotation", "change", "revocation"]
    admin = events["events"][1]
    assert (admin["role"], admin["scope"], admin["signers"]) == ("admin", "national", 2)
    rotation = events["events"][2]
    assert rotation["replaces"] != rotation["keyid"]
    assert events["events"][4]["reason"] == "retired"
    assert events["events_listed"] == 5
