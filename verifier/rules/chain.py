"""The rules that tie records together: subject chains and a recap's children.

Written once, used by the writer's gate (which refuses) and by the observers'
audit (which reports): each returns what is wrong, and the caller words it.

* A subject's revisions are gapless from 0, and revision n names revision
  n - 1's payload hash as ``prev`` (``chain_break``).
* Every child a recap names is in the log under the subject its code implies,
  with the payload hash the recap gives (``unlogged_child``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = ["ChainBreak", "chain_break", "unlogged_child"]


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """How a record fails to continue its subject's chain.

    ``kind`` is ``stale`` (the revision is taken), ``skipped`` (beyond the next
    one) or ``prev`` (the right revision naming the wrong predecessor);
    ``expected`` is the next revision; ``current``/``current_hash`` the
    subject's head (None when it has none).
    """

    kind: Literal["stale", "skipped", "prev"]
    expected: int
    current: int | None
    current_hash: str | None


def chain_break(
    revision: int, prev: str | None, head: tuple[int, str] | None
) -> ChainBreak | None:
    """Why ``revision`` (with ``prev``) does not continue ``head``, or None.

    ``head`` is the subject's latest logged (revision, payload hash hex), None
    for a subject with no revision yet.
    """
    current, current_hash = (None, None) if head is None else head
    expected = 0 if current is None else current + 1
    if revision < expected:
        return ChainBreak("stale", expected, current, current_hash)
    if revision > expected:
        return ChainBreak("skipped", expected, current, current_hash)
    if current_hash is not None and prev != current_hash:
        return ChainBreak("prev", expected, current, current_hash)
    return None


def unlogged_child(
    named: Iterable[tuple[str, bytes]], logged_subject: Callable[[bytes], str | None]
) -> tuple[str, bytes] | None:
    """The first child a recap names that the log does not hold as named, or None.

    ``named`` is the recap's (subject, payload hash) pairs (``recap_children``);
    ``logged_subject(digest)`` is the subject of the logged record with that
    payload hash, None when there is none.
    """
    for subject, digest in named:
        if logged_subject(digest) != subject:
            return subject, digest
    return None
