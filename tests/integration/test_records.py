"""The record write path on SQLite and PostgreSQL: genesis, replay, chains, races."""

from __future__ import annotations

import hashlib
import json
import threading

import pytest

import ledger.read.registry
from keys import Ed25519Signer
from keys.policy import DEFAULT_POLICY
from ledger.admission import prepare_submission
from ledger.errors import SkippedRevision, StaleRevision, WrongPayloadType, WrongPrev
from ledger.fullcheck import check_log
from tests.conftest import ORIGIN
from tests.evidence import scale
from tests.recordlog import ADMINS, RecordLog, b64
from verifier.checkpoint import verify_inclusion_in_checkpoint
from verifier.dsse import UnknownKey, envelope_to_json, sign_envelope
from verifier.errors import SignatureInvalid
from verifier.registry import GRANT, KeyRevoked, ThresholdNotMet
from verifier.schema_registry import UnknownSchema

TPS = "3171011001001"


@pytest.fixture
def log(db_url, signer):
    record_log = RecordLog(db_url, signer)
    yield record_log
    record_log.close()


def verify(receipt, signer):
    verify_inclusion_in_checkpoint(
        receipt.checkpoint,
        signer.verifier_key,
        ORIGIN,
        receipt.index,
        receipt.leaf_hash,
        receipt.proof,
    )


def test_genesis_is_entry_zero_and_grants_follow(log, signer):
    assert log.genesis.index == 0
    verify(log.genesis, signer)
    officer = Ed25519Signer("officer", bytes([50]) * 32)
    receipt = log.grant(officer, "tps", TPS)
    assert receipt.index == 1
    verify(receipt, signer)
    assert log.gate.registry.grants[officer.keyid].role == "tps"


def test_replays_add_no_leaf_even_re_signed(log, signer):
    keys = [Ed25519Signer(f"k{i}", bytes([60 + i]) * 32) for i in range(5)]
    payloads = [log.grant_payload(k, "tps", TPS) for k in keys]
    first = [log.submit(p, ADMINS[:1]) for p in payloads]
    size = log.ledger.size
    # The identical envelopes again, then the same payloads signed by other
    # admins (a new, different envelope: Ed25519 signatures are not unique).
    again = [log.ledger.submit(log.prepare(p, ADMINS[:1])) for p in payloads]
    resigned = [log.ledger.submit(log.prepare(p, ADMINS[1:3])) for p in payloads]
    assert log.ledger.size == size
    for a, b, c in zip(first, again, resigned, strict=True):
        assert a.index == b.index == c.index
        assert b.duplicate
        assert c.duplicate
        verify(c, signer)


def test_chain_conflicts_name_the_current_head(log):
    key = Ed25519Signer("k", bytes([70]) * 32)
    log.grant(key, "tps", TPS)
    current_revision, current_hash = log.heads[f"keys/{key.keyid}"]
    size = log.ledger.size
    subject = f"keys/{key.keyid}"
    body = {"keyid": key.keyid, "reason_code": "retired"}
    stale = log.payload("keys.revoke/v1", subject, body, revision=0, prev=None)
    with pytest.raises(StaleRevision) as err:
        log.ledger.submit(log.prepare(stale, ADMINS[:1]))
    assert (err.value.revision, err.value.payload_hash) == (0, current_hash)
    skipped = log.payload(
        "keys.revoke/v1", subject, body, revision=2, prev=current_hash, reason="x"
    )
    with pytest.raises(SkippedRevision):
        log.ledger.submit(log.prepare(skipped, ADMINS[:1]))
    wrong = log.payload(
        "keys.revoke/v1", subject, body, revision=1, prev="00" * 32, reason="x"
    )
    with pytest.raises(WrongPrev) as err:
        log.ledger.submit(log.prepare(wrong, ADMINS[:1]))
    assert err.value.payload_hash == current_hash
    assert log.ledger.size == size
    assert current_revision == 0


