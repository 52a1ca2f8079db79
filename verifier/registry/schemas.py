"""The key registry's records: their schemas, subjects and region scope lengths.

``log.genesis/v1`` (entry 0: the log's origin and verifier key, the first admin
keys, the admin threshold and the policy), ``keys.grant/v1`` and
``keys.revoke/v1`` (on the subject ``keys/<keyid>``). A grant's scope is a
region code prefix: province 2 digits, regency 4, district 6, village 10,
polling station 13; "" is national. Deciding them is ``authorize``'s and
``replay``'s.
"""

from __future__ import annotations

from verifier.body_schema import Enum, Hex, Int, List, Map, Obj, Schema, Str

__all__ = [
    "ADMIN_ROLE",
    "GENESIS",
    "GENESIS_SUBJECT",
    "GRANT",
    "REGISTRY_SCHEMAS",
    "REVOKE",
    "SCOPE_LENGTHS",
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
