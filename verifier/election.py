"""The election record schemas: regions, tallies, recaps, candidates, parties.

Subjects (the region group is what scope checks use):

* ``regions/<district 6>``: ``regions.registry/v1``, the commission's region table
  for one district: its province, regency and villages, and each village's polling
  stations (TPS numbers). A later revision adds or retires villages and stations.
* ``results/<ballot>/<tps 13>``: ``results.tally/v1``, what one count form (C.Hasil)
  says for one ballot at one polling station. Each stage is its own revision:
  machine reading, officer-confirmed, authority correction, recount (PSU).
* ``recaps/<ballot>/<region>``: ``results.recap/v1``, a village (10 digits), district
  (6), regency (4), province (2) or national (``recaps/<ballot>/national``) recap:
  its totals and the children it sums, each named by code and payload hash.
* ``candidates/<ballot>/<region or national>``: ``candidates.change/v1``, the
  candidates (and their parties) standing on a ballot in a region (the longest
  registered prefix of a polling station's code applies to it).
* ``parties/national``: ``parties.change/v1``, the registered parties.
* ``voters/<tps 13>/<batch>``: ``voters.change/v1``, one batch of changes to a
  station's voter list: the registered counts after it and salted commitments of
  the entries added, removed and transferred. No personal data.

Ballot types use the commission's codes: ``ppwp`` (president), ``pdpr`` (DPR),
``pdpd`` (DPD), ``pdprdp`` (provincial council), ``pdprdk`` (regency council).
Candidate, party and region identifiers are digit strings, as the commission
publishes them.
"""

from __future__ import annotations

from verifier.body_schema import (
    Enum,
    Hex,
    Int,
    List,
    Map,
    Nullable,
    Obj,
    Schema,
    Str,
)

__all__ = [
    "BALLOTS",
    "CANDIDATES",
    "CORRECTION_STAGES",
    "ELECTION_SCHEMAS",
    "LEVELS",
    "PARTIES",
    "PARTY_BALLOTS",
    "REASON_CODES",
    "RECAP",
    "REGIONS",
    "STAGES",
    "TALLY",
    "VOTERS",
    "child_subject",
    "level_of",
    "recap_subject",
    "tally_subject",
]

BALLOTS = ("ppwp", "pdpr", "pdpd", "pdprdp", "pdprdk")
# Ballots counted by party, with votes for the party itself and for each of its
# candidates; the presidential and DPD ballots count individual candidates.
PARTY_BALLOTS = frozenset({"pdpr", "pdprdp", "pdprdk"})
STAGES = ("machine_reading", "officer_confirmed", "authority_correction", "recount")
CORRECTION_STAGES = frozenset({"authority_correction", "recount"})
REASON_CODES = (
    "ocr_error",
    "data_entry_error",
    "arithmetic_error",
    "plenary_decision",
    "recount_order",
    "court_order",
    "child_corrected",
    "other",
)
# Region code length -> recap level (and the level of the recap's children).
LEVELS = {10: "village", 6: "district", 4: "regency", 2: "province", 0: "national"}
_CHILD_LENGTH = {10: 13, 6: 10, 4: 6, 2: 4, 0: 2}

_BALLOT = "(?P<ballot>ppwp|pdpr|pdpd|pdprdp|pdprdk)"
_ID = Str(12, 1, r"[0-9]{1,12}")
_NAME = Str(200, 1)
_COUNT = Int(0, 1_000_000)  # one polling station (2024: at most 300 voters)
_TOTAL = Int()  # recaps, up to the national total
_LPJ = Obj({"male": _COUNT, "female": _COUNT, "total": _COUNT})
_HTTPS = Str(500, 1, r"https://\S+")


def _votes(count: Int) -> Map:
    return Map(_ID, count, max_items=400)


def _parties(count: Int) -> Map:
    return Map(_ID, Obj({"party": count, "candidates": _votes(count)}), max_items=60)


REGIONS = Schema(
    name="regions.registry/v1",
    subject=r"regions/(?P<region>[0-9]{6})",
    description="one district of the commission's region table, with its stations",
    max_age_days=365,
    body=Obj(
        {
            "province": Obj({"code": Str(2, 2, r"[0-9]{2}"), "name": _NAME}),
            "regency": Obj({"code": Str(4, 4, r"[0-9]{4}"), "name": _NAME}),
            "district": Obj({"name": _NAME}),
            "villages": Map(
                Str(10, 10, r"[0-9]{10}"),
                Obj({"name": _NAME, "tps": List(Int(1, 999), 2000, unique=True)}),
                max_items=500,
            ),
            "source": Str(300, 1),
        }
    ),
)

