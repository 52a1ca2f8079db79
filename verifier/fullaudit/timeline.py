"""The audit's account of time and keys: entries per hour, the key registry's events.

``Hours`` counts every entry by the hour it was logged (its ``logged_at``, UTC),
the province its record is about ("" for records about no region) and its kind
(forms, recaps, keys, election data, other; "unreadable" when the entry does not
decode); the counts are kept in the audit's store. ``timeline`` reads them back
as the log's growth and the submissions per hour per province. ``key_events``
reads the key-registry records the audit applied (the store keeps them to
replay): the genesis (admins, threshold), grants by role, rotations (a grant
that replaces a key), changed grants, revocations with their reason. Everything
here is what the audit itself decided: a refused record is not an event.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from typing import Any

from verifier.election import ELECTION_SCHEMAS, RECAP, TALLY
from verifier.errors import VerificationError
from verifier.fullaudit.store import unreplayable
from verifier.record import Record
from verifier.registry import REGISTRY_SCHEMAS
from verifier.registry.schemas import GENESIS, GRANT, REVOKE

__all__ = ["KINDS", "LISTED", "Hours", "key_events", "timeline"]

KINDS = ("forms", "recaps", "keys", "election_data", "other", "unreadable")
LISTED = 1000  # key events listed one by one (every count is whole)


def kind_of(record: Record | None) -> str:
    """The kind of entry ``record`` is, for the hourly counts."""
    if record is None:
        return "unreadable"
    if record.schema == TALLY.name:
        return "forms"
    if record.schema == RECAP.name:
        return "recaps"
    if record.schema in REGISTRY_SCHEMAS:
        return "keys"
    if record.schema in ELECTION_SCHEMAS:
        return "election_data"
    return "other"


def province_of(record: Record | None) -> str:
    """The province an election record is about ("" for none, or national)."""
    if record is None or record.schema not in ELECTION_SCHEMAS:
        return ""
    try:
        region = ELECTION_SCHEMAS[record.schema].region_of(record.subject)
    except VerificationError:
        return ""
    return (region or "")[:2]


class Hours:
    """Entries per (hour, province, kind), counted in memory, kept in the store."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.counts: Counter[tuple[str, str, str]] = Counter()

    def add(self, logged_at: str, record: Record | None) -> None:
        """Count one entry (``logged_at`` "" when the entry does not decode)."""
        self.counts[logged_at[:13], province_of(record), kind_of(record)] += 1

    def flush(self) -> None:
        """Add the counts so far to the store (in its open transaction)."""
        self.db.executemany(
            "INSERT INTO hours VALUES (?, ?, ?, ?) ON CONFLICT (hour, province, kind) "
            "DO UPDATE SET n = n + excluded.n",
            [(h, p, k, n) for (h, p, k), n in self.counts.items()],
        )
        self.counts.clear()


def timeline(db: sqlite3.Connection) -> dict[str, Any]:
    """The log's growth and the submissions per hour per province.

    ``hours``: for each hour with entries (``YYYY-MM-DDTHH``, UTC, in order),
    the entries logged in it by kind and in all, and the log's size at its end.
    ``provinces``: for each province, its records per hour.
    """
    by_hour: dict[str, Counter[str]] = defaultdict(Counter)
    provinces: dict[str, dict[str, int]] = defaultdict(dict)
    for hour, province, kind, n in db.execute(
        "SELECT hour, province, kind, n FROM hours ORDER BY hour, province, kind"
    ):
        by_hour[hour][kind] += n
        if province:
            provinces[province][hour] = provinces[province].get(hour, 0) + n
    hours, size = [], 0
    for hour in sorted(by_hour):
        counts = by_hour[hour]
        entries = sum(counts.values())
        size += entries
        hours.append(
            {
                "hour": hour,
                "entries": entries,
                "size": size,
                **{kind: counts[kind] for kind in KINDS},
            }
        )
    return {
        "hours": hours,
        "provinces": {p: provinces[p] for p in sorted(provinces)},
    }


def key_events(db: sqlite3.Connection) -> dict[str, Any]:
    """The key registry's events, from the records the audit applied."""
    grants: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    events: list[dict[str, Any]] = []
    granted: set[str] = set()
    admins: set[str] = set()  # the admin keys in force
    threshold = None
    for index, data in db.execute("SELECT idx, entry FROM replay ORDER BY idx"):
        record, signers, logged_at = unreplayable(bytes(data))
        body = record.body
        event: dict[str, Any] = {
            "index": index,
            "logged_at": logged_at,
            "signers": len(signers),
        }
        if record.schema == GENESIS.name:
            threshold = body["threshold"]
            admins = {a["keyid"] for a in body["admins"]}
            granted |= admins
            event.update(kind="genesis", threshold=threshold, admins=len(admins))
        elif record.schema == GRANT.name:
            keyid, role = body["keyid"], body["role"]
            kind = (
                "rotation"
                if "replaces" in body
                else "change"
                if keyid in granted
                else "grant"
            )
            granted.add(keyid)
            grants[role] += kind != "change"
            if role == "admin":
                admins.add(keyid)
            else:
                admins.discard(keyid)
            event.update(
                kind=kind,
                keyid=keyid,
                role=role,
                scope=body["scope"] or "national",
                holder=body["holder"],
            )
            if "replaces" in body:
                event["replaces"] = body["replaces"]
        elif record.schema == REVOKE.name:
            admins.discard(body["keyid"])
            event.update(
                kind="revocation", keyid=body["keyid"], reason=body["reason_code"]
            )
        else:
            continue
        counts[event["kind"]] += 1
        # Every event but the ordinary grant of a non-admin key is listed.
        notable = event["kind"] != "grant" or event.get("role") == "admin"
        if notable and len(events) < LISTED:
            events.append(event)
    return {
        "threshold": threshold,
        "admins": len(admins),
        "grants_by_role": dict(sorted(grants.items())),
        "counts": {k: counts[k] for k in ("grant", "rotation", "change", "revocation")},
        "events": events,
        "events_listed": len(events),
    }
