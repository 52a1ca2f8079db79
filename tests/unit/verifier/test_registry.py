"""The in-log key registry: genesis, grants, revocations, the authorization matrix."""

from __future__ import annotations

import base64
import itertools

import pytest

from keys import Ed25519Signer
from keys.policy import DEFAULT_POLICY
from verifier.body_schema import Obj, Schema, SchemaViolation
from verifier.canary import CANARY, canary_subject
from verifier.dsse import UnknownKey
from verifier.election import (
    CANDIDATES,
    PARTIES,
    RECAP,
    REGIONS,
    TALLY,
    recap_subject,
    tally_subject,
)
from verifier.errors import MalformedInput
from verifier.record import parse_record, record_payload
from verifier.registry import (
    GENESIS,
    GRANT,
    REVOKE,
    Grant,
    KeyExpired,
    KeyRegistry,
    KeyRevoked,
    OutOfScope,
    RoleNotAllowed,
    ThresholdNotMet,
    authorize,
    parse_genesis,
)
from verifier.rules import authorize_election
from verifier.sample import PLAN
from verifier.schema_registry import SCHEMAS

ORIGIN = "test.saksi.example/log"
LOG = Ed25519Signer(ORIGIN, bytes([9]) * 32)
ADMINS = [Ed25519Signer(f"admin{i}", bytes([20 + i]) * 32) for i in range(3)]
TPS = "3171011001001"  # a real 2024 polling-station code (DKI Jakarta)
ELSEWHERE = "3273011001001"  # another province
WHEN = "2024-02-14T13:05:00.000Z"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def record(schema, subject, body, revision=0, prev=None, reason=None):
    return parse_record(
        record_payload(
            schema=schema,
            subject=subject,
            revision=revision,
            prev=prev,
            issued_at=WHEN,
            body=body,
            reason=reason,
        )
    )


def genesis_record(threshold=2, admins=ADMINS, policy=DEFAULT_POLICY):
    return record(
        GENESIS.name,
        "log/genesis",
        {
            "origin": ORIGIN,
            "log_key": str(LOG.verifier_key),
            "admins": [
                {"keyid": a.keyid, "public_key": b64(a.public_key), "holder": a.name}
                for a in admins
            ],
            "threshold": threshold,
            "policy": policy,
        },
    )


def grant_body(key, role, scope, **extra):
    return {
        "keyid": key.keyid,
        "public_key": b64(key.public_key),
        "role": role,
        "scope": scope,
        "holder": key.name,
        **extra,
    }


class Log:
    """A registry replayed entry by entry, with the admins' keys at hand."""

    def __init__(self, threshold=2):
        self.registry = KeyRegistry()
        self.index = 0
        self.heads: dict[str, tuple[int, str]] = {}
        self.admit(genesis_record(threshold), ADMINS[:threshold])

    def admit(self, rec, signers, schema=None, logged_at=WHEN):
        schema = schema or SCHEMAS[rec.schema]
        writer = self.registry.admit(
            rec, schema, [s.keyid for s in signers], self.index, logged_at
        )
        self.heads[rec.subject] = (rec.revision, rec.payload_hash)
        self.index += 1
        return writer

    def next_rev(self, subject):
        if subject not in self.heads:
            return {"revision": 0}
        revision, payload_hash = self.heads[subject]
        return {"revision": revision + 1, "prev": payload_hash, "reason": "change"}

    def grant(self, key, role, scope, signers=None, **extra):
        subject = f"keys/{key.keyid}"
        rec = record(
            GRANT.name,
            subject,
            grant_body(key, role, scope, **extra),
            **self.next_rev(subject),
        )
        return self.admit(rec, signers or ADMINS[:1])

    def revoke(self, key, signers=None):
        subject = f"keys/{key.keyid}"
        rec = record(
            REVOKE.name,
            subject,
            {"keyid": key.keyid, "reason_code": "retired"},
            **self.next_rev(subject),
        )
        return self.admit(rec, signers or ADMINS[:1])


