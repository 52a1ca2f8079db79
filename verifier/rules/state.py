"""What the election's records may say, decided as of their position in the log.

``ElectionState`` holds the region registry and the candidate and party lists in
force, built from the log's own ``regions.registry/v1``, ``candidates.change/v1``
and ``parties.change/v1`` records in order. The server decides each new record
against it, and a verifier replaying the log decides the same way. What no form
can say is refused here, with a stable cause:

* ``outside-registry``: a polling station or region the registry in force does
  not list (a station is listed by its district's record);
* ``unknown-candidate``: a candidate or party not standing on that ballot there
  (the candidate list of the longest registered prefix of the station's code);
* ``schema-violation``: the shape the ballot needs (votes by candidate for the
  presidential and DPD ballots, by party for the others), a recap child that is
  not a direct child of its region, a correction without its reason code and
  reference or a machine reading that carries one;
* ``role-not-allowed`` / ``out-of-scope``: forms are read and confirmed by the
  station (role ``tps``), corrected or recounted by an authority above it
  (``district``, ``regency``, ``province``, ``national``); a recap is signed at
  exactly the level of the signer's scope.

Arithmetic is never refused: see ``verifier.rules.arithmetic``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from verifier.body_schema import SchemaViolation
from verifier.election import (
    CANDIDATES,
    CORRECTION_STAGES,
    PARTIES,
    PARTY_BALLOTS,
    RECAP,
    REGIONS,
    TALLY,
    VOTERS,
    child_subject,
)
from verifier.errors import MalformedInput
from verifier.record import Record
from verifier.registry import Grant, OutOfScope, RoleNotAllowed

__all__ = [
    "AUTHORITY_ROLES",
    "ELECTION_WRITES",
    "STATE_SCHEMAS",
    "STATION_ROLE",
    "ElectionState",
    "OutsideRegistry",
    "UnknownCandidate",
    "UnknownChild",
    "authorize_election",
    "ballot_of",
    "recap_children",
]

STATION_ROLE = "tps"
AUTHORITY_ROLES = frozenset({"district", "regency", "province", "national"})
ELECTION_WRITES = frozenset({TALLY.name, RECAP.name})
STATE_SCHEMAS = frozenset({REGIONS.name, CANDIDATES.name, PARTIES.name})


class OutsideRegistry(MalformedInput):
    """The record is about a station or region the registry in force lacks."""

    cause = "outside-registry"


class UnknownCandidate(MalformedInput):
    """A candidate or party that does not stand on this ballot in this region."""

    cause = "unknown-candidate"


class UnknownChild(MalformedInput):
    """A recap names a child revision that is not in the log."""

    cause = "unknown-child"


def recap_children(record: Record) -> list[tuple[str, bytes]]:
    """(subject, payload hash) of every child a recap names, in code order.

    Raises:
        SchemaViolation: a code that is not a direct child of the recap's region.
    """
    ballot, region = ballot_of(record.subject), _region(record)
    out = []
    for code, digest in sorted(record.body["children"].items()):
        subject = child_subject(ballot, region, code)
        if subject is None:
            raise SchemaViolation(
                f"body.children key {code!r}",
                f"not a direct child of {region or 'the nation'}",
            )
        out.append((subject, bytes.fromhex(digest)))
    return out


def ballot_of(subject: str) -> str:
    """The ballot code in a results, recaps or candidates subject."""
    return subject.split("/")[1]


def _region(record: Record) -> str:
    part = record.subject.rsplit("/", 1)[1]
    return "" if part == "national" else part


def authorize_election(record: Record, writer: Grant) -> None:
    """Who may write which stage and which recap level (after ``authorize``).

    Raises:
        RoleNotAllowed: a stage the writer's role may not sign.
        OutOfScope: a recap not at exactly the writer's level.
    """
    if record.schema == TALLY.name:
        stage = record.body.get("stage")
        if stage in CORRECTION_STAGES:
            if writer.role not in AUTHORITY_ROLES:
                raise RoleNotAllowed(
                    f"role {writer.role} may not sign a {stage}: corrections and "
                    f"recounts are signed by {', '.join(sorted(AUTHORITY_ROLES))}"
                )
        elif writer.role != STATION_ROLE:
            raise RoleNotAllowed(
                f"role {writer.role} may not sign a {stage}: the station's own "
                f"officers ({STATION_ROLE}) read and confirm its forms"
            )
    elif record.schema == RECAP.name and _region(record) != writer.scope:
        raise OutOfScope(
            f"{record.subject} is not at the level of the signer's scope "
            f"{writer.scope or 'all'}: recaps are signed at exactly their level"
        )


@dataclass
class ElectionState:
    """The region registry and candidate lists in force at one log position.

    Attributes:
        districts: district code -> village code -> its station numbers.
        prefixes: every province, regency, district and village code listed.
        candidates: (ballot, region prefix) -> candidate id -> party id or "".
        parties: registered party ids.
    """

    districts: dict[str, dict[str, frozenset[int]]] = field(default_factory=dict)
    prefixes: dict[str, int] = field(default_factory=dict)
    candidates: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    parties: frozenset[str] = frozenset()
    # The (ballot, region) pairs with a list registered strictly inside them,
    # and how many list registrations (and undos) they were computed after.
    _lists_changed: int = field(default=0, repr=False, compare=False)
    _inside: tuple[int, frozenset[tuple[str, str]]] | None = field(
        default=None, repr=False, compare=False
    )
    # The province, regency and district codes under each code of length 0, 2
    # and 4, and how many region registrations (and undos) they were built after.
    _regions_changed: int = field(default=0, repr=False, compare=False)
    _above: tuple[int, dict[str, list[str]]] | None = field(
        default=None, repr=False, compare=False
    )

    # -- questions ---------------------------------------------------------------

    def has_station(self, code: str) -> bool:
        """Is polling station ``code`` (13 digits) in the registry in force?"""
        village = self.districts.get(code[:6], {}).get(code[:10])
        return village is not None and int(code[10:]) in village

    def has_region(self, code: str) -> bool:
        """Is region ``code`` ("" national, 2 to 10 digits) listed?"""
        return code == "" or self.prefixes.get(code, 0) > 0

    def children_of(self, region: str) -> list[str]:
        """The codes one level below ``region`` ("" national) in the registry.

        A village's children are its polling stations (13 digits); a district's
        its villages; a regency's its districts; a province's its regencies; the
        nation's its provinces.
        """
        if len(region) == 10:
            stations = self.districts.get(region[:6], {}).get(region, frozenset())
            return [f"{region}{n:03d}" for n in sorted(stations)]
        if len(region) == 6:
            return sorted(self.districts.get(region, {}))
        if len(region) not in (0, 2, 4):
            return []
        if self._above is None or self._above[0] != self._regions_changed:
            # Built once per registry change: a recap builder asks for the
            # regions under the nation, a province or a regency page by page.
            changed = self._regions_changed
            below: dict[str, set[str]] = {}
            for district in list(self.districts):  # the writer may be adding some
                for upper, width in (("", 2), (district[:2], 4), (district[:4], 6)):
                    below.setdefault(upper, set()).add(district[:width])
            self._above = (
                changed,
                {code: sorted(codes) for code, codes in below.items()},
            )
        return list(self._above[1].get(region, ()))

    def carries_candidates(self, ballot: str, region: str) -> bool:
        """Does the recap of ``region`` ("" national) on ``ballot`` count candidates?

        Only where one candidate list applies to every station under it, that
        is where no list is registered for a region strictly inside it. Above
        that (a DPD recap of the nation, a council recap above its lists) a
        recap counts no candidates: see ``verifier.rules.fold_totals``.
        """
        if self._inside is None or self._inside[0] != self._lists_changed:
            inside = {
                (b, r[:n])
                for b, r in self.candidates
                for n in (0, 2, 4, 6, 10)
                if n < len(r)
            }
            self._inside = (self._lists_changed, frozenset(inside))
        return (ballot, region) not in self._inside[1]

    def candidate_list(self, ballot: str, station: str) -> dict[str, str] | None:
        """The candidates of the longest registered prefix of ``station``."""
        for length in (13, 10, 6, 4, 2, 0):
            found = self.candidates.get((ballot, station[:length]))
            if found is not None:
                return found
        return None

    # -- deciding a record ------------------------------------------------------

    def check(self, record: Record) -> None:
        """Refuse what no form can say (see the module docstring).

        Raises:
            OutsideRegistry, UnknownCandidate, SchemaViolation.
        """
        if record.schema == TALLY.name:
            self._check_tally(record)
        elif record.schema == RECAP.name:
            self._check_recap(record)
        elif record.schema == REGIONS.name:
            _check_regions(record)
        elif record.schema == CANDIDATES.name:
            self._check_candidates(record)
        elif record.schema == VOTERS.name:
            self._check_voters(record)

    def _check_voters(self, record: Record) -> None:
        station = record.subject.split("/")[1]
        if not self.has_station(station):
            raise OutsideRegistry(
                f"polling station {station} is not in the region registry in force"
            )
        if record.revision != 0 or record.reason is not None or record.evidence:
            raise SchemaViolation(
                "record",
                "a voter-data batch is never revised and carries no free text "
                "(reason, evidence): log the next batch instead",
            )
        registered = record.body["registered"]
        if registered["male"] + registered["female"] != registered["total"]:
            raise SchemaViolation("body.registered", "male + female must be total")
        for name in ("added", "removed", "transferred_in", "transferred_out"):
            for position, digest in enumerate(record.body[name]):
                if digest.isdigit() or digest.startswith("0" * 16):
                    raise SchemaViolation(
                        f"body.{name}[{position}]",
                        "not a salted commitment (SHA-256 output): a padded "
                        "number is refused",
                    )

    def _check_tally(self, record: Record) -> None:
        ballot, station, body = ballot_of(record.subject), _region(record), record.body
        if not self.has_station(station):
            raise OutsideRegistry(
                f"polling station {station} is not in the region registry in force"
            )
        _check_correction(body, record)
        wanted, other = (
            ("parties", "votes")
            if ballot in PARTY_BALLOTS
            else (
                "votes",
                "parties",
            )
        )
        if wanted not in body or other in body:
            raise SchemaViolation(
                "body", f"a {ballot} form counts {wanted}, not {other}"
            )
        listed = self.candidate_list(ballot, station)
        if listed is None:
            raise UnknownCandidate(
                f"no candidates are registered for {ballot} at {station}"
            )
        if ballot in PARTY_BALLOTS:
            for pid, votes in body["parties"].items():
                if pid not in self.parties:
                    raise UnknownCandidate(f"party {pid} is not registered")
                for cid in votes["candidates"]:
                    if listed.get(cid) != pid:
                        raise UnknownCandidate(
                            f"candidate {cid} does not stand for party {pid} on "
                            f"{ballot} at {station}"
                        )
        else:
            for cid in body["votes"]:
                if cid not in listed:
                    raise UnknownCandidate(
                        f"candidate {cid} does not stand on {ballot} at {station}"
                    )

    def _check_recap(self, record: Record) -> None:
        ballot, region, body = ballot_of(record.subject), _region(record), record.body
        if not self.has_region(region):
            raise OutsideRegistry(f"region {region} is not in the registry in force")
        _check_correction(body, record, stages=False)
        for code in body["children"]:
            if child_subject(ballot, region, code) is None:
                raise SchemaViolation(
                    f"body.children key {code!r}",
                    f"not a direct child of {region or 'the nation'}",
                )
            inside = (
                self.has_station(code) if len(code) == 13 else self.has_region(code)
            )
            if not inside:
                raise OutsideRegistry(f"child {code} is not in the registry in force")
        if ballot in PARTY_BALLOTS and "votes" in body["totals"]:
            raise SchemaViolation("body.totals", f"a {ballot} recap counts parties")
        if ballot not in PARTY_BALLOTS and "parties" in body["totals"]:
            raise SchemaViolation("body.totals", f"a {ballot} recap counts votes")

    def _check_candidates(self, record: Record) -> None:
        ballot = ballot_of(record.subject)
        for cid, spec in record.body["candidates"].items():
            party = spec.get("party")
            if ballot in PARTY_BALLOTS and party not in self.parties:
                raise UnknownCandidate(
                    f"candidate {cid}: party {party} is not registered"
                )

    # -- applying a record ---------------------------------------------------------

    def apply(self, record: Record) -> list[tuple[str, Any, Any]]:
        """Apply an accepted record; return what it replaced (for ``undo``)."""
        if record.schema not in STATE_SCHEMAS:
            return []
        if record.schema == REGIONS.name:
            self._regions_changed += 1
            code = _region(record)
            undo: list[tuple[str, Any, Any]] = [
                ("district", code, self.districts.get(code))
            ]
            old = self.districts.get(code, {})
            new = {
                village: frozenset(spec["tps"])
                for village, spec in record.body["villages"].items()
            }
            body = record.body
            covers = {body["province"]["code"], body["regency"]["code"], code}
            self._count(old, covers if old else set(), -1)
            self._count(new, covers if new else set(), +1)
            undo.append(("prefixes", None, (old, new, covers)))
            if new:
                self.districts[code] = new
            else:
                self.districts.pop(code, None)
            return undo
        if record.schema == CANDIDATES.name:
            key = (ballot_of(record.subject), _region(record))
            previous = self.candidates.get(key)
            self._lists_changed += 1
            self.candidates[key] = {
                cid: spec.get("party", "")
                for cid, spec in record.body["candidates"].items()
            }
            return [("candidates", key, previous)]
        previous_parties = self.parties
        self.parties = frozenset(record.body["parties"])
        return [("parties", None, previous_parties)]

    def _count(
        self, villages: Mapping[str, frozenset[int]], covers: set[str], step: int
    ) -> None:
        for code in [*covers, *villages]:
            count = self.prefixes.get(code, 0) + step
            if count > 0:
                self.prefixes[code] = count
            else:
                self.prefixes.pop(code, None)

    def undo(self, changes: list[tuple[str, Any, Any]]) -> None:
        """Reverse what ``apply`` returned (last applied, first undone)."""
        for kind, key, previous in reversed(changes):
            if kind == "district":
                self._regions_changed += 1
                if previous is None:
                    self.districts.pop(key, None)
                else:
                    self.districts[key] = previous
            elif kind == "prefixes":
                old, new, covers = previous
                self._count(new, covers if new else set(), -1)
                self._count(old, covers if old else set(), +1)
            elif kind == "candidates":
                self._lists_changed += 1
                if previous is None:
                    self.candidates.pop(key, None)
                else:
                    self.candidates[key] = previous
            else:
                self.parties = previous


def _check_correction(
    body: Mapping[str, Any], record: Record, *, stages: bool = True
) -> None:
    correcting = (
        body.get("stage") in CORRECTION_STAGES if stages else record.revision > 0
    )
    if correcting and "correction" not in body:
        raise SchemaViolation(
            "body.correction",
            "a correction needs its reason code and reference (minutes, order)",
        )
    if correcting and record.revision == 0:
        raise SchemaViolation(
            "body.stage", "a correction supersedes a logged revision: not revision 0"
        )
    if stages and not correcting and "correction" in body:
        raise SchemaViolation(
            "body.correction", f"a {body.get('stage')} corrects nothing"
        )


def _check_regions(record: Record) -> None:
    body, code = record.body, _region(record)
    if not code.startswith(body["regency"]["code"]) or not body["regency"][
        "code"
    ].startswith(body["province"]["code"]):
        raise SchemaViolation(
            "body", f"district {code} is not inside its regency and province"
        )
    for village in body["villages"]:
        if not village.startswith(code):
            raise SchemaViolation(
                f"body.villages key {village!r}", f"not a village of district {code}"
            )
