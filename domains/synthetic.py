"""A synthetic national election on the real region codes (demos, tests, benchmarks).

Every polling station of the commission's table (or those under a prefix) gets a
form for each ballot, with realistic numbers: 150 to 300 registered voters, a
turnout around 80%, 1 to 4% invalid ballots, votes spread over the candidates
with a regional lean. Parties and candidate lists are synthetic (18 parties;
DPR and DPD lists per province, provincial council lists per regency, regency
council lists per district). A configurable share of forms breaks one arithmetic
rule (as real forms do), and of those some are later corrected by their district
authority, and a few recounted. Everything is deterministic for a seed: the same
station gets the same form in every run.
"""

from __future__ import annotations

import functools
import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from verifier.election import BALLOTS, PARTY_BALLOTS, tally_subject

__all__ = [
    "ElectionSpec",
    "candidate_lists",
    "correction_of",
    "parties",
    "subjects",
    "tally",
]

PPWP = {
    "100025": {"number": 1, "name": "Pasangan calon 1"},
    "100026": {"number": 2, "name": "Pasangan calon 2"},
    "100027": {"number": 3, "name": "Pasangan calon 3"},
}
PARTY_COUNT = 18
# Where each ballot's candidate list is registered: the region prefix length.
LIST_LEVEL = {"ppwp": 0, "pdpd": 2, "pdpr": 2, "pdprdp": 4, "pdprdk": 6}
PER_PARTY = {"pdpr": 8, "pdprdp": 6, "pdprdk": 5}
MISTAKES = ("votes-sum", "valid-invalid-total", "total-voters", "male-female")