TALLY = Schema(
    name="results.tally/v1",
    subject=rf"results/{_BALLOT}/(?P<region>[0-9]{{13}})",
    description="one count form (C.Hasil): one ballot at one polling station",
    max_age_days=90,
    body=Obj(
        {
            "stage": Enum(STAGES),
            "votes": _votes(_COUNT),
            "parties": _parties(_COUNT),
            "valid": _COUNT,
            "invalid": _COUNT,
            "total": _COUNT,
            "registered": Obj({"dpt": _LPJ}),
            "voters": Obj({"dpt": _LPJ, "dptb": _LPJ, "dpk": _LPJ, "total": _LPJ}),
            "ballots": Obj(
                {
                    "received": _COUNT,
                    "used": _COUNT,
                    "unused": _COUNT,
                    "damaged": _COUNT,
                },
                optional=frozenset({"damaged"}),
            ),
            "form": List(
                Obj(
                    {"page": Int(1, 50), "sha256": Nullable(Hex()), "url": _HTTPS},
                    optional=frozenset({"url"}),
                ),
                50,
            ),
            "source": Obj(
                {
                    "system": Str(40, 1, r"[a-z0-9_.-]+"),
                    "url": _HTTPS,
                    "published_at": Str(40, 1),
                },
                optional=frozenset({"url", "published_at"}),
            ),
            "correction": Obj(
                {"reason_code": Enum(REASON_CODES), "reference": Str(500, 1)}
            ),
        },
        optional=frozenset(
            {
                "votes",
                "parties",
                "registered",
                "voters",
                "ballots",
                "form",
                "source",
                "correction",
            }
        ),
    ),
)

RECAP = Schema(
    name="results.recap/v1",
    subject=rf"recaps/{_BALLOT}/(?:national|(?P<region>[0-9]{{2}}|[0-9]{{4}}|"
    r"[0-9]{6}|[0-9]{10}))",
    description="a recap of one region at one level: totals and the children summed",
    max_age_days=90,
    body=Obj(
        {
            "totals": Obj(
                {
                    "votes": _votes(_TOTAL),
                    "parties": _parties(_TOTAL),
                    "valid": _TOTAL,
                    "invalid": _TOTAL,
                    "total": _TOTAL,
                },
                optional=frozenset({"votes", "parties"}),
            ),
            # child code -> payload hash of the child revision summed
            "children": Map(Str(13, 2, r"[0-9]+"), Hex(), max_items=600, min_items=1),
            "correction": Obj(
                {"reason_code": Enum(REASON_CODES), "reference": Str(500, 1)}
            ),
        },
        optional=frozenset({"correction"}),
    ),
)

CANDIDATES = Schema(
    name="candidates.change/v1",
    subject=rf"candidates/{_BALLOT}/(?:national|(?P<region>[0-9]{{2}}|[0-9]{{4}}|"
    r"[0-9]{6}))",
    description="the candidates standing on a ballot in a region (the whole list)",
    max_age_days=365,
    body=Obj(
        {
            "candidates": Map(
                _ID,
                Obj(
                    {"number": Int(1, 999), "name": _NAME, "party": _ID},
                    optional=frozenset({"party"}),
                ),
                max_items=2000,
            ),
        }
    ),
)

PARTIES = Schema(
    name="parties.change/v1",
    subject=r"parties/national",
    description="the parties registered for the election (the whole list)",
    max_age_days=365,
    body=Obj(
        {
            "parties": Map(
                _ID, Obj({"number": Int(1, 999), "name": _NAME}), max_items=100
            ),
        }
    ),
)

# A salted commitment to one voter-list entry: SHA-256 of a secret salt and the
# entry, kept by the commission. Never the entry itself: the log holds no personal
# data, ever. Only hex, integers and fixed words: no field of a voter-data record
# can hold a name, a national ID number or a birth date in clear.
_COMMITMENTS = List(Hex(), 5000, unique=True)
VOTERS = Schema(
    name="voters.change/v1",
    subject=r"voters/(?P<region>[0-9]{13})/(?P<batch>[1-9][0-9]{0,5})",
    description="one batch of voter-list changes at a polling station: counts and "
    "salted commitments, no personal data",
    max_age_days=30,
    body=Obj(
        {
            "kind": Enum(("update", "final")),
            "registered": Obj({"male": _COUNT, "female": _COUNT, "total": _COUNT}),
            "added": _COMMITMENTS,
            "removed": _COMMITMENTS,
            "transferred_in": _COMMITMENTS,
            "transferred_out": _COMMITMENTS,
        }
    ),
)

ELECTION_SCHEMAS = {
    s.name: s for s in (REGIONS, TALLY, RECAP, CANDIDATES, PARTIES, VOTERS)
}


def tally_subject(ballot: str, tps: str) -> str:
    """``results/<ballot>/<tps>``."""
    return f"results/{ballot}/{tps}"


def recap_subject(ballot: str, region: str) -> str:
    """``recaps/<ballot>/<region>``; national: ``recaps/<ballot>/national``."""
    return f"recaps/{ballot}/{region or 'national'}"


def level_of(region: str) -> str:
    """The recap level of a region code ("" is national).

    Raises:
        KeyError: not a recap level (2, 4, 6 or 10 digits, or national).
    """
    return LEVELS[len(region)]


def child_subject(ballot: str, region: str, code: str) -> str | None:
    """The subject of child ``code`` of the recap of ``region``, or None.

    None when ``code`` is not a direct child of ``region``: one level down (a
    village recap's children are its polling stations' tallies) and inside it.
    """
    length = _CHILD_LENGTH.get(len(region))
    if length is None or len(code) != length or not code.startswith(region):
        return None
    return tally_subject(ballot, code) if length == 13 else recap_subject(ballot, code)