def test_genesis_needs_the_threshold_of_its_own_admins():
    registry = KeyRegistry()
    with pytest.raises(ThresholdNotMet):
        registry.admit(genesis_record(2), GENESIS, [ADMINS[0].keyid], 0, WHEN)
    assert registry.genesis is None
    outsider = Ed25519Signer("x", bytes([99]) * 32)
    with pytest.raises(ThresholdNotMet):
        registry.admit(
            genesis_record(2), GENESIS, [ADMINS[0].keyid, outsider.keyid], 0, WHEN
        )
    registry.admit(genesis_record(2), GENESIS, [a.keyid for a in ADMINS[:2]], 0, WHEN)
    assert set(registry.grants) == {a.keyid for a in ADMINS}


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda b: b.update(threshold=4), "threshold"),
        (lambda b: b["admins"][0].update(keyid="00" * 32), "keyid"),
        (lambda b: b["admins"].append(dict(b["admins"][0])), "twice"),
        (lambda b: b.update(log_key=str(ADMINS[0].verifier_key)), "origin"),
        (lambda b: b["policy"]["roles"].pop("admin"), "admin role"),
        (
            lambda b: b["policy"]["roles"]["tps"].update(scope_lengths=[12]),
            "region scopes",
        ),
        (lambda b: b.update(extra=1), "unknown member"),
    ],
)
def test_inconsistent_genesis_is_refused(mutate, match):
    rec = genesis_record()
    body = {
        **rec.body,
        "admins": [dict(a) for a in rec.body["admins"]],
        "policy": {
            "roles": {k: dict(v) for k, v in rec.body["policy"]["roles"].items()}
        },
    }
    mutate(body)
    with pytest.raises(MalformedInput, match=match):
        parse_genesis(record(GENESIS.name, "log/genesis", body))


def test_a_second_genesis_and_a_log_without_one_are_refused():
    log = Log()
    with pytest.raises(MalformedInput, match="exactly one genesis"):
        log.admit(genesis_record(), ADMINS)
    rec = record(
        GRANT.name, f"keys/{ADMINS[0].keyid}", grant_body(ADMINS[0], "admin", "")
    )
    with pytest.raises(MalformedInput, match="no genesis"):
        KeyRegistry().admit(rec, GRANT, [ADMINS[0].keyid], 1, WHEN)


def test_admin_grants_need_the_threshold_others_one_admin():
    log = Log(threshold=2)
    officer = Ed25519Signer("officer", bytes([50]) * 32)
    log.grant(officer, "tps", TPS)
    new_admin = Ed25519Signer("admin-new", bytes([51]) * 32)
    with pytest.raises(ThresholdNotMet):
        log.grant(new_admin, "admin", "")
    assert new_admin.keyid not in log.registry.grants
    log.grant(new_admin, "admin", "", signers=ADMINS[:2])
    # Revoking an admin needs the threshold too; an officer cannot revoke anyone.
    with pytest.raises(ThresholdNotMet):
        log.revoke(new_admin)
    with pytest.raises(RoleNotAllowed):
        log.revoke(new_admin, signers=[officer])
    log.revoke(new_admin, signers=[ADMINS[1], new_admin])


def test_revoked_key_is_refused_from_the_next_entry_and_stays_revoked():
    log = Log()
    officer = Ed25519Signer("officer", bytes([52]) * 32)
    log.grant(officer, "district", TPS[:6])
    schema = Schema("results.recap/v1", Obj({}), r"results/ppwp/(?P<region>\d+)")
    rec = record("results.recap/v1", f"results/ppwp/{TPS[:6]}", {})
    log.admit(rec, [officer], schema)
    log.revoke(officer)
    with pytest.raises(KeyRevoked):
        log.admit(rec, [officer], schema)
    with pytest.raises(MalformedInput, match="stays revoked"):
        log.grant(officer, "district", TPS[:6])


def test_a_key_may_revoke_itself():
    log = Log()
    officer = Ed25519Signer("officer", bytes([53]) * 32)
    log.grant(officer, "tps", TPS)
    log.revoke(officer, signers=[officer])
    assert log.registry.grants[officer.keyid].revoked_at == log.index - 1


def test_rotation_revokes_the_replaced_key_in_the_same_entry():
    log = Log()
    old = Ed25519Signer("old", bytes([54]) * 32)
    new = Ed25519Signer("new", bytes([55]) * 32)
    log.grant(old, "tps", TPS)
    log.grant(new, "tps", TPS, replaces=old.keyid)
    assert log.registry.grants[old.keyid].revoked_at == log.index - 1
    assert log.registry.grants[new.keyid].revoked_at is None
    with pytest.raises(MalformedInput, match="replaces"):
        log.grant(
            Ed25519Signer("n2", bytes([56]) * 32),
            "tps",
            TPS,
            replaces=old.keyid,
        )


