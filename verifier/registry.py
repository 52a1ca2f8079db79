"""The in-log key registry and record authorization (pure; replayable by observers).

Entry 0 is the genesis record (``log.genesis/v1``): the log's origin and verifier
key, the first admin keys, the admin threshold and the policy (which role may write
which schemas, and how long a role's region scope is). Keys are then granted,
changed and revoked by ``keys.grant/v1`` and ``keys.revoke/v1`` records on the
subject ``keys/<keyid>``. A grant binds a key to one role and one region scope (a
code prefix: province 2 digits, regency 4, district 6, village 10, polling station
13; "" is national).

``authorize`` decides a record from the grants *as of its position in the log* and
its ``logged_at`` time, so the verifier replays exactly what the server decided:

1. every signer has a grant (else ``UnknownKey``: not granted yet);
2. no signer is revoked (``KeyRevoked``) or past its expiry (``KeyExpired``);
3. the schema is one the policy knows for some signer's role (``RoleNotAllowed``);
4. the record's region lies inside that signer's scope (``OutOfScope``);
5. key-registry records need admin signers, and a threshold of them when an admin
   key is granted, changed or revoked (``ThresholdNotMet``). A key may always
   revoke itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from verifier._encoding import b64decode_strict
from verifier.dsse import UnknownKey, key_id
from verifier.errors import MalformedInput, VerificationError
from verifier.note import VerifierKey
from verifier.record import Record, parse_timestamp
from verifier.schema import (
    Enum,
    Hex,
    Int,
    List,
    Map,
    Obj,
    Schema,
    SchemaViolation,
    Str,
)

__all__ = [
    "ADMIN_ROLE",
    "GENESIS",
    "GENESIS_SUBJECT",
    "GRANT",
    "REGISTRY_SCHEMAS",
    "REVOKE",
    "AuthorizationError",
    "Genesis",
    "Grant",
    "KeyExpired",
    "KeyRegistry",
    "KeyRevoked",
    "OutOfScope",
    "Policy",
    "RoleNotAllowed",
    "ThresholdNotMet",
    "apply_key_record",
    "authorize",
    "authorize_genesis",
    "parse_genesis",
]

ADMIN_ROLE = "admin"
GENESIS_SUBJECT = "log/genesis"
SCOPE_LENGTHS = (0, 2, 4, 6, 10, 13)

_ROLE = Str(40, 1, r"[a-z][a-z0-9_]*")
_SCHEMA_NAME = Str(80, 1, r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*/v[1-9][0-9]{0,3}")
_SCOPE = Str(13, 0, r"[0-9]*")
_PUBLIC_KEY = Str(44, 44, r"[A-Za-z0-9+/]{43}=")
_TIME = Str(24, 24)
_HOLDER = Str(200, 1)

GENESIS = Schema(
    name="log.genesis/v1",
    subject=r"log/genesis",
    description="entry 0: origin, log key, first admins, threshold, policy",
    max_age_days=365,
    body=Obj(
        {
            "origin": Str(200, 1, r"[^\s+]+"),
            "log_key": Str(300, 1),
            "admins": List(
                Obj({"keyid": Hex(), "public_key": _PUBLIC_KEY, "holder": _HOLDER}),
                max_items=64,
                min_items=1,
            ),
            "threshold": Int(1, 64),
            "policy": Obj(
                {
                    "roles": Map(
                        _ROLE,
                        Obj(
                            {
                                "schemas": List(_SCHEMA_NAME, 64, unique=True),
                                "scope_lengths": List(
                                    Int(0, 13), 6, min_items=1, unique=True
                                ),
                            }
                        ),
                        max_items=64,
                        min_items=1,
                    )
                }
            ),
        }
    ),
)
GRANT = Schema(
    name="keys.grant/v1",
    subject=r"keys/(?P<keyid>[0-9a-f]{64})",
    description="grant a key a role and a region scope (or change an active grant)",
    max_age_days=30,
    body=Obj(
        {
            "keyid": Hex(),
            "public_key": _PUBLIC_KEY,
            "role": _ROLE,
            "scope": _SCOPE,
            "holder": _HOLDER,
            "expires_at": _TIME,
            "replaces": Hex(),
        },
        optional=frozenset({"expires_at", "replaces"}),
    ),
)
REVOKE = Schema(
    name="keys.revoke/v1",
    subject=r"keys/(?P<keyid>[0-9a-f]{64})",
    description="revoke a key from the next entry on",
    max_age_days=30,
    body=Obj(
        {
            "keyid": Hex(),
            "reason_code": Enum(("compromised", "superseded", "retired", "other")),
        }
    ),
)
REGISTRY_SCHEMAS = {s.name: s for s in (GENESIS, GRANT, REVOKE)}


class AuthorizationError(VerificationError):
    """The signers may not write this record at this position (stable ``cause``)."""

    cause = "unauthorized"


class KeyRevoked(AuthorizationError):
    """A signer's key was revoked before this position."""

    cause = "key-revoked"


