"""Election forensics: documented statistics over polling-station figures.

Pure functions and small accumulators over tally bodies, so that an observer
computes every figure from the log with the verifier alone. Each statistic
*flags* a pattern for a person to look at; none is evidence of fraud by
itself, and the report says so beside every figure.

* **Last digits** (``LastDigits``): the last digit of vote counts of ten or
  more is close to uniform in clean counts; a chi-square test of the ten
  digits' frequencies (9 degrees of freedom) gives a p-value, flagged below
  ``ALPHA``. Beber, B. and Scacco, A. (2012), "What the Numbers Say: A
  Digit-Based Test for Election Fraud", Political Analysis 20(2), 211-234.
  Fewer than ``MIN_TESTED`` digits are not tested (the chi-square
  approximation wants at least 5 expected in each cell).
* **The election fingerprint** (``Fingerprint``): the two-dimensional
  histogram of turnout against the leading candidate's (or party's) share of
  valid votes, one point per polling station. Clean elections give one
  roughly round cluster; ballot stuffing smears it towards, and piles it up
  at, 100% turnout and 100% share. Klimek, P., Yegorov, Y., Hanel, R. and
  Thurner, S. (2012), "Statistical detection of systematic election
  irregularities", PNAS 109(41), 16469-16473. The share of stations in the
  top corner (both at least ``CORNER``) is the figure, flagged above
  ``CORNER_SHARE``. Where a community votes as one by custom (the *noken*
  system in parts of Papua), the corner is full by law, not by fraud.
* **Extremes** (``extremes``): a station where everyone registered voted, or
  where one candidate got every valid vote.

Turnout is the station's voters (``voters.total.total``) over those entitled
to vote there: the permanent list (``registered.dpt.total``) plus the voters
added on the day (``voters.dptb.total``, ``voters.dpk.total``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ALPHA",
    "CORNER",
    "CORNER_SHARE",
    "MIN_COUNT",
    "MIN_TESTED",
    "Fingerprint",
    "LastDigits",
    "StationFigures",
    "chi_square_sf",
    "extremes",
    "station_figures",
]

ALPHA = 0.001  # a last-digit p-value below this is flagged
MIN_COUNT = 10  # counts below it have no meaningful last digit
# Fewer digits than this are not tested: the chi-square approximation wants an
# expected count of at least 5 in each of the ten cells.
MIN_TESTED = 50
CORNER = 0.95  # turnout and share at or above it: the fingerprint's top corner
CORNER_SHARE = 0.01  # a region with more of its stations in the corner is flagged
BINS = 20  # the fingerprint's bins per axis (5% each)


# -- the chi-square distribution's upper tail ------------------------------------


def _lower_series(a: float, x: float) -> float:
    """P(a, x), the regularized lower incomplete gamma, by its series (x < a + 1)."""
    term = total = 1.0 / a
    n = a
    for _ in range(10_000):
        n += 1.0
        term *= x / n
        total += term
        if abs(term) < abs(total) * 1e-16:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _upper_fraction(a: float, x: float) -> float:
    """Q(a, x), the regularized upper incomplete gamma (x >= a + 1).

    Its continued fraction, evaluated with the modified Lentz method.
    """
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        step = d * c
        h *= step
        if abs(step - 1.0) < 1e-16:
            break
    return h * math.exp(-x + a * math.log(x) - math.lgamma(a))


def chi_square_sf(statistic: float, df: int) -> float:
    """P(X >= ``statistic``) for X chi-square with ``df`` degrees of freedom.

    Raises:
        ValueError: ``df`` below 1 or a negative statistic.
    """
    if df < 1 or statistic < 0 or math.isnan(statistic):
        raise ValueError(f"chi-square: df {df}, statistic {statistic}")
    a, x = df / 2.0, statistic / 2.0
    if x == 0:  # zero, or too small to halve
        return 1.0
    if x < a + 1.0:
        return max(0.0, min(1.0, 1.0 - _lower_series(a, x)))
    return max(0.0, min(1.0, _upper_fraction(a, x)))


# -- a station's figures -----------------------------------------------------------


@dataclass(frozen=True)
class StationFigures:
    """What the statistics read of one tally: entitled, voted, valid, counts."""

    entitled: int
    voted: int
    valid: int
    counts: tuple[int, ...]  # every candidate's (or party's) votes
    leader: int  # the largest candidate's (or party's, with its candidates) votes

    @property
    def turnout(self) -> float | None:
        """Voters over those entitled (None with no one entitled)."""
        return self.voted / self.entitled if self.entitled > 0 else None

    @property
    def share(self) -> float | None:
        """The leader's share of valid votes (None with no valid vote)."""
        return self.leader / self.valid if self.valid > 0 else None