@dataclass(frozen=True, slots=True)
class ElectionSpec:
    """What to generate.

    Attributes:
        seed: everything derives from it and the station code.
        error_share: forms that break one arithmetic rule.
        correction_share: of the broken forms, those a district corrects.
        recount_share: forms recounted (PSU) with changed numbers.
        ballots: which ballots each station has.
        stuffed: region prefixes where ``planted_share`` of the stations are
            stuffed: everyone entitled votes, every valid vote to one
            candidate (or party), the form's arithmetic intact (a planted
            anomaly the election fingerprint should show).
        made_up: region prefixes where ``planted_share`` of the forms have
            counts made up by hand: every count a multiple of five, the
            arithmetic intact (a planted anomaly the last-digit test should
            show).
        planted_share: the share of stations (forms) planted there.
    """

    seed: int = 2024
    error_share: float = 0.2
    correction_share: float = 0.5
    recount_share: float = 0.002
    ballots: tuple[str, ...] = BALLOTS
    stuffed: tuple[str, ...] = ()
    made_up: tuple[str, ...] = ()
    planted_share: float = 0.5

    def rng(self, *parts: str) -> random.Random:
        """A generator seeded by the spec's seed and ``parts``."""
        digest = hashlib.sha256("|".join((str(self.seed), *parts)).encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311


def parties() -> dict[str, Any]:
    """The ``parties.change/v1`` body: 18 parties."""
    return {
        "parties": {
            str(n): {"number": n, "name": f"Partai {n}"}
            for n in range(1, PARTY_COUNT + 1)
        }
    }


def _list_region(ballot: str, station: str) -> str:
    return station[: LIST_LEVEL[ballot]]


def candidate_lists(
    spec: ElectionSpec, stations: list[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(subject, ``candidates.change/v1`` body) for every list the stations need."""
    for ballot in spec.ballots:
        regions = sorted({_list_region(ballot, s) for s in stations})
        for region in regions:
            subject = f"candidates/{ballot}/{region or 'national'}"
            yield subject, {"candidates": _candidates(ballot, region)}


@functools.lru_cache(maxsize=4096)
def _by_party(ballot: str, region: str) -> tuple[tuple[str, ...], ...]:
    """The candidate IDs of each party (1..18) on ``ballot``'s list for ``region``."""
    listed = _candidates(ballot, region)
    return tuple(
        tuple(cid for cid, c in listed.items() if c["party"] == str(party))
        for party in range(1, PARTY_COUNT + 1)
    )


@functools.lru_cache(maxsize=4096)
def _candidates(ballot: str, region: str) -> dict[str, Any]:
    """The list of ``ballot`` in ``region`` (cached: callers must not change it)."""
    if ballot == "ppwp":
        return PPWP
    if ballot == "pdpd":
        return {
            f"4{region}{n:03d}": {"number": n, "name": f"Calon DPD {region}-{n}"}
            for n in range(1, 13)
        }
    prefix = {"pdpr": "5", "pdprdp": "6", "pdprdk": "7"}[ballot]
    return {
        f"{prefix}{region}{party:02d}{n:02d}": {
            "number": n,
            "name": f"Calon {ballot} {region} P{party}-{n}",
            "party": str(party),
        }
        for party in range(1, PARTY_COUNT + 1)
        for n in range(1, PER_PARTY[ballot] + 1)
    }


def _split(rng: random.Random, total: int, weights: list[float]) -> list[int]:
    """``total`` split by ``weights`` (integers that add up to ``total``)."""
    whole = sum(weights)
    parts = [int(total * w / whole) for w in weights]
    for _ in range(total - sum(parts)):
        parts[rng.randrange(len(parts))] += 1
    return parts


def _lpj(rng: random.Random, total: int) -> dict[str, int]:
    male = rng.randint(int(total * 0.45), int(total * 0.55)) if total else 0
    return {"male": male, "female": total - male, "total": total}


def tally(spec: ElectionSpec, ballot: str, station: str) -> dict[str, Any]:
    """The machine-reading form of ``ballot`` at ``station`` (as a tally body)."""
    rng = spec.rng("tally", ballot, station)
    base = spec.rng("station", station)  # the same voters on every ballot
    registered = base.randint(150, 300)
    dpt_voters = int(registered * base.uniform(0.70, 0.90))
    dptb, dpk = base.randint(0, 4), base.randint(0, 3)
    stuffed = _planted(spec, spec.stuffed, "stuffed", station)
    if stuffed:  # everyone on the list "voted"; no one was added on the day
        dpt_voters, dptb, dpk = registered, 0, 0
    voted = dpt_voters + dptb + dpk
    invalid = int(voted * rng.uniform(0.01, 0.04))
    valid = voted - invalid
    lean = spec.rng("lean", station[:4])  # a regency's political lean
    body: dict[str, Any] = {
        "stage": "machine_reading",
        "valid": valid,
        "invalid": invalid,
        "total": voted,
        "registered": {"dpt": _lpj(base, registered)},
        "voters": {
            "dpt": _lpj(base, dpt_voters),
            "dptb": _lpj(base, dptb),
            "dpk": _lpj(base, dpk),
        },
    }
    voters = body["voters"]
    voters["total"] = {
        k: voters["dpt"][k] + voters["dptb"][k] + voters["dpk"][k]
        for k in ("male", "female", "total")
    }
    region = _list_region(ballot, station)
    if stuffed:
        valid, invalid = voted, 0
        body["valid"], body["invalid"] = valid, 0
    if ballot in PARTY_BALLOTS:
        weights = [lean.uniform(0.2, 3.0) * rng.uniform(0.7, 1.3) for _ in range(18)]
        per_party = _split(rng, valid, weights)
        if stuffed:  # every valid vote to the first party's own list
            per_party = [valid] + [0] * (len(per_party) - 1)
        body["parties"] = {}
        for (party, count), names in zip(
            enumerate(per_party, start=1), _by_party(ballot, region), strict=True
        ):
            shares = _split(rng, count, [1.0] + [rng.uniform(0.1, 1.5) for _ in names])
            if stuffed:
                shares = [count] + [0] * len(names)
            body["parties"][str(party)] = {
                "party": shares[0],
                "candidates": dict(zip(names, shares[1:], strict=True)),
            }
    else:
        ids = sorted(_candidates(ballot, region))
        weights = [lean.uniform(0.5, 2.0) * rng.uniform(0.8, 1.2) for _ in ids]
        counts = _split(rng, valid, weights)
        if stuffed:
            counts = [valid] + [0] * (len(counts) - 1)
        body["votes"] = dict(zip(ids, counts, strict=True))
    if _planted(spec, spec.made_up, "made-up " + ballot, station):
        _make_up(body)
    page = hashlib.sha256(f"form {ballot} {station}".encode()).hexdigest()
    body["form"] = [{"page": 1, "sha256": page}]
    body["source"] = {"system": "synthetic"}
    if rng.random() < spec.error_share:
        _break(rng, body)
    return body


def _planted(
    spec: ElectionSpec, regions: tuple[str, ...], what: str, station: str
) -> bool:
    """Is ``station`` (or its form) one of the planted ones of ``what``?"""
    if not any(station.startswith(r) for r in regions):
        return False
    return spec.rng(what, station).random() < spec.planted_share


def _make_up(body: dict[str, Any]) -> None:
    """Every count rounded down to a multiple of five; valid and invalid follow."""
    if "votes" in body:
        body["votes"] = {k: v - v % 5 for k, v in body["votes"].items()}
        valid = sum(body["votes"].values())
    else:
        valid = 0
        for party in body["parties"].values():
            party["party"] -= party["party"] % 5
            party["candidates"] = {k: v - v % 5 for k, v in party["candidates"].items()}
            valid += party["party"] + sum(party["candidates"].values())
    body["valid"], body["invalid"] = valid, body["total"] - valid


def _break(rng: random.Random, body: dict[str, Any]) -> None:
    """Break at least one arithmetic rule, as a misread or miswritten form does."""
    mistake = rng.choice(MISTAKES)
    delta = rng.choice([1, 9, 10])
    if mistake == "votes-sum":
        body["valid"] += delta  # also valid + invalid != total
    elif mistake == "valid-invalid-total":
        body["invalid"] += delta
    elif mistake == "total-voters":
        body["voters"]["total"]["total"] += delta  # and the lists, and L + P
    else:
        body["registered"]["dpt"]["male"] += delta


def correction_of(
    spec: ElectionSpec, ballot: str, station: str, body: dict[str, Any]
) -> dict[str, Any] | None:
    """The later authority correction or recount of a form, if it gets one."""
    rng = spec.rng("correction", ballot, station)
    clean = tally(ElectionSpec(spec.seed, 0.0, 0.0, 0.0, spec.ballots), ballot, station)
    if body != clean and rng.random() < spec.correction_share:
        fixed = {**clean, "stage": "authority_correction"}
        fixed["correction"] = {
            "reason_code": "arithmetic_error",
            "reference": f"Berita acara pleno PPK {station[:6]} (synthetic)",
        }
        return fixed
    if rng.random() < spec.recount_share:
        recounted = {**clean, "stage": "recount"}
        recounted["correction"] = {
            "reason_code": "recount_order",
            "reference": f"Rekomendasi Bawaslu {station[:4]} (synthetic)",
        }
        return recounted
    return None


def subjects(spec: ElectionSpec, stations: list[str]) -> Iterator[tuple[str, str, str]]:
    """(subject, ballot, station) for every form of the election, ballot-major."""
    for ballot in spec.ballots:
        for station in stations:
            yield tally_subject(ballot, station), ballot, station