class KeyExpired(AuthorizationError):
    """A signer's grant expired before this record was logged."""

    cause = "key-expired"


class RoleNotAllowed(AuthorizationError):
    """No signer's role may write this schema."""

    cause = "role-not-allowed"


class OutOfScope(AuthorizationError):
    """The record's region lies outside the signer's scope."""

    cause = "out-of-scope"


class ThresholdNotMet(AuthorizationError):
    """Too few admin signatures for a change to admin keys (or for genesis)."""

    cause = "threshold-not-met"


@dataclass(frozen=True, slots=True)
class RolePolicy:
    """What one role may write: its schemas and the allowed scope lengths."""

    schemas: frozenset[str]
    scope_lengths: frozenset[int]


@dataclass(frozen=True, slots=True)
class Policy:
    """Roles and the admin threshold, from the genesis record."""

    roles: Mapping[str, RolePolicy]
    threshold: int


@dataclass(frozen=True, slots=True)
class Grant:
    """A key's grant as of some position.

    Attributes:
        granted_at: index of the record that granted (or last changed) it.
        revoked_at: index of the revoking record, if any.
        expires_at: RFC 3339 time after which it may not sign, if any.
    """

    keyid: str
    public_key: bytes
    role: str
    scope: str
    holder: str
    granted_at: int
    expires_at: str | None = None
    revoked_at: int | None = None


@dataclass(frozen=True, slots=True)
class Genesis:
    """The parsed genesis record."""

    origin: str
    log_key: VerifierKey
    admins: tuple[Grant, ...]
    policy: Policy


def _public_key(text: str, keyid: str, what: str) -> bytes:
    raw = b64decode_strict(text, f"{what}.public_key")
    if key_id(raw) != keyid:
        raise SchemaViolation(what, "keyid is not the SHA-256 of public_key")
    return raw


def parse_genesis(record: Record) -> Genesis:
    """Read a genesis record (form, schema and internal consistency).

    Raises:
        MalformedInput: not a genesis record, or inconsistent: a key ID that
            does not match its key, a threshold above the number of admins, a
            policy without an admin role, a scope length that is no region level.
    """
    if record.schema != GENESIS.name or record.subject != GENESIS_SUBJECT:
        raise MalformedInput("entry 0 must be the log.genesis/v1 record")
    if record.revision != 0:
        raise MalformedInput("the genesis record is revision 0")
    GENESIS.body.check(record.body, "body")
    body = record.body
    log_key = VerifierKey.parse(body["log_key"])
    if log_key.name != body["origin"]:
        raise SchemaViolation("body.log_key", "key name must be the origin")
    admins = []
    seen: set[str] = set()
    for position, admin in enumerate(body["admins"]):
        what = f"body.admins[{position}]"
        if admin["keyid"] in seen:
            raise SchemaViolation(what, "admin listed twice")
        seen.add(admin["keyid"])
        public = _public_key(admin["public_key"], admin["keyid"], what)
        admins.append(Grant(admin["keyid"], public, ADMIN_ROLE, "", admin["holder"], 0))
    threshold = body["threshold"]
    if threshold > len(admins):
        raise SchemaViolation("body.threshold", "larger than the number of admins")
    roles = {}
    for role, spec in body["policy"]["roles"].items():
        lengths = frozenset(spec["scope_lengths"])
        if not lengths <= set(SCOPE_LENGTHS):
            raise SchemaViolation(
                f"body.policy.roles.{role}.scope_lengths",
                f"region scopes are {', '.join(map(str, SCOPE_LENGTHS))} digits",
            )
        roles[role] = RolePolicy(frozenset(spec["schemas"]), lengths)
    if ADMIN_ROLE not in roles or roles[ADMIN_ROLE].scope_lengths != {0}:
        raise SchemaViolation(
            "body.policy.roles", "needs an admin role with national scope only"
        )
    return Genesis(body["origin"], log_key, tuple(admins), Policy(roles, threshold))