def _total(body: Mapping[str, Any], *path: str) -> int:
    value: Any = body
    for key in path:
        if not isinstance(value, Mapping):
            return 0
        value = value.get(key)
    return value if type(value) is int else 0


def station_figures(body: Mapping[str, Any]) -> StationFigures | None:
    """A tally body's figures, or None if it carries no votes.

    Candidate ballots: each candidate's votes. Party ballots: each party's own
    votes and each of its candidates' (the counts), the leader being the party
    with the most votes in all.
    """
    entitled = (
        _total(body, "registered", "dpt", "total")
        + _total(body, "voters", "dptb", "total")
        + _total(body, "voters", "dpk", "total")
    )
    voted = _total(body, "voters", "total", "total")
    valid = _total(body, "valid")
    counts: list[int] = []
    leader = 0
    votes = body.get("votes")
    parties = body.get("parties")
    if isinstance(votes, Mapping):
        counts = [v for v in votes.values() if type(v) is int]
        leader = max(counts, default=0)
    elif isinstance(parties, Mapping):
        for party in parties.values():
            if not isinstance(party, Mapping):
                continue
            own = party.get("party")
            mine = [own] if type(own) is int else []
            candidates = party.get("candidates")
            if isinstance(candidates, Mapping):
                mine += [v for v in candidates.values() if type(v) is int]
            counts += mine
            leader = max(leader, sum(mine))
    else:
        return None
    return StationFigures(entitled, voted, valid, tuple(counts), leader)


def extremes(figures: StationFigures) -> list[str]:
    """The station's extremes, as flags.

    ``turnout-100``: everyone entitled voted (or more); ``one-candidate-100``:
    one candidate (or party) got every valid vote, with more than one on the
    ballot. A form whose counts do not add up to its valid votes (a misread
    count, flagged by the arithmetic checks) is no one-candidate station.
    """
    out = []
    if figures.entitled > 0 and figures.voted >= figures.entitled:
        out.append("turnout-100")
    if (
        figures.valid > 0
        and len(figures.counts) > 1
        and figures.leader == figures.valid == sum(figures.counts)
    ):
        out.append("one-candidate-100")
    return out


# -- accumulators ---------------------------------------------------------------


@dataclass
class LastDigits:
    """The last digits of vote counts of at least ``MIN_COUNT``, and their test."""

    observed: list[int] = field(default_factory=lambda: [0] * 10)

    def add(self, counts: Iterable[int], sign: int = 1) -> None:
        """Count ``counts`` in (``sign`` -1: take a superseded revision out)."""
        for count in counts:
            if count >= MIN_COUNT:
                self.observed[count % 10] += sign

    def test(self) -> dict[str, Any]:
        """n, the digits' counts, the chi-square statistic, its p-value, flagged."""
        n = sum(self.observed)
        if n < MIN_TESTED:  # too few for the test: reported, never flagged
            return {
                "n": n,
                "observed": list(self.observed),
                "chi_square": None,
                "df": 9,
                "p_value": None,
                "flagged": False,
            }
        expected = n / 10
        statistic = sum((o - expected) ** 2 / expected for o in self.observed)
        p = chi_square_sf(statistic, 9)
        return {
            "n": n,
            "observed": list(self.observed),
            "chi_square": round(statistic, 6),
            "df": 9,
            "p_value": p,
            "flagged": p < ALPHA,
        }


@dataclass
class Fingerprint:
    """Stations by (turnout, leader's share), ``BINS`` x ``BINS``.

    The last bin of each axis holds 100% (and, for turnout, anything above).
    """

    cells: list[list[int]] = field(
        default_factory=lambda: [[0] * BINS for _ in range(BINS)]
    )
    stations: int = 0
    corner: int = 0

    def add(self, figures: StationFigures, sign: int = 1) -> None:
        """Count one station in (``sign`` -1: take it out again)."""
        turnout, share = figures.turnout, figures.share
        if turnout is None or share is None:
            return
        row = min(BINS - 1, int(turnout * BINS))
        column = min(BINS - 1, int(share * BINS))
        self.cells[row][column] += sign
        self.stations += sign
        if turnout >= CORNER and share >= CORNER:
            self.corner += sign

    def to_json(self) -> dict[str, Any]:
        """The histogram (rows: turnout, columns: share) and the corner's share."""
        return {
            "bins": BINS,
            "cells": [list(row) for row in self.cells],
            "stations": self.stations,
            "corner": self.corner,
            "corner_share": self.corner / self.stations if self.stations else 0.0,
            "flagged": self.stations > 0 and self.corner / self.stations > CORNER_SHARE,
        }