@pytest.mark.parametrize(
    ("role", "scope", "match"),
    [
        ("village", TPS[:6], "10 digits"),
        ("tps", TPS[:12], "0 or 2 or 4 or 6 or 10 or 13 digits"),
        ("district", TPS, "6 digits"),
        ("admin", "31", "0 digits"),
        ("no_such_role", "", "no role"),
    ],
)
def test_grants_must_fit_the_roles_scope(role, scope, match):
    log = Log(threshold=1)
    with pytest.raises(SchemaViolation, match=match):
        log.grant(Ed25519Signer("k", bytes([57]) * 32), role, scope)


def test_grant_must_match_its_subject_and_key():
    log = Log()
    key = Ed25519Signer("k", bytes([58]) * 32)
    other = Ed25519Signer("o", bytes([59]) * 32)
    rec = record(GRANT.name, f"keys/{other.keyid}", grant_body(key, "tps", TPS))
    with pytest.raises(SchemaViolation, match="subject"):
        log.admit(rec, ADMINS[:1])
    body = grant_body(key, "tps", TPS)
    body["public_key"] = b64(other.public_key)
    with pytest.raises(SchemaViolation, match="SHA-256"):
        log.admit(record(GRANT.name, f"keys/{key.keyid}", body), ADMINS[:1])


# -- the authorization matrix: every role x every schema x every condition -------

ROLES = DEFAULT_POLICY["roles"]
SCHEMA_NAMES = sorted(
    {name for spec in ROLES.values() for name in spec["schemas"]}
    | set(SCHEMAS) - {GENESIS.name}
)
CONDITIONS = ["in_scope", "out_of_scope", "revoked", "not_yet_granted", "expired"]


def schema_for(name):
    # Registered schemas as they are; schemas of later issues as a region-named
    # subject, which is all authorization looks at.
    return SCHEMAS.get(name) or Schema(name, Obj({}), r"x/(?P<region>\d{0,13})")


def _writer_level(role):
    # The region length a role's narrowest scope names.
    return max(ROLES[role]["scope_lengths"])


def expected(role, name, condition):
    spec = ROLES[role]
    if condition == "not_yet_granted":
        return UnknownKey
    if condition == "revoked":
        return KeyRevoked
    if condition == "expired":
        return KeyExpired
    if name not in spec["schemas"]:
        return RoleNotAllowed
    national = max(spec["scope_lengths"]) == 0
    regionless = schema_for(name).region_of(subject_for(name, TPS, role)) is None
    if condition == "out_of_scope" and not national:
        return OutOfScope
    if regionless and not national:
        return OutOfScope
    # The election's own rule on top: the forms' stages are the station's.
    if name == TALLY.name and role != "tps":
        return RoleNotAllowed
    return None


def subject_for(name, region, role):
    if name == CANARY.name:
        return canary_subject("ab" * 32, 1)
    schema = SCHEMAS.get(name)
    if schema is not None and "region" not in schema.subject:
        return "parties/national" if name == PARTIES.name else f"keys/{'ab' * 32}"
    if name == REGIONS.name:
        return f"regions/{region[:6]}"
    if name == TALLY.name:
        return tally_subject("ppwp", region)
    if name == RECAP.name:
        # At exactly the writer's level (recaps are signed at that level).
        level = _writer_level(role)
        return recap_subject(
            "ppwp", region[: level if level in (0, 2, 4, 6, 10) else 10]
        )
    if name == CANDIDATES.name:
        return f"candidates/ppwp/{region[: min(_writer_level(role), 6)] or 'national'}"
    if name == "voters.change/v1":
        return f"voters/{region}/1"
    if name == PLAN.name:
        return f"audits/{region[: min(_writer_level(role), 6)] or 'national'}/plan-1"
    return f"x/{region}"


