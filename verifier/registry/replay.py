"""The key registry replayed entry by entry (observers, tests, the server's gate).

``KeyRegistry`` holds the grants as of a position in the log: genesis first,
then each authorized ``keys.grant/v1`` and ``keys.revoke/v1`` record applied by
``apply_key_record``. A refused record changes nothing; a revoked key stays
revoked. What may be written is ``authorize``'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from verifier.body_schema import Schema, SchemaViolation
from verifier.dsse import UnknownKey
from verifier.errors import MalformedInput
from verifier.record import Record, parse_timestamp
from verifier.registry.authorize import (
    Genesis,
    Grant,
    Policy,
    authorize,
    authorize_genesis,
    parse_genesis,
    public_key_of,
)
from verifier.registry.schemas import GENESIS, GRANT, REVOKE

__all__ = ["KeyRegistry", "apply_key_record"]


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
    public = public_key_of(body["public_key"], keyid, "body")
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
