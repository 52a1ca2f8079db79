"""The in-log key registry and record authorization (pure; replayable by observers).

Entry 0 is the genesis record (``log.genesis/v1``): the log's origin and verifier
key, the first admin keys, the admin threshold and the policy (which role may write
which schemas, and how long a role's region scope is). Keys are then granted,
changed and revoked by ``keys.grant/v1`` and ``keys.revoke/v1`` records on the
subject ``keys/<keyid>``. A grant binds a key to one role and one region scope (a
code prefix: province 2 digits, regency 4, district 6, village 10, polling station
13; "" is national).

One module per concern: ``schemas`` (the three records' schemas),
``authorize`` (whether a record's signers may write it at its position, pure,
with its numbered checks) and ``replay`` (``KeyRegistry``: the grants as of a
position, record by record, as the server decided them).
"""

from __future__ import annotations

from verifier.registry.authorize import (
    AuthorizationError,
    Genesis,
    Grant,
    KeyExpired,
    KeyRevoked,
    OutOfScope,
    Policy,
    RoleNotAllowed,
    ThresholdNotMet,
    authorize,
    authorize_genesis,
    parse_genesis,
)
from verifier.registry.replay import KeyRegistry, apply_key_record
from verifier.registry.schemas import (
    ADMIN_ROLE,
    GENESIS,
    GENESIS_SUBJECT,
    GRANT,
    REGISTRY_SCHEMAS,
    REVOKE,
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
