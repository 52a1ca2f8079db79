r"""A verifiable audit sample: polling stations drawn from a seed nobody knew.

An auditor logs a sampling plan (``audit.plan/v1``) before anyone can
know the seed: the plan names a future tree size, ``seed_size``, and the root
of the log's tree of that size seeds the draw. Once a witnessed checkpoint at
or past that size exists, the root is fixed for everyone, and anyone with the
log recomputes the same sample (``saksi-verify sample``); a plan logged at or
after its seed size is refused, because its seed was known when it was signed.

The plan fixes everything else in advance:

* the **population**: the plan's region (its subject), one ballot, and the unit:
  ``station`` (every polling station in the region registry as of the seed) or
  ``form`` (every station with a count form of that ballot logged before the
  seed, named by the form's subject);
* the **strata**: units grouped by the first ``strata`` digits of the station
  code (2 province, 4 regency, 6 district, 10 village; the region's own length
  is one stratum);
* the **size**, by a method:

  - ``fixed``: ``size`` units in all;
  - ``aslam-popa-rivest-2008``: enough stations that, if enough of them were
    altered to change the presidential outcome in the region, the sample holds
    at least one of them with probability at least 1 - ``risk_limit``
    (Aslam, Popa and Rivest, "On Auditing Elections When Precincts Have
    Different Sizes", USENIX/ACCURATE EVT 2008). An alteration no recount
    would notice moves at most ``max_shift`` of a station's valid votes from
    the winner to the runner-up, so a station can close at most
    2 x ``max_shift`` x its valid votes of the margin; ``b`` is the fewest
    stations (largest first) that could close the margin as logged at the seed.
    ``n`` is the smallest with (1 - n/N)^b <= risk_limit, which bounds the
    chance of missing all ``b`` for sampling without replacement in every
    stratum whose sampling fraction is at least n/N (each gets
    ceil(n N_h / N)). The power is taken by repeated squaring in IEEE-754
    double, so every machine gets the same ``n``. This sizes a detection
    sample for a station recount, not a full risk-limiting audit with
    escalation: a discrepancy found calls for a wider count.

  and ``min_per_stratum`` raises every stratum to at least that many.

The draw: seed = SHA-256("saksi-audit-sample/v1\n" || root || plan payload
hash); each unit's rank is SHA-256(seed || unit), and each stratum takes its
units of smallest rank: a uniform sample without replacement for a hash that
behaves as a random function, that anyone recomputes with the standard library.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from verifier.body_schema import Enum, Int, Obj, Schema, SchemaViolation, Str, check
from verifier.election import BALLOTS, REGIONS, TALLY, tally_subject
from verifier.errors import VerificationError
from verifier.record import Record

__all__ = [
    "APR",
    "FIXED",
    "FORMAT",
    "METHODS",
    "PLAN",
    "UNITS",
    "Plan",
    "PlanRefused",
    "Population",
    "Sample",
    "admit_plan",
    "check_plan_body",
    "compare_samples",
    "detection_size",
    "draw",
    "parse_plan",
    "stations_to_change",
]

FORMAT = "saksi-audit-sample/v1"
UNITS = ("station", "form")
FIXED, APR = "fixed", "aslam-popa-rivest-2008"
METHODS = (FIXED, APR)
STRATA_LENGTHS = (0, 2, 4, 6, 10)
_SEED_LABEL = b"saksi-audit-sample/v1\n"
_FRACTION = r"0\.[0-9]{1,6}|1"
# The presidential ballot counts candidates for one office: a margin between
# the first two is what an alteration must close. Party ballots fill seats.
_MARGIN_BALLOTS = frozenset({"ppwp"})

PLAN = Schema(
    name="audit.plan/v1",
    subject=r"audits/(?:national|(?P<region>[0-9]{2}|[0-9]{4}|[0-9]{6}))"
    r"/[a-z0-9][a-z0-9-]{0,62}",
    description="an audit sampling plan: population, strata, size method, and the "
    "future tree size whose root seeds the draw",
    max_age_days=30,
    body=Obj(
        {
            "purpose": Str(500, 1),
            "ballot": Enum(BALLOTS),
            "unit": Enum(UNITS),
            "strata": Int(0, 10),
            "method": Enum(METHODS),
            "size": Int(1, 10_000_000),
            "risk_limit": Str(8, 1, _FRACTION),
            "max_shift": Str(8, 1, _FRACTION),
            "min_per_stratum": Int(0, 100_000),
            "seed_size": Int(1),
        },
        optional=frozenset({"size", "risk_limit", "max_shift", "min_per_stratum"}),
    ),
)


class PlanRefused(VerificationError):
    """The plan cannot seed a sample (the message says why)."""

    cause = "sample-plan-refused"


@dataclass(frozen=True)
class Plan:
    """A sampling plan as logged: its place, its record, and what it fixes."""

    index: int
    subject: str
    payload_hash: str
    region: str  # "" national
    ballot: str
    unit: str
    strata: int
    method: str
    size: int  # fixed: the size asked for; else 0
    risk_limit: Fraction  # the margin method's; else 0
    max_shift: Fraction
    min_per_stratum: int
    seed_size: int
    body: Mapping[str, Any]


def check_plan_body(region: str, body: Mapping[str, Any]) -> None:
    """Refuse a plan body (schema-valid) whose fields contradict each other.

    Raises:
        PlanRefused: strata shorter than the region, the method's fields
            missing or mixed with the other's, a fraction out of range, or the
            margin method on a ballot without one margin.
    """
    method = body["method"]
    strata = body["strata"]
    if strata not in STRATA_LENGTHS or strata < len(region):
        raise PlanRefused(
            f"strata {strata}: a stratum is a region code prefix of "
            f"{', '.join(map(str, STRATA_LENGTHS))} digits, no shorter than the "
            f"plan's region ({len(region)})"
        )
    fields = {"size"} if method == FIXED else {"risk_limit", "max_shift"}
    other = {"risk_limit", "max_shift"} if method == FIXED else {"size"}
    if not fields <= set(body) or other & set(body):
        raise PlanRefused(
            f"method {method} takes {' and '.join(sorted(fields))} "
            f"(not {' or '.join(sorted(other))})"
        )
    if "risk_limit" in body and not 0 < Fraction(body["risk_limit"]) < 1:
        raise PlanRefused("risk_limit must be above 0 and below 1")
    if "max_shift" in body and not 0 < Fraction(body["max_shift"]) <= 1:
        raise PlanRefused("max_shift must be above 0 and at most 1")
    if method == APR and body["ballot"] not in _MARGIN_BALLOTS:
        raise PlanRefused(
            f"method {APR} sizes a sample by the presidential margin (ppwp); "
            f"use {FIXED} for {body['ballot']}"
        )


def admit_plan(record: Record, index: int) -> None:
    """Refuse a plan the log must not hold at entry ``index`` (writer and audit).

    A plan whose fields contradict each other, or whose seed is not beyond its
    own place (a seed known when the plan is logged, so one that could be
    chosen), could never seed a sample: the writer refuses it, and the audit
    finds it if a log holds one. ``parse_plan`` refuses it again at the draw.

    Raises:
        SchemaViolation: what ``check_plan_body`` refuses, or a ``seed_size``
            at or before ``index``.
    """
    body = record.body
    try:
        check_plan_body(PLAN.region_of(record.subject) or "", body)
    except PlanRefused as e:
        raise SchemaViolation("body", str(e)) from e
    if body["seed_size"] <= index:
        raise SchemaViolation(
            "body.seed_size",
            f"{body['seed_size']:,} is not beyond this plan's place in the log "
            f"(entry {index:,}): that tree's root is known already, so it cannot "
            "seed a sample; name a tree size the log has not reached",
        )


def parse_plan(index: int, record: Record) -> Plan:
    """The plan ``record`` logged at ``index``.

    Raises:
        PlanRefused: not a plan, a plan whose fields contradict each other, or
            one logged at or after its seed size (its seed was known).
    """
    if record.schema != PLAN.name:
        raise PlanRefused(f"entry {index} is a {record.schema} record, not a plan")
    body = record.body
    try:
        check(PLAN, body, record.subject)
    except SchemaViolation as e:
        raise PlanRefused(f"entry {index} is not a well-formed plan: {e}") from e
    region = PLAN.region_of(record.subject) or ""
    check_plan_body(region, body)
    risk = Fraction(body.get("risk_limit", 0))
    shift = Fraction(body.get("max_shift", 0))
    seed_size = body["seed_size"]
    if index >= seed_size:
        raise PlanRefused(
            f"the plan was logged at entry {index:,}, not before its seed (the "
            f"tree of {seed_size:,} entries): its seed was known when it was "
            "logged, so it cannot seed a sample"
        )
    return Plan(
        index=index,
        subject=record.subject,
        payload_hash=record.payload_hash,
        region=region,
        ballot=body["ballot"],
        unit=body["unit"],
        strata=body["strata"],
        method=body["method"],
        size=body.get("size", 0),
        risk_limit=risk,
        max_shift=shift,
        min_per_stratum=body.get("min_per_stratum", 0),
        seed_size=seed_size,
        body=body,
    )


@dataclass
class Population:
    """The units a plan draws from, read from the log's records in order.

    Only entries before the seed size may be fed: the region registry's
    districts inside the plan's region, and the latest count form of the
    plan's ballot at each station (its valid votes and votes by candidate).
    """

    region: str
    ballot: str
    districts: dict[str, frozenset[str]] = field(default_factory=dict)
    forms: dict[str, tuple[int, tuple[tuple[str, int], ...]]] = field(
        default_factory=dict
    )
    plans: dict[str, list[int]] = field(default_factory=dict)

    def feed(self, index: int, record: Record) -> None:
        """Take in one record (of any schema) logged at ``index``.

        The records are read before the audit has judged them: one that does
        not match its schema is left out here, and the audit, failing it,
        stops the draw.
        """
        if record.schema == TALLY.name:
            prefix = f"results/{self.ballot}/{self.region}"
            station = record.subject[len(prefix) - len(self.region) :]
            if record.subject.startswith(prefix) and _fits(TALLY, record):
                votes = record.body.get("votes") or {}
                self.forms[station] = (
                    record.body["valid"],
                    tuple(sorted(votes.items())),
                )
        elif record.schema == REGIONS.name:
            district = record.subject.removeprefix("regions/")
            if district.startswith(self.region) and _fits(REGIONS, record):
                self.districts[district] = frozenset(
                    f"{village}{number:03d}"
                    for village, spec in record.body["villages"].items()
                    for number in spec["tps"]
                )
        elif record.schema == PLAN.name:
            self.plans.setdefault(record.subject, []).append(index)

    def units(self, unit: str) -> dict[str, str]:
        """Unit name -> its station code, for ``station`` or ``form`` units."""
        if unit == "form":
            return {tally_subject(self.ballot, s): s for s in self.forms}
        return {
            station: station
            for stations in self.districts.values()
            for station in stations
        }


def _fits(schema: Schema, record: Record) -> bool:
    """Whether ``record`` matches ``schema`` (subject and body)."""
    try:
        check(schema, record.body, record.subject)
    except SchemaViolation:
        return False
    return True


def _power(base: float, exponent: int) -> float:
    """``base ** exponent`` by repeated squaring.

    IEEE-754 products only, so the same on every machine (a libm ``pow`` need
    not be).
    """
    result = 1.0
    while exponent:
        if exponent & 1:
            result *= base
        base *= base
        exponent >>= 1
    return result


def detection_size(population: int, altered: int, risk_limit: Fraction) -> int:
    """The smallest n with (1 - n/N)^b <= risk_limit.

    A uniform sample of n of N units misses all of b altered ones with at most
    that probability.
    """
    alpha = float(risk_limit)
    low, high = 0, population
    while low < high:
        middle = (low + high) // 2
        if _power(1.0 - middle / population, altered) <= alpha:
            high = middle
        else:
            low = middle + 1
    return low


def stations_to_change(
    valid: Iterable[int], margin: int, max_shift: Fraction
) -> int | None:
    """The fewest stations whose alteration could close ``margin`` (APR's b).

    A station with v valid votes closes at most 2 * max_shift * v of it; the
    largest go first. None: not even every station together could.
    """
    need = Fraction(margin) / (2 * max_shift)
    total, count = 0, 0
    for votes in sorted(valid, reverse=True):
        if total >= need:
            break
        total += votes
        count += 1
    return count if total >= need else None


@dataclass(frozen=True)
class Sample:
    """A drawn sample: everything that anyone recomputes from the same log."""

    plan: Plan
    root: bytes
    seed: bytes
    size: dict[str, Any]
    strata: list[dict[str, Any]]
    units: list[dict[str, str]]
    population: int
    with_forms: int
    other_plans: list[int]

    def to_json(self) -> dict[str, Any]:
        """The sample file's object (without the checkpoint it was read at)."""
        return {
            "format": FORMAT,
            "plan": {
                "index": self.plan.index,
                "subject": self.plan.subject,
                "payload_sha256": self.plan.payload_hash,
                "body": dict(self.plan.body),
                "other_revisions": self.other_plans,
            },
            "seed": {
                "tree_size": self.plan.seed_size,
                "root": self.root.hex(),
                "seed": self.seed.hex(),
            },
            "population": {"units": self.population, "with_forms": self.with_forms},
            "size": self.size,
            "strata": self.strata,
            "units": self.units,
        }


def _margin(population: Population, stations: Iterable[str]) -> dict[str, Any]:
    totals: dict[str, int] = {}
    for station in stations:
        form = population.forms.get(station)
        for candidate, votes in () if form is None else form[1]:
            totals[candidate] = totals.get(candidate, 0) + votes
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    if len(ranked) < 2:
        raise PlanRefused(
            "the population's count forms name fewer than two candidates: there "
            "is no margin to size the sample by"
        )
    (winner, first), (runner_up, second) = ranked[0], ranked[1]
    return {"winner": winner, "runner_up": runner_up, "votes": first - second}


def _size(plan: Plan, population: Population, stations: list[str]) -> dict[str, Any]:
    """How many units the plan's method asks for, with the figures it used."""
    units = len(stations)
    if plan.method == FIXED:
        return {"method": FIXED, "n": min(plan.size, units)}
    margin = _margin(population, stations)
    valid = (population.forms[s][0] for s in stations if s in population.forms)
    if margin["votes"] == 0:
        altered: int | None = 0
        n = units  # a tie: any one alteration changes the outcome; count all
    else:
        altered = stations_to_change(valid, margin["votes"], plan.max_shift)
        n = 0 if altered is None else detection_size(units, altered, plan.risk_limit)
    return {
        "method": APR,
        "risk_limit": plan.body["risk_limit"],
        "max_shift": plan.body["max_shift"],
        "margin": margin,
        "stations_to_change_outcome": altered,
        "n": n,
    }


def draw(plan: Plan, root: bytes, population: Population) -> Sample:
    """The sample ``plan`` draws from ``population`` with the seed tree's ``root``.

    Raises:
        PlanRefused: the population is empty, or has no margin to size by.
    """
    named = population.units(plan.unit)
    if not named:
        raise PlanRefused(
            f"the plan's population is empty: no {plan.unit} of {plan.ballot} in "
            f"region {plan.region or 'national'} before entry {plan.seed_size:,}"
        )
    size = _size(plan, population, sorted(named.values()))
    seed = hashlib.sha256(
        _SEED_LABEL + root + bytes.fromhex(plan.payload_hash)
    ).digest()
    strata: dict[str, list[str]] = {}
    for name, station in named.items():
        strata.setdefault(station[: plan.strata], []).append(name)
    total, n = len(named), size["n"]
    rows, units = [], []
    for code in sorted(strata):
        members = strata[code]
        share = -(-n * len(members) // total)  # ceil(n N_h / N)
        take = min(len(members), max(share, plan.min_per_stratum))
        ranked = heapq.nsmallest(
            take,
            ((hashlib.sha256(seed + name.encode()).digest(), name) for name in members),
        )
        rows.append({"stratum": code, "units": len(members), "drawn": take})
        units += [
            {"unit": name, "stratum": code, "rank": rank.hex()} for rank, name in ranked
        ]
    size["drawn"] = len(units)
    return Sample(
        plan=plan,
        root=root,
        seed=seed,
        size=size,
        strata=rows,
        units=units,
        population=total,
        with_forms=sum(1 for s in named.values() if s in population.forms),
        other_plans=[
            i for i in population.plans.get(plan.subject, []) if i != plan.index
        ],
    )


_COMPARED = ("format", "plan", "population", "size", "strata", "units")


def compare_samples(claimed: Any, recomputed: Mapping[str, Any]) -> list[str]:  # noqa: ANN401
    """What differs between a sample file and the recomputed sample (empty: none).

    The checkpoint each was read at may differ; the seed tree, the plan and
    every drawn unit may not.
    """
    if not isinstance(claimed, dict):
        return ["the sample file is not a JSON object"]
    differences = []
    for key in _COMPARED:
        if claimed.get(key) != recomputed[key]:
            differences.append(_difference(key, claimed.get(key), recomputed[key]))
    seed = claimed.get("seed")
    mine = recomputed["seed"]
    if not isinstance(seed, dict) or any(
        seed.get(k) != mine[k] for k in ("tree_size", "root", "seed")
    ):
        differences.append("seed: the file names another seed tree or seed")
    return differences


def _difference(key: str, claimed: Any, mine: Any) -> str:  # noqa: ANN401
    if key == "units" and isinstance(claimed, list):
        names = {
            u["unit"]
            for u in claimed
            if isinstance(u, dict) and isinstance(u.get("unit"), str)
        }
        drawn = {u["unit"] for u in mine}
        extra, missing = sorted(map(str, names - drawn)), sorted(drawn - names)
        if extra or missing:
            return (
                f"units: the file has {len(extra)} the plan did not draw "
                f"({', '.join(extra[:3])}) and lacks {len(missing)} it drew "
                f"({', '.join(missing[:3])})"
            )
        return "units: the same units in another order or with other ranks"
    return f"{key}: the file says {_short(claimed)}, the log gives {_short(mine)}"


def _short(value: Any) -> str:  # noqa: ANN401
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