def test_refusals_change_nothing(log):
    size = log.ledger.size
    officer = Ed25519Signer("officer", bytes([71]) * 32)
    new_admin = Ed25519Signer("admin-new", bytes([72]) * 32)
    with pytest.raises(ThresholdNotMet):
        log.ledger.submit(
            log.prepare(log.grant_payload(new_admin, "admin", ""), ADMINS[:1])
        )
    with pytest.raises(UnknownKey):
        log.prepare(log.grant_payload(officer, "tps", TPS), [officer])
    log.grant(officer, "tps", TPS)
    log.revoke(officer)
    size = log.ledger.size
    target = Ed25519Signer("t", bytes([73]) * 32)
    with pytest.raises(KeyRevoked):
        log.ledger.submit(log.prepare(log.grant_payload(target, "tps", TPS), [officer]))
    with pytest.raises(UnknownSchema):
        log.prepare(
            log.payload("results.tally/v9", f"results/ppwp/{TPS}", {}), ADMINS[:1]
        )
    envelope = envelope_to_json(
        sign_envelope("text/plain", log.grant_payload(target, "tps", TPS), ADMINS[:1])
    )
    with pytest.raises(WrongPayloadType):
        prepare_submission(envelope, log.gate.public_key, log.now())
    tampered = envelope_to_json(
        sign_envelope(
            "application/vnd.saksi.record+json",
            log.grant_payload(target, "tps", TPS),
            ADMINS[:1],
        )
    )
    tampered["signatures"][0]["keyid"] = ADMINS[1].keyid
    with pytest.raises(SignatureInvalid):
        prepare_submission(tampered, log.gate.public_key, log.now())
    assert log.ledger.size == size


def test_a_batch_decides_each_envelope_on_its_own(log, signer):
    keys = [Ed25519Signer(f"b{i}", bytes([80 + i]) * 32) for i in range(4)]
    good = [log.prepare(log.grant_payload(k, "tps", TPS), ADMINS[:1]) for k in keys]
    admin = Ed25519Signer("b-admin", bytes([90]) * 32)
    refused = log.prepare(log.grant_payload(admin, "admin", ""), ADMINS[:1])
    size = log.ledger.size
    results = log.ledger.submit_many(
        [good[0], refused, good[1], good[0], good[2], good[3]]
    )
    assert isinstance(results[1], ThresholdNotMet)
    indices = [r.index for r in results if not isinstance(r, Exception)]
    assert indices == [size, size + 1, size, size + 2, size + 3]
    assert results[3].duplicate
    assert log.ledger.size == size + 4
    for r in results:
        if not isinstance(r, Exception):
            verify(r, signer)


