"""What a watcher of the log concludes from two revisions of one subject.

Pure functions over record bodies, shared by the security monitor (``saksi
monitor``) and anyone who wants to reproduce its alerts from the log: a total
that went down with no correction on record, a machine reading that the
officers' confirmation differs from beyond a threshold, the recap that names a
form, the region a subject is about.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from verifier.election import recap_subject

__all__ = [
    "ReadingDifference",
    "parent_recap",
    "reading_differences",
    "region_of",
    "total_of",
    "total_went_down",
]

_PARENT = {13: 10, 10: 6, 6: 4, 4: 2, 2: 0}


def region_of(subject: str) -> str | None:
    """The region code of a ``results/`` or ``recaps/`` subject ("" national)."""
    parts = subject.split("/")
    if len(parts) != 3 or parts[0] not in ("results", "recaps"):
        return None
    return "" if parts[2] == "national" else parts[2]


def parent_recap(subject: str) -> str | None:
    """The recap one level above a form or recap (None above the national one)."""
    region = region_of(subject)
    if region is None or len(region) not in _PARENT:
        return None
    return recap_subject(subject.split("/")[1], region[: _PARENT[len(region)]])


def total_of(body: Mapping[str, Any]) -> int | None:
    """The ``total`` a tally or recap body records (None if it has none)."""
    source = body.get("totals", body)
    total = source.get("total") if isinstance(source, Mapping) else None
    return total if isinstance(total, int) else None


def total_went_down(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[int, int] | None:
    """(old, new) total if ``after`` records less than ``before`` with no correction.

    A later revision may lower a total only as a correction on record (its
    body's ``correction``: reason and reference); anything else is a total
    that went down silently.
    """
    old, new = total_of(before), total_of(after)
    if old is None or new is None or new >= old or "correction" in after:
        return None
    return old, new


@dataclass(frozen=True, slots=True)
class ReadingDifference:
    """One candidate's (or party's) votes as read by machine and as confirmed."""

    candidate: str
    machine: int
    confirmed: int


def reading_differences(
    machine: Mapping[str, Any],
    confirmed: Mapping[str, Any],
    votes: int,
    ratio: float,
) -> list[ReadingDifference]:
    """Where the officers' confirmation differs from the machine reading.

    A difference counts when it is more than ``votes`` votes and more than
    ``ratio`` of the larger of the two figures (652 read for 152 written is
    both). Candidates missing on one side count as 0 there.
    """
    read, kept = _votes(machine), _votes(confirmed)
    out = []
    for candidate in sorted(set(read) | set(kept)):
        a, b = read.get(candidate, 0), kept.get(candidate, 0)
        gap = abs(a - b)
        if gap > votes and gap > ratio * max(a, b):
            out.append(ReadingDifference(candidate, a, b))
    return out


def _votes(body: Mapping[str, Any]) -> dict[str, int]:
    """Votes by candidate, or by party and candidate for party ballots."""
    out: dict[str, int] = {}
    for candidate, count in body.get("votes", {}).items():
        out[candidate] = count
    for party, entry in body.get("parties", {}).items():
        if isinstance(entry, Mapping):
            out[f"party {party}"] = entry.get("party", 0)
            for candidate, count in entry.get("candidates", {}).items():
                out[f"{party}/{candidate}"] = count
    return out
