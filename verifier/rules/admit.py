"""The election's rules for one record at its place in the log, in one call.

What the writer's gate asks of an election record once its signers are
authorized by the key registry (``verifier.registry``), and what the audit
asks of it in log order: the signer may sign this stage or recap level
(``authorize_election``), the record fits the region registry and candidate
lists in force (``ElectionState.check``), and a recap names only children
that are logged as it names them (``unlogged_child``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from verifier.election import ELECTION_SCHEMAS, RECAP
from verifier.record import Record
from verifier.registry import Grant
from verifier.rules.chain import unlogged_child
from verifier.rules.state import (
    ElectionState,
    UnknownChild,
    authorize_election,
    recap_children,
)

__all__ = ["check_election_record", "named_children"]


def named_children(records: Iterable[Record]) -> list[bytes]:
    """The payload hashes the recaps among ``records`` name (read in one lookup)."""
    return [
        bytes.fromhex(digest)
        for record in records
        if record.schema == RECAP.name and isinstance(record.body.get("children"), dict)
        for digest in record.body["children"].values()
    ]


def check_election_record(
    record: Record,
    writer: Grant,
    election: ElectionState,
    logged_subject: Callable[[bytes], str | None],
) -> None:
    """Refuse an election record its writer, the registries or the log rule out.

    ``writer`` is the grant the key registry authorized it under;
    ``logged_subject(digest)`` the subject of the logged record with that
    payload hash (None when there is none). Records of other schemas pass.

    Raises:
        RoleNotAllowed, OutOfScope: a stage or recap level the writer may not sign.
        OutsideRegistry, UnknownCandidate: not in the registries in force.
        UnknownChild: a recap names a child that is not logged as named.
        SchemaViolation: a recap names a code that is not a direct child.
    """
    if record.schema not in ELECTION_SCHEMAS:
        return
    authorize_election(record, writer)
    election.check(record)
    if record.schema == RECAP.name:
        missing = unlogged_child(recap_children(record), logged_subject)
        if missing is not None:
            subject, digest = missing
            raise UnknownChild(
                f"child {subject} with payload hash {digest.hex()} is not in the log"
            )
