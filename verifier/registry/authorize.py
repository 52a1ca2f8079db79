"""Whether a record's signers may write it at its position (pure).

``authorize`` decides a record from the grants *as of its position in the log*
and its ``logged_at`` time, so the verifier replays exactly what the server
decided:

1. every signer has a grant (else ``UnknownKey``: not granted yet);
2. no signer is revoked (``KeyRevoked``) or past its expiry (``KeyExpired``);
3. the schema is one the policy knows for some signer's role (``RoleNotAllowed``);
4. the record's region lies inside that signer's scope (``OutOfScope``);
5. key-registry records need admin signers, and a threshold of them when an admin
   key is granted, changed or revoked (``ThresholdNotMet``). A key may always
   revoke itself.

``parse_genesis`` reads the policy from entry 0, which ``authorize_genesis``
checks is signed by its own admins. Keeping the grants is ``replay``'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from verifier._encoding import b64decode_strict
from verifier.body_schema import Schema, SchemaViolation
from verifier.dsse import key_id
from verifier.errors import MalformedInput, VerificationError
from verifier.note import VerifierKey
from verifier.record import Record, parse_timestamp
from verifier.registry.schemas import (
    ADMIN_ROLE,
    GENESIS,
    GENESIS_SUBJECT,
    GRANT,
    REVOKE,
    SCOPE_LENGTHS,
)

__all__ = [
    "AuthorizationError",
    "Genesis",
    "Grant",
    "KeyExpired",
    "KeyRevoked",
    "OutOfScope",
    "Policy",
    "RoleNotAllowed",
    "RolePolicy",
    "ThresholdNotMet",
    "authorize",
    "authorize_genesis",
    "parse_genesis",
    "public_key_of",
]


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


def public_key_of(text: str, keyid: str, what: str) -> bytes:
    """The key ``text`` (base64) whose ID is ``keyid``.

    Raises:
        MalformedInput: not base64, or not the key ``keyid`` names.
    """
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
        public = public_key_of(admin["public_key"], admin["keyid"], what)
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