def test_racing_writers_one_wins_each_revision(log):
    # 50 writers race for revision 0 of one subject, then 50 for revision 1:
    # exactly one wins each time, the rest get a conflict naming the winner.
    key = Ed25519Signer("raced", bytes([91]) * 32)
    subject = f"keys/{key.keyid}"
    outcomes: list = []
    lock = threading.Lock()

    def race(payloads):
        subs = [log.prepare(p, ADMINS[:1]) for p in payloads]
        barrier = threading.Barrier(len(subs))

        def worker(sub):
            barrier.wait()
            try:
                result = log.ledger.submit(sub)
            except StaleRevision as e:
                result = e
            with lock:
                outcomes.append(result)

        threads = [threading.Thread(target=worker, args=(s,)) for s in subs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    holders = [f"holder {i}" for i in range(50)]
    race(
        [
            log.payload(
                GRANT.name,
                subject,
                {
                    "keyid": key.keyid,
                    "public_key": b64(key.public_key),
                    "role": "tps",
                    "scope": TPS,
                    "holder": h,
                },
                revision=0,
                prev=None,
            )
            for h in holders
        ]
    )
    wins = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(wins) == 1
    assert all(
        isinstance(o, StaleRevision) and o.revision == 0
        for o in outcomes
        if o not in wins
    )
    heads = log.storage.record_heads([subject])
    assert heads[subject].revision == 0
    assert heads[subject].index == wins[0].index


@pytest.mark.parametrize("batch", [1, 2, 1000])
def test_restart_replays_the_registry_from_the_log(log, signer, batch, monkeypatch):
    # Entries are read ``batch`` at a time: order and chunk edges must not matter.
    monkeypatch.setattr(ledger.read.registry, "_REPLAY_BATCH", batch)
    officer = Ed25519Signer("officer", bytes([92]) * 32)
    revoked = Ed25519Signer("gone", bytes([93]) * 32)
    log.grant(officer, "district", TPS[:6])
    log.grant(revoked, "tps", TPS)
    log.revoke(revoked)
    before = dict(log.gate.registry.grants)
    log.close()
    log.open()
    assert log.gate.registry.grants == before
    body = json.loads(log.grant_payload(officer, "district", TPS[:6]))["body"]
    stale = log.payload(
        GRANT.name, f"keys/{officer.keyid}", body, revision=0, prev=None
    )
    with pytest.raises(StaleRevision):
        log.ledger.submit(log.prepare(stale, ADMINS[:1]))
    assert check_log(log.storage, signer.verifier_key, ORIGIN).ok


@pytest.mark.parametrize(
    "tamper",
    [
        "DELETE FROM records WHERE idx = 2",
        "UPDATE records SET revision = 5 WHERE idx = 2",
        "UPDATE records SET subject = 'keys/other' WHERE idx = 2",
        "DELETE FROM records",
    ],
)
def test_check_catches_a_tampered_record_index(log, signer, tamper):
    # The record index decides chains and dedupe: an edit behind the service's
    # back (here with the triggers dropped) must not go unnoticed.
    for i in range(3):
        log.grant(Ed25519Signer(f"x{i}", bytes([120 + i]) * 32), "tps", TPS)
    assert check_log(log.storage, signer.verifier_key, ORIGIN).ok
    import sqlalchemy as sa

    with log.storage.engine.begin() as conn:
        if log.storage.dialect == "sqlite":
            conn.execute(sa.text("DROP TRIGGER records_no_update"))
            conn.execute(sa.text("DROP TRIGGER records_no_delete"))
        else:
            conn.execute(sa.text("ALTER TABLE records DISABLE TRIGGER USER"))
        conn.execute(sa.text(tamper))
    report = check_log(log.storage, signer.verifier_key, ORIGIN)
    assert not report.ok
    # The dropped (or disabled) triggers are reported first, then the edit.
    assert report.problems[0].kind == "guards"
    problem = next(p for p in report.problems if p.kind != "guards")
    assert problem.kind == "record-index"
    assert problem.index == (0 if tamper == "DELETE FROM records" else 2)


DEFAULT_ROLES = DEFAULT_POLICY["roles"]
ELSEWHERE = "3273011001001"


def _district(code: str) -> dict:
    return {
        "province": {"code": code[:2], "name": f"province {code[:2]}"},
        "regency": {"code": code[:4], "name": f"regency {code[:4]}"},
        "district": {"name": f"district {code[:6]}"},
        "villages": {
            code[:10]: {"name": f"village {code[:10]}", "tps": [int(code[10:])]}
        },
        "source": "test",
    }


def _matrix_payload(log, name, region, role, counter, victim):
    """A record of schema ``name`` about ``region`` that is valid if authorized."""
    from verifier.election import recap_subject, tally_subject

    level = max(DEFAULT_ROLES[role]["scope_lengths"])
    if name == "monitor.canary/v1":
        return log.payload(
            name,
            f"canary/{'ab' * 32}/{counter}",
            {"sequence": counter, "sent_at": "2024-02-14T13:00:00.000Z"},
        )
    if name == "keys.grant/v1":
        target = Ed25519Signer(f"t{counter}", counter.to_bytes(4, "big") * 8)
        return log.grant_payload(target, "tps", TPS)
    if name == "keys.revoke/v1":
        return log.payload(
            name,
            f"keys/{victim.keyid}",
            {"keyid": victim.keyid, "reason_code": "other"},
            revision=99,  # authorized first, then refused by the chain check
            prev="00" * 32,
            reason="matrix",
        )
    if name == "regions.registry/v1":
        return log.payload(name, f"regions/{region[:6]}", _district(region))
    if name == "results.tally/v1":
        return log.payload(
            name,
            tally_subject("ppwp", region),
            {
                "stage": "officer_confirmed",
                "votes": {"100025": counter % 50, "100026": 3},
                "valid": counter % 50 + 3,
                "invalid": 0,
                "total": counter % 50 + 3,
            },
        )
    if name == "results.recap/v1":
        at = region[: level if level in (0, 2, 4, 6, 10) else 10]
        child = region[: {10: 13, 6: 10, 4: 6, 2: 4, 0: 2}[len(at)]]
        return log.payload(
            name,
            recap_subject("ppwp", at),
            {
                "totals": {
                    "votes": {"100025": 1},
                    "valid": 1,
                    "invalid": 0,
                    "total": 1,
                },
                "children": {child: f"{counter:064x}"},  # not logged: refused last
            },
        )
    if name == "candidates.change/v1":
        return log.payload(
            name,
            f"candidates/pdpd/{region[: min(level, 6)] or 'national'}",
            {"candidates": {str(counter): {"number": 1, "name": f"c{counter}"}}},
        )
    if name == "parties.change/v1":
        return log.payload(
            name, "parties/national", {"parties": {"1": {"number": 1, "name": "P"}}}
        )
    if name == "voters.change/v1":
        digest = hashlib.sha256(b"voter %d" % counter).hexdigest()
        return log.payload(
            name,
            f"voters/{region}/{counter}",
            {
                "kind": "update",
                "registered": {"male": 1, "female": 0, "total": 1},
                "added": [digest],
                "removed": [],
                "transferred_in": [],
                "transferred_out": [],
            },
        )
    if name == "audit.plan/v1":
        return log.payload(
            name,
            f"audits/{region[: min(level, 6)] or 'national'}/plan-{counter}",
            {
                "purpose": "manual recount",
                "ballot": "ppwp",
                "unit": "station",
                "strata": min(level, 6),
                "method": "fixed",
                "size": 3,
                "seed_size": 10**6,
            },
        )
    return log.payload(name, f"x/{region}", {})


def test_authorization_matrix_through_the_write_path(
    db_url, signer, monkeypatch, evidence
):
    # Every role x every schema x (in scope, out of scope, revoked, not yet
    # granted, expired), submitted through prepare + the writer's gate: each
    # gets exactly the policy's answer (with the election's own rules: forms are
    # the station's, recaps at the signer's level), and no refused one changes
    # the tree.
    from ledger.admission import prepare_submission
    from tests.recordlog import envelope_bytes
    from verifier.body_schema import Obj, Schema
    from verifier.registry import KeyExpired, OutOfScope, RoleNotAllowed
    from verifier.rules import UnknownChild
    from verifier.schema_registry import SCHEMAS

    roles = DEFAULT_ROLES
    names = sorted({n for r in roles.values() for n in r["schemas"]})
    for name in names:  # schemas of later issues: register stand-ins
        if name not in SCHEMAS:
            monkeypatch.setitem(
                SCHEMAS, name, Schema(name, Obj({}), r"x/(?P<region>\d{13})")
            )
    log = RecordLog(db_url, signer, threshold=1)
    try:
        # The registry the election records are checked against.
        for code in (TPS, ELSEWHERE):
            log.submit(
                log.payload(
                    "regions.registry/v1", f"regions/{code[:6]}", _district(code)
                ),
                ADMINS[:1],
            )
        lists = Ed25519Signer("lists", bytes([201]) * 32)
        log.grant(lists, "candidates", "")
        log.submit(
            log.payload(
                "candidates.change/v1",
                "candidates/ppwp/national",
                {
                    "candidates": {
                        "100025": {"number": 1, "name": "pair 1"},
                        "100026": {"number": 2, "name": "pair 2"},
                    }
                },
            ),
            [lists],
        )
        keys = {}
        for n, role in enumerate(sorted(roles)):
            scope = TPS[: max(roles[role]["scope_lengths"])]
            active = Ed25519Signer(f"{role}-a", bytes([n, 1]) * 16)
            revoked = Ed25519Signer(f"{role}-r", bytes([n, 2]) * 16)
            expired = Ed25519Signer(f"{role}-e", bytes([n, 3]) * 16)
            never = Ed25519Signer(f"{role}-n", bytes([n, 4]) * 16)
            log.grant(active, role, scope)
            log.grant(revoked, role, scope)
            log.revoke(revoked)
            log.grant(expired, role, scope, expires_at="2024-02-14T12:00:00.000Z")
            keys[role] = {
                "in": active,
                "out": active,
                "revoked": revoked,
                "expired": expired,
                "never": never,
            }
        victim = Ed25519Signer("victim", bytes([200]) * 32)  # nobody's own key
        log.grant(victim, "tps", TPS)
        counter = 0
        tried = set()
        refusable = refused = allowed = 0
        for role in sorted(roles):
            for name in names:
                for condition in ("in", "out", "revoked", "never", "expired"):
                    counter += 1
                    key = keys[role][condition]
                    region = ELSEWHERE if condition == "out" else TPS
                    payload = _matrix_payload(log, name, region, role, counter, victim)
                    size = log.ledger.size
                    spec = roles[role]
                    national = max(spec["scope_lengths"]) == 0
                    regionless = "region" not in SCHEMAS[name].subject
                    if condition == "never":
                        want = UnknownKey
                    elif condition == "revoked":
                        want = KeyRevoked
                    elif condition == "expired":
                        want = KeyExpired
                    elif name not in spec["schemas"]:
                        want = RoleNotAllowed
                    elif not national and (condition == "out" or regionless):
                        want = OutOfScope
                    elif name == "results.tally/v1" and role != "tps":
                        want = RoleNotAllowed  # a form's stages are the station's
                    elif name == "results.recap/v1":
                        want = UnknownChild  # authorized; the child is not logged
                    elif name == "keys.revoke/v1":
                        want = SkippedRevision  # authorized; revision 99 refused
                    else:
                        want = None
                    try:
                        sub = prepare_submission(
                            envelope_bytes(payload, [key]),
                            log.gate.public_key,
                            log.now(),
                        )
                        outcome = log.ledger.submit(sub)
                    except Exception as e:
                        outcome = e
                    label = (role, name, condition)
                    tried.add((name, want))
                    if want is None:
                        assert not isinstance(outcome, Exception), (label, outcome)
                        assert log.ledger.size == size + 1, label
                        log.track(payload)
                        allowed += 1
                    else:
                        # Refusable for who signed (UnknownChild and
                        # SkippedRevision are later checks of allowed writes).
                        signer_refused = want not in (UnknownChild, SkippedRevision)
                        refusable += signer_refused
                        assert isinstance(outcome, want), (label, outcome)
                        assert log.ledger.size == size, label
                        refused += signer_refused
        # Every election schema was both accepted (or authorized) and refused.
        for name in (
            "results.tally/v1",
            "regions.registry/v1",
            "candidates.change/v1",
            "voters.change/v1",
        ):
            assert (name, None) in tried, name
            assert (name, RoleNotAllowed) in tried, name
        assert ("results.recap/v1", UnknownChild) in tried
        assert ("results.recap/v1", OutOfScope) in tried
        dialect = log.storage.dialect
    finally:
        log.close()
    evidence.record(
        "T10",
        attempts=refusable,
        detected=refused,
        backend=dialect,
        roles=len(roles),
        write_operations=len(names),
        cells=counter,
        cells_allowed_and_logged=allowed,
    )


def test_a_recap_child_must_be_logged_under_its_own_code(log):
    # A recap names each child by code and payload hash. A hash that is in the
    # log, but as another station's form, is not that child: refused.
    from tests.recordlog import SIX_STATIONS, form, setup_election
    from verifier.rules import UnknownChild

    keys = setup_election(log, SIX_STATIONS)
    first, second = SIX_STATIONS[0], SIX_STATIONS[1]  # one village, 3171011001
    bodies = {first: form({"100025": 10}), second: form({"100026": 20})}
    for station, body in bodies.items():
        log.submit(
            log.payload("results.tally/v1", f"results/ppwp/{station}", body),
            [keys["reader"]],
        )
    digest = {s: log.heads[f"results/ppwp/{s}"][1] for s in bodies}
    totals = {"votes": {"100025": 10, "100026": 20}, "valid": 30, "invalid": 0}
    totals["total"] = 30

    def recap(children: dict[str, str]) -> bytes:
        return log.payload(
            "results.recap/v1",
            "recaps/ppwp/3171011001",
            {"totals": totals, "children": children},
        )

    size = log.ledger.size
    with pytest.raises(UnknownChild):
        log.submit(
            recap({first: digest[first], second: digest[first]}), [keys["village"]]
        )
    assert log.ledger.size == size
    log.submit(recap({first: digest[first], second: digest[second]}), [keys["village"]])
    assert log.ledger.size == size + 1


def test_the_writer_refuses_a_plan_that_could_never_seed_a_sample(log):
    # A plan's seed must be a tree the log has not reached when the plan is
    # logged, and its fields must agree; the writer refuses any other (422,
    # schema-violation) and the tree does not change. The edge: a seed of the
    # plan's own index is refused, one more is taken.
    from verifier.body_schema import SchemaViolation

    auditor = Ed25519Signer("auditor", bytes([77]) * 32)
    log.grant(auditor, "auditor", "")
    good = {
        "purpose": "manual recount",
        "ballot": "ppwp",
        "unit": "station",
        "strata": 2,
        "method": "fixed",
        "size": 3,
    }
    refused = [
        ("seed", dict(good, seed_size=log.ledger.size), "not beyond this plan"),
        ("strata", dict(good, strata=0, seed_size=10**6), "no shorter than"),
        ("mixed", dict(good, risk_limit="0.05", seed_size=10**6), "method fixed"),
        (
            "margin",
            dict(good, ballot="pdpr", method="aslam-popa-rivest-2008", seed_size=10**6)
            | {"risk_limit": "0.05", "max_shift": "0.2"},
            "use fixed for pdpr",
        ),
    ]
    del refused[3][1]["size"]
    for name, body, words in refused:
        size = log.ledger.size
        region = "31" if name == "strata" else "national"
        payload = log.payload("audit.plan/v1", f"audits/{region}/{name}", body)
        with pytest.raises(SchemaViolation, match=words):
            log.submit(payload, [auditor])
        assert log.ledger.size == size
    edge = dict(good, seed_size=log.ledger.size + 1)
    receipt = log.submit(
        log.payload("audit.plan/v1", "audits/national/edge", edge), [auditor]
    )
    assert receipt.index == edge["seed_size"] - 1


# RELIABILITY.md T4, T8 and T9 at the writer (both backends): each hostile write
# is refused with the reason the policy gives and leaves the tree as it was; the
# same write slipped into the log behind the writer's back is flagged by the
# audit at its index. Honest writes beside them are logged (no false alarm).

STATIONS = [f"3171011001{n:03d}" for n in range(1, 121)]
TALLY = "results.tally/v1"


def _slipped(log, payload: bytes, signers) -> bytes:
    """The entry a database administrator would insert for ``payload``."""
    from tests.recordlog import envelope_bytes
    from verifier.dsse import parse_envelope
    from verifier.record import format_log_entry

    last = log.storage.read_entries(log.ledger.size - 1, log.ledger.size)[0].data
    envelope = parse_envelope(envelope_bytes(payload, signers))
    return format_log_entry(envelope, json.loads(last)["logged_at"])


def _audit_flags(log, slipped: list[bytes], check: str) -> int:
    """How many of ``slipped``, appended to the log's entries, fail ``check``
    at their own index (the clean log must pass)."""
    from tests.unit.verifier.test_audit import audit, failures

    entries = [row.data for row in log.storage.read_entries(0, log.ledger.size)]
    assert audit(entries)["passed"]
    found = failures(audit(entries + slipped))
    return sum((check, len(entries) + k) in found for k in range(len(slipped)))


def test_a_revoked_key_is_refused_from_the_next_entry_on(log, evidence):
    from tests.recordlog import form, setup_election

    keys = setup_election(log, STATIONS[:2])
    officer = keys["tps"]  # the first station's
    subject = f"results/ppwp/{STATIONS[0]}"
    before = log.submit(log.payload(TALLY, subject, form({"100025": 1})), [officer])
    revoked_at = log.revoke(officer).index
    size = log.ledger.size
    attempts = scale(50, 500)
    refused = 0
    for n in range(attempts):
        payload = log.payload(TALLY, subject, form({"100025": n + 2}), reason="x")
        with pytest.raises(KeyRevoked):
            log.ledger.submit(log.prepare(payload, [officer]))
        refused += 1
    assert log.ledger.size == size
    # The station's other key (the reading system) still writes.
    honest = log.submit(
        log.payload(TALLY, f"results/ppwp/{STATIONS[1]}", form({"100025": 3})),
        [keys["reader"]],
    )
    assert honest.index == size
    slipped = _slipped(
        log, log.payload(TALLY, subject, form({"100025": 9}), reason="x"), [officer]
    )
    flagged = _audit_flags(log, [slipped], "authorization")
    assert flagged == 1
    evidence.record(
        "T4",
        attempts=attempts + 1,
        detected=refused + flagged,
        backend=log.storage.dialect,
        refused_after_revoke=refused,
        slipped_entry_flagged=flagged,
        refused_from_entry=revoked_at + 1,
        written_before_revoke=before.index,
    )


def test_a_second_tally_for_a_station_is_refused_and_flagged(log, evidence):
    from tests.recordlog import form, setup_election

    pairs = scale(20, 100)
    keys = setup_election(log, STATIONS[:pairs])
    reader = keys["reader"]  # the province's reading system: every station
    first = refused = 0
    for n, station in enumerate(STATIONS[:pairs]):
        subject = f"results/ppwp/{station}"
        log.submit(log.payload(TALLY, subject, form({"100025": n})), [reader])
        first += 1
        rival = log.payload(
            TALLY, subject, form({"100025": n + 1}), revision=0, prev=None
        )
        size = log.ledger.size
        with pytest.raises(StaleRevision):
            log.ledger.submit(log.prepare(rival, [reader]))
        assert log.ledger.size == size
        refused += 1
    # The same rivals inserted behind the writer's back: the audit's chain check.
    slipped = [
        _slipped(
            log,
            log.payload(
                TALLY, f"results/ppwp/{s}", form({"100025": 7}), revision=0, prev=None
            ),
            [reader],
        )
        for s in STATIONS[:pairs]
    ]
    flagged = _audit_flags(log, slipped, "revision-chain")
    assert flagged == pairs
    evidence.record(
        "T8",
        attempts=2 * pairs,
        detected=refused + flagged,
        backend=log.storage.dialect,
        pairs=pairs,
        refused_by_the_writer=refused,
        flagged_by_the_audit=flagged,
        first_tallies_logged=first,
    )


def test_an_officer_cannot_write_another_station(log, evidence):
    from tests.recordlog import form, setup_election
    from verifier.registry import OutOfScope

    stations = STATIONS[:20]
    setup_election(log, stations)
    officers = [Ed25519Signer(f"o{i}", bytes([i + 1, 9]) * 16) for i in range(10)]
    for officer, station in zip(officers, stations, strict=False):
        log.grant(officer, "tps", station)
    size = log.ledger.size
    pairs = scale(60, 1000)
    refused = 0
    for n in range(pairs):
        i = n % len(officers)
        # Any station but its own, walking through all of them.
        foreign = stations[(i + 1 + (n // len(officers)) % (len(stations) - 1)) % 20]
        assert foreign != stations[i]
        payload = log.payload(
            TALLY, f"results/ppwp/{foreign}", form({"100025": n}), revision=0
        )
        with pytest.raises(OutOfScope):
            log.ledger.submit(log.prepare(payload, [officers[i]]))
        refused += 1
    leaves_added = log.ledger.size - size
    assert leaves_added == 0
    # Each officer writes its own station (no false alarm).
    own = sum(
        not log.submit(
            log.payload(TALLY, f"results/ppwp/{s}", form({"100025": 1})), [o]
        ).duplicate
        for o, s in zip(officers, stations, strict=False)
    )
    assert own == len(officers)
    slipped = [
        _slipped(
            log,
            log.payload(TALLY, f"results/ppwp/{stations[15 + k]}", form({"100025": k})),
            [officers[k]],
        )
        for k in range(5)
    ]
    flagged = _audit_flags(log, slipped, "authorization")
    assert flagged == len(slipped)
    evidence.record(
        "T9",
        attempts=pairs + len(slipped),
        detected=refused + flagged,
        false_alarms=len(officers) - own,
        backend=log.storage.dialect,
        refused_by_the_writer=refused,
        leaves_added=leaves_added,
        rows_inserted_and_flagged=flagged,
        own_station_writes_logged=own,
    )