def authorize_genesis(genesis: Genesis, signers: Sequence[str]) -> None:
    """Entry 0 must be signed by at least ``threshold`` of the admins it lists.

    Raises:
        ThresholdNotMet: too few of the listed admins signed it.
    """
    listed = {a.keyid for a in genesis.admins}
    signed = listed & set(signers)
    if len(signed) < genesis.policy.threshold:
        raise ThresholdNotMet(
            f"genesis needs {genesis.policy.threshold} of its admins' signatures, "
            f"found {len(signed)}"
        )


def _expired(grant: Grant, logged_at: str) -> bool:
    return grant.expires_at is not None and parse_timestamp(
        logged_at, "logged_at"
    ) >= parse_timestamp(grant.expires_at, "expires_at")


def _active(signers: Sequence[Grant], logged_at: str) -> None:
    for grant in signers:
        if grant.revoked_at is not None:
            raise KeyRevoked(
                f"key {grant.keyid} was revoked at entry {grant.revoked_at}"
            )
        if _expired(grant, logged_at):
            raise KeyExpired(f"key {grant.keyid} expired at {grant.expires_at}")


def _registry_change_needs_threshold(
    record: Record, grants: Mapping[str, Grant]
) -> bool:
    target = grants.get(record.body.get("keyid", ""))
    if record.schema == GRANT.name:
        replaced = grants.get(record.body.get("replaces", ""))
        return ADMIN_ROLE in {
            record.body.get("role"),
            target.role if target else None,
            replaced.role if replaced else None,
        }
    return target is not None and target.role == ADMIN_ROLE


def authorize(
    record: Record,
    schema: Schema,
    signers: Sequence[Grant],
    policy: Policy,
    logged_at: str,
    grants: Mapping[str, Grant],
) -> Grant:
    """Decide whether ``signers`` may write ``record`` here; return the writer.

    ``signers`` are the grants, as of this position, of every key that signed
    the envelope (their signatures already verified); ``grants`` looks up the
    grants of keys a registry record names.

    Raises:
        KeyRevoked, KeyExpired, RoleNotAllowed, OutOfScope, ThresholdNotMet:
            see the module docstring, checked in that order.
    """
    _active(signers, logged_at)
    if record.schema == REVOKE.name and any(
        s.keyid == record.body.get("keyid") for s in signers
    ):
        return next(s for s in signers if s.keyid == record.body.get("keyid"))
    region = schema.region_of(record.subject)
    allowed = [
        s
        for s in signers
        if s.role in policy.roles and record.schema in policy.roles[s.role].schemas
    ]
    if not allowed:
        roles = sorted({s.role for s in signers})
        raise RoleNotAllowed(f"role {', '.join(roles)} may not write {record.schema}")
    inside = [s for s in allowed if (region or "").startswith(s.scope)]
    if not inside:
        raise OutOfScope(
            f"{record.subject} is outside the scope "
            f"{', '.join(repr(s.scope) for s in allowed)} of its signers"
        )
    if record.schema in (GRANT.name, REVOKE.name) and _registry_change_needs_threshold(
        record, grants
    ):
        admins = {s.keyid for s in inside if s.role == ADMIN_ROLE}
        if len(admins) < policy.threshold:
            raise ThresholdNotMet(
                f"changing an admin key needs {policy.threshold} admin signatures, "
                f"found {len(admins)}"
            )
    return inside[0]


def apply_key_record(
    record: Record,
    index: int,
    grants: Mapping[str, Grant],
    policy: Policy,
) -> list[Grant]:
    """The grants a registry record creates or changes (apply after authorizing).

    Raises:
        MalformedInput: the record contradicts the registry: a key ID that does
            not match its subject or key, a scope the role does not allow, a
            change to a revoked key, a grant over an existing key at revision 0,
            or a ``replaces`` naming an unknown or revoked key.
    """
    body: dict[str, Any] = record.body
    keyid = body["keyid"]
    if record.subject != f"keys/{keyid}":
        raise SchemaViolation("body.keyid", "must be the key named by the subject")
    current = grants.get(keyid)
    if current is not None and current.revoked_at is not None:
        raise MalformedInput(f"key {keyid} is revoked; a revoked key stays revoked")
    if record.schema == REVOKE.name:
        if current is None:
            raise MalformedInput(f"key {keyid} was never granted")
        return [_revoked(current, index)]
    if (current is None) != (record.revision == 0):
        raise MalformedInput(
            f"key {keyid} is {'not ' if current is None else ''}granted yet: "
            "a first grant is revision 0, a change is a later revision"
        )
    public = _public_key(body["public_key"], keyid, "body")
    if current is not None and current.public_key != public:
        raise SchemaViolation("body.public_key", "differs from the granted key")
    role = policy.roles.get(body["role"])
    if role is None:
        raise SchemaViolation("body.role", f"no role {body['role']!r} in the policy")
    if len(body["scope"]) not in role.scope_lengths:
        raise SchemaViolation(
            "body.scope",
            f"role {body['role']} takes a scope of "
            f"{' or '.join(str(n) for n in sorted(role.scope_lengths))} digits",
        )
    if "expires_at" in body:
        parse_timestamp(body["expires_at"], "body.expires_at")
    changes = [
        Grant(
            keyid,
            public,
            body["role"],
            body["scope"],
            body["holder"],
            index,
            body.get("expires_at"),
        )
    ]
    if "replaces" in body:
        old = grants.get(body["replaces"])
        if old is None or old.revoked_at is not None or old.keyid == keyid:
            raise MalformedInput(
                f"replaces {body['replaces']}: not an active, different key"
            )
        changes.append(_revoked(old, index))
    return changes


