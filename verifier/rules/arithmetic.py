"""The arithmetic of a count form and of a recap: pure checks that produce flags.

A form is evidence as written: a tally that breaks a rule is logged and carries
its flags, it is never refused or silently fixed. Each flag names its check (a
stable slug scripts key on), where in the body it applies, and what was found.

Tally checks (each applies only when the form carries the numbers it needs):

* ``votes-sum``: the candidates' votes (for party ballots, each party's own votes
  plus its candidates') add up to the valid votes;
* ``valid-invalid-total``: valid + invalid = total votes;
* ``total-voters``: total votes = voters who voted (all lists);
* ``voter-lists``: voters of the DPT + DPTb + DPK lists = voters who voted;
* ``male-female``: male + female = total, in every group that has the three;
* ``dpt-voters-over-registered``: more DPT voters than registered on the DPT;
* ``voters-over-registered``: more voters than registered plus the margin for the
  additional lists (``TallyRules.margin_ratio`` of the DPT, rounded up);
* ``registered-over-limit``: more registered voters than a station may have
  (``TallyRules.max_registered``; 300 in 2024);
* ``ballot-papers``: ballot papers used = total votes, and received = used +
  unused + damaged.

Recap check: ``recap-sum``, each total equals the sum of the children's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from verifier.election import PARTY_BALLOTS

# Every check ``tally_flags`` can name (the metrics count flags by check).
TALLY_CHECKS = (
    "votes-sum",
    "valid-invalid-total",
    "total-voters",
    "voter-lists",
    "male-female",
    "registered-over-limit",
    "dpt-voters-over-registered",
    "voters-over-registered",
    "ballot-papers",
)

__all__ = [
    "TALLY_CHECKS",
    "Flag",
    "TallyRules",
    "add_totals",
    "differences",
    "fold_totals",
    "recap_flags",
    "sum_of",
    "tally_flags",
    "totals_of",
]


@dataclass(frozen=True, slots=True)
class Flag:
    """One broken rule: the check, where it applies, and what was found."""

    check: str
    where: str
    detail: str

    def to_json(self) -> dict[str, str]:
        """The flag as the API and the audit report show it."""
        return {"check": self.check, "where": self.where, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class TallyRules:
    """The configurable limits of the tally checks."""

    max_registered: int = 300
    margin_ratio: float = 0.02


def _votes_sum(body: Mapping[str, Any], ballot: str) -> int | None:
    if ballot in PARTY_BALLOTS:
        parties = body.get("parties")
        if parties is None:
            return None
        return int(
            sum(p["party"] + sum(p["candidates"].values()) for p in parties.values())
        )
    votes = body.get("votes")
    return None if votes is None else int(sum(votes.values()))


def tally_flags(
    body: Mapping[str, Any], ballot: str, rules: TallyRules | None = None
) -> list[Flag]:
    """Every arithmetic rule ``body`` (a results.tally/v1 body) breaks."""
    rules = rules or TallyRules()
    flags: list[Flag] = []
    valid, invalid, total = body["valid"], body["invalid"], body["total"]
    summed = _votes_sum(body, ballot)
    if summed is not None and summed != valid:
        flags.append(
            Flag(
                "votes-sum",
                "votes",
                f"candidate votes add up to {summed}, valid {valid}",
            )
        )
    if valid + invalid != total:
        flags.append(
            Flag(
                "valid-invalid-total",
                "total",
                f"valid {valid} + invalid {invalid} = {valid + invalid}, total {total}",
            )
        )
    voters = body.get("voters")
    registered = body.get("registered")
    groups: list[tuple[str, Mapping[str, int]]] = []
    if registered is not None:
        groups.append(("registered.dpt", registered["dpt"]))
    if voters is not None:
        groups += [
            (f"voters.{name}", voters[name]) for name in ("dpt", "dptb", "dpk", "total")
        ]
        voted = voters["total"]["total"]
        if total != voted:
            flags.append(
                Flag("total-voters", "total", f"total votes {total}, voters {voted}")
            )
        lists = sum(voters[name]["total"] for name in ("dpt", "dptb", "dpk"))
        if lists != voted:
            flags.append(
                Flag(
                    "voter-lists",
                    "voters",
                    f"DPT + DPTb + DPK voters = {lists}, all voters {voted}",
                )
            )
    for where, group in groups:
        if group["male"] + group["female"] != group["total"]:
            flags.append(
                Flag(
                    "male-female",
                    where,
                    f"male {group['male']} + female {group['female']} = "
                    f"{group['male'] + group['female']}, total {group['total']}",
                )
            )
    if registered is not None:
        dpt = registered["dpt"]["total"]
        if dpt > rules.max_registered:
            flags.append(
                Flag(
                    "registered-over-limit",
                    "registered.dpt",
                    f"{dpt} registered, a station has at most {rules.max_registered}",
                )
            )
        if voters is not None:
            if voters["dpt"]["total"] > dpt:
                flags.append(
                    Flag(
                        "dpt-voters-over-registered",
                        "voters.dpt",
                        f"{voters['dpt']['total']} DPT voters, {dpt} registered",
                    )
                )
            allowed = dpt + math.ceil(dpt * rules.margin_ratio)
            if voters["total"]["total"] > allowed:
                flags.append(
                    Flag(
                        "voters-over-registered",
                        "voters.total",
                        f"{voters['total']['total']} voters, {dpt} registered "
                        f"(+{allowed - dpt} for additional lists)",
                    )
                )
    ballots = body.get("ballots")
    if ballots is not None:
        used, unused = ballots["used"], ballots["unused"]
        damaged = ballots.get("damaged", 0)
        if used != total or ballots["received"] != used + unused + damaged:
            flags.append(
                Flag(
                    "ballot-papers",
                    "ballots",
                    f"received {ballots['received']}, used {used}, unused {unused}, "
                    f"damaged {damaged}; total votes {total}",
                )
            )
    return flags


def totals_of(body: Mapping[str, Any]) -> dict[str, Any]:
    """What a tally or recap contributes to the recap above it."""
    source = body.get("totals", body)
    out: dict[str, Any] = {k: source[k] for k in ("valid", "invalid", "total")}
    if "votes" in source:
        out["votes"] = dict(source["votes"])
    if "parties" in source:
        out["parties"] = {
            pid: {"party": p["party"], "candidates": dict(p["candidates"])}
            for pid, p in source["parties"].items()
        }
    return out


def add_totals(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The sum of totals (``totals_of``), member by member."""
    out: dict[str, Any] = {"valid": 0, "invalid": 0, "total": 0}
    for part in parts:
        for key in ("valid", "invalid", "total"):
            out[key] += part[key]
        if "votes" in part:
            votes = out.setdefault("votes", {})
            for cid, n in part["votes"].items():
                votes[cid] = votes.get(cid, 0) + n
        if "parties" in part:
            parties = out.setdefault("parties", {})
            for pid, p in part["parties"].items():
                mine = parties.setdefault(pid, {"party": 0, "candidates": {}})
                mine["party"] += p["party"]
                for cid, n in p["candidates"].items():
                    mine["candidates"][cid] = mine["candidates"].get(cid, 0) + n
    return out