@pytest.mark.parametrize(
    ("role", "name", "condition"),
    list(itertools.product(sorted(ROLES), SCHEMA_NAMES, CONDITIONS)),
)
def test_authorization_matrix(role, name, condition):
    log = Log(threshold=1)
    key = Ed25519Signer("writer", bytes([70]) * 32)
    # The narrowest scope the role allows, so "out of scope" exists where it can.
    scope = TPS[: max(ROLES[role]["scope_lengths"])]
    extra = {"expires_at": "2024-02-14T00:00:00.000Z"} if condition == "expired" else {}
    if condition != "not_yet_granted":
        log.grant(key, role, scope, **extra)
    if condition == "revoked":
        log.revoke(key)
    region = ELSEWHERE if condition == "out_of_scope" else TPS
    body = {"keyid": "ab" * 32, "role": "tps"}
    if name == TALLY.name:
        body = {"stage": "officer_confirmed"}
    rec = record(name, subject_for(name, region, role), body)
    grants_before = dict(log.registry.grants)
    want = expected(role, name, condition)
    grants = (
        [log.registry.grants[key.keyid]] if key.keyid in log.registry.grants else []
    )
    if condition == "not_yet_granted":
        with pytest.raises(UnknownKey):
            log.registry.admit(rec, schema_for(name), [key.keyid], log.index, WHEN)
        return

    def decide():
        writer = authorize(
            rec,
            schema_for(name),
            grants,
            log.registry.genesis.policy,
            WHEN,
            log.registry.grants,
        )
        authorize_election(rec, writer)
        return writer

    if want is None:
        assert decide().keyid == key.keyid
    else:
        with pytest.raises(want):
            decide()
    assert log.registry.grants == grants_before


def test_expiry_is_judged_by_logged_at_not_issued_at():
    log = Log()
    key = Ed25519Signer("k", bytes([71]) * 32)
    log.grant(key, "tps", TPS, expires_at="2024-02-15T00:00:00.000Z")
    grant: Grant = log.registry.grants[key.keyid]
    schema = schema_for("results.tally/v1")
    rec = record("results.tally/v1", tally_subject("ppwp", TPS), {})
    policy = log.registry.genesis.policy
    authorize(rec, schema, [grant], policy, "2024-02-14T23:59:59.999Z", {})
    with pytest.raises(KeyExpired):
        authorize(rec, schema, [grant], policy, "2024-02-15T00:00:00.000Z", {})


LEVEL_ROLES = {"village": 10, "district": 6, "regency": 4, "province": 2, "national": 0}
AUTHORITY = ("district", "regency", "province", "national")


@pytest.mark.parametrize("role", sorted(LEVEL_ROLES))
@pytest.mark.parametrize("level", sorted(LEVEL_ROLES.values()))
def test_nobody_writes_recaps_below_or_above_their_level(role, level):
    # A recap officer's key covers its region; it signs that region's recap and
    # no other: not the villages or districts below it, not the regions above.
    log = Log(threshold=1)
    key = Ed25519Signer("recap", bytes([71]) * 32)
    log.grant(key, role, TPS[: LEVEL_ROLES[role]])
    rec = record(RECAP.name, recap_subject("ppwp", TPS[:level]), {})
    grant = log.registry.grants[key.keyid]

    def decide():
        writer = authorize(
            rec, RECAP, [grant], log.registry.genesis.policy, WHEN, log.registry.grants
        )
        authorize_election(rec, writer)

    if level == LEVEL_ROLES[role]:
        decide()
    else:
        with pytest.raises(OutOfScope):
            decide()


@pytest.mark.parametrize("role", ["tps", "village", *sorted(AUTHORITY)])
@pytest.mark.parametrize(
    "stage", ["machine_reading", "officer_confirmed", "authority_correction", "recount"]
)
def test_who_signs_which_stage_of_a_form(role, stage):
    # The station reads and confirms its form; only an authority above it
    # corrects it or records a recount, within its own region.
    log = Log(threshold=1)
    key = Ed25519Signer("stage", bytes([72]) * 32)
    scope = TPS if role == "tps" else TPS[: LEVEL_ROLES[role]]
    log.grant(key, role, scope)
    rec = record(TALLY.name, tally_subject("ppwp", TPS), {"stage": stage})
    grant = log.registry.grants[key.keyid]

    def decide():
        writer = authorize(
            rec, TALLY, [grant], log.registry.genesis.policy, WHEN, log.registry.grants
        )
        authorize_election(rec, writer)

    allowed = (role == "tps") == (stage in ("machine_reading", "officer_confirmed"))
    if allowed and role != "village":
        decide()
    else:
        with pytest.raises(RoleNotAllowed):
            decide()