def _revoked(grant: Grant, index: int) -> Grant:
    return Grant(
        grant.keyid,
        grant.public_key,
        grant.role,
        grant.scope,
        grant.holder,
        grant.granted_at,
        grant.expires_at,
        index,
    )


class KeyRegistry:
    """The registry replayed in memory, entry by entry (observers, tests).

    ``admit`` checks one record at the next position and, if it is allowed,
    applies it; a refused record changes nothing.
    """

    def __init__(self) -> None:
        self.genesis: Genesis | None = None
        self.grants: dict[str, Grant] = {}

    def copy(self) -> KeyRegistry:
        """An independent registry in the same state (grants are immutable)."""
        twin = KeyRegistry()
        twin.genesis = self.genesis
        twin.grants = dict(self.grants)
        return twin

    def public_key(self, keyid: str) -> bytes | None:
        """The public key of any key ever granted (revoked ones included)."""
        grant = self.grants.get(keyid)
        return None if grant is None else grant.public_key

    def admit(
        self,
        record: Record,
        schema: Schema,
        signers: Sequence[str],
        index: int,
        logged_at: str,
    ) -> Grant | None:
        """Authorize ``record`` (signed by ``signers``) at ``index``; apply it.

        Returns the grant of the signer that authorizes it (None for genesis).

        Raises:
            MalformedInput: genesis missing, misplaced or malformed, or a registry
                record that contradicts the registry.
            AuthorizationError: the signers may not write it (see ``authorize``).
            UnknownKey: a signer was never granted.
        """
        writer, changes = self.check(record, schema, signers, index, logged_at)
        self.apply(changes)
        return writer

    def check(
        self,
        record: Record,
        schema: Schema,
        signers: Sequence[str],
        index: int,
        logged_at: str,
    ) -> tuple[Grant | None, Genesis | list[Grant]]:
        """``admit`` without applying: the writer and the changes to apply.

        Raises:
            As ``admit``; nothing is changed either way.
        """
        writer = self.authorize(record, schema, signers, index, logged_at)
        return writer, self.changes(record, index)

    def authorize(
        self,
        record: Record,
        schema: Schema,
        signers: Sequence[str],
        index: int,
        logged_at: str,
    ) -> Grant | None:
        """May ``signers`` write ``record`` at ``index``? The writer's grant.

        Raises:
            MalformedInput: genesis missing or misplaced, or a malformed genesis.
            AuthorizationError, UnknownKey: as ``admit``.
        """
        if self.genesis is None:
            if index != 0:
                raise MalformedInput("the log has no genesis record")
            authorize_genesis(parse_genesis(record), signers)
            return None
        if record.schema == GENESIS.name:
            raise MalformedInput("a log has exactly one genesis record, at entry 0")
        grants = []
        for keyid in signers:
            grant = self.grants.get(keyid)
            if grant is None:
                raise UnknownKey(keyid)
            grants.append(grant)
        policy = self.genesis.policy
        return authorize(record, schema, grants, policy, logged_at, self.grants)

    def changes(self, record: Record, index: int) -> Genesis | list[Grant]:
        """What an authorized ``record`` at ``index`` changes in the registry.

        Raises:
            MalformedInput: a registry record that contradicts the registry.
        """
        if self.genesis is None:
            return parse_genesis(record)
        if record.schema in (GRANT.name, REVOKE.name):
            return apply_key_record(record, index, self.grants, self.genesis.policy)
        return []

    def apply(self, changes: Genesis | list[Grant]) -> None:
        """Apply what ``check`` returned."""
        if isinstance(changes, Genesis):
            self.genesis = changes
            self.grants = {a.keyid: a for a in changes.admins}
            return
        for change in changes:
            self.grants[change.keyid] = change