def sum_of(bodies: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """What ``bodies`` (tallies or recaps) contribute, summed.

    ``add_totals`` of each body's ``totals_of``, without copying each body's
    totals first: ``add_totals`` reads only the members ``totals_of`` keeps.
    """
    return add_totals(body.get("totals", body) for body in bodies)


def fold_totals(totals: Mapping[str, Any]) -> dict[str, Any]:
    """Totals as a recap above the candidate lists counts them.

    Above the level where one candidate list applies, candidates of different
    lists cannot be added up meaningfully (and would not fit one entry): such a
    recap counts no candidate. A party ballot keeps each party, with ``party``
    the party's whole vote (its own votes plus its candidates') and no
    candidates; a candidate ballot (DPD) keeps valid, invalid and total only.
    Folding is linear and folded totals fold to themselves, so the fold of a
    sum is the sum of the folds.
    """
    out: dict[str, Any] = {k: totals[k] for k in ("valid", "invalid", "total")}
    if "parties" in totals:
        out["parties"] = {
            pid: {
                "party": p["party"] + sum(p["candidates"].values()),
                "candidates": {},
            }
            for pid, p in totals["parties"].items()
        }
    return out


def differences(
    recorded: object, summed: object, where: str
) -> Iterable[tuple[str, object, object]]:
    """Each place (dotted path) where two totals differ, with both values."""
    if isinstance(recorded, dict) or isinstance(summed, dict):
        recorded = recorded if isinstance(recorded, dict) else {}
        summed = summed if isinstance(summed, dict) else {}
        for key in sorted(set(recorded) | set(summed)):
            yield from differences(
                recorded.get(key, 0), summed.get(key, 0), f"{where}.{key}"
            )
    elif recorded != summed:
        yield where, recorded, summed


def recap_flags(
    body: Mapping[str, Any],
    children: Iterable[Mapping[str, Any]],
    candidates: bool = True,
) -> list[Flag]:
    """``recap-sum`` for every total of ``body`` that is not its children's sum.

    ``children`` are the bodies of exactly the child revisions the recap names;
    ``candidates`` says whether the recap counts candidates (False above the
    candidate lists: then the sum is folded, see ``fold_totals``).
    """
    summed = sum_of(children)
    if not candidates:
        summed = fold_totals(summed)
    return [
        Flag("recap-sum", where, f"recorded {recorded}, children sum to {total}")
        for where, recorded, total in differences(totals_of(body), summed, "totals")
    ]
