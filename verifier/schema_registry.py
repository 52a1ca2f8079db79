"""The registered record schemas, by name (the registry every check consults).

A name that is not here is an unknown schema and its records are refused: the key
registry's (``verifier.registry``) and the election's (``verifier.election``).
"""

from __future__ import annotations

from verifier.body_schema import Schema
from verifier.canary import CANARY
from verifier.election import ELECTION_SCHEMAS
from verifier.errors import MalformedInput
from verifier.registry import REGISTRY_SCHEMAS
from verifier.sample import PLAN

__all__ = ["SCHEMAS", "UnknownSchema", "get_schema"]

SCHEMAS: dict[str, Schema] = {
    **REGISTRY_SCHEMAS,
    **ELECTION_SCHEMAS,
    CANARY.name: CANARY,
    PLAN.name: PLAN,
}


class UnknownSchema(MalformedInput):
    """A record names a schema that is not registered."""

    cause = "unknown-schema"


def get_schema(name: str) -> Schema:
    """The registered schema called ``name``.

    Raises:
        UnknownSchema: no such schema.
    """
    schema = SCHEMAS.get(name)
    if schema is None:
        raise UnknownSchema(f"unknown schema {name[:80]!r}")
    return schema
