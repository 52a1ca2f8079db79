"""Results of any region and ballot, with provenance, flags and completeness."""

from __future__ import annotations

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from api.deps import Results
from api.errors import ProblemError
from results import ResultsReader

__all__ = ["regions", "router"]

router = APIRouter(prefix="/v1/results", tags=["results"])
regions = APIRouter(prefix="/v1/regions", tags=["results"])

BALLOT = Path(..., pattern="^(ppwp|pdpr|pdpd|pdprdp|pdprdk)$")
REGION = Path(..., pattern="^(national|[0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{10})$")
FEED_PAGE = 50  # corrections a feed page holds when ``before`` comes alone


def _listed(results: ResultsReader, region: str) -> str:
    """The region code ("" national), if the registry in force lists it."""
    code = "" if region == "national" else region
    if code and not results.election.has_region(code):
        raise ProblemError("not-found", f"region {code} is not in the registry")
    return code


@router.get(
    "/{ballot}/{region}",
    responses={404: {"description": "problem+json"}},
    summary="A region's results: its recap, its children, flags, completeness",
)
async def region_results(
    results: Results,
    ballot: str = BALLOT,
    region: str = REGION,
) -> JSONResponse:
    """``region`` is ``national`` or a 2, 4, 6 or 10-digit code.

    Every number is given with the entry (index, payload hash, signers) that
    says it; a recap lists the children it names that have been superseded
    since (``stale_children``) and those the registry lists that it does not.
    """
    return JSONResponse(results.region(ballot, _listed(results, region)))


@router.get(
    "/{ballot}/{region}/corrections",
    responses={404: {"description": "problem+json"}},
    summary="Every correction in a region, in log order, with what it changed",
)
async def region_corrections(
    results: Results,
    ballot: str = BALLOT,
    region: str = REGION,
    latest: int | None = Query(
        None, ge=1, le=500, description="only the newest N, newest first, paged"
    ),
    before: int | None = Query(
        None,
        ge=0,
        description="a page of the feed (latest, default 50) of those logged "
        "before this entry",
    ),
) -> JSONResponse:
    """Later revisions of forms (authority corrections, recounts) and of recaps.

    By default all of them, in log order. With ``latest``, a page of the newest
    (a feed): ``next`` is the ``before`` of the next page, null on the last.
    """
    if before is not None and latest is None:
        latest = FEED_PAGE  # a page of the feed, of the default size
    code = _listed(results, region)
    return JSONResponse(results.corrections(ballot, code, latest, before))


LEVEL = Path(..., pattern="^(village|district|regency|province|national)$")


@router.get(
    "/{ballot}/{region}/below/{level}",
    responses={
        400: {"description": "problem+json"},
        404: {"description": "problem+json"},
    },
    summary="Every region at one level under a region, compactly, one page at a time",
)
async def regions_below(
    results: Results,
    ballot: str = BALLOT,
    region: str = REGION,
    level: str = LEVEL,
    after: str = Query("", pattern="^[0-9]{0,10}$"),
    limit: int = Query(100, ge=1, le=500),
    totals: str = Query(
        "children",
        pattern="^(children|sum)$",
        description="children: each child's totals; sum: only each region's "
        "sum of its present children's totals",
    ),
) -> JSONResponse:
    """What a recap builder reads, for many regions in one request.

    For each region at ``level`` under ``region`` (codes after ``after``, at
    most ``limit``): its recap's revision, payload hash and stale or unnamed
    children, and each child's latest revision and totals. ``next`` is the
    ``after`` of the next page (null on the last). With ``totals=sum``, each
    region has ``sum`` (its present children's totals added up, before any
    fold) and the children carry no totals.
    """
    code = _listed(results, region)
    try:
        page = results.below(ballot, code, level, after, limit, summed=totals == "sum")
    except KeyError:
        raise ProblemError(
            "malformed-request",
            f"level {level} is not below {region}: ask for a level at or under it",
        ) from None
    return JSONResponse(page)


@regions.get(
    "/{region}/names",
    responses={404: {"description": "problem+json"}},
    summary="Which registry records name a region and its children",
)
async def region_names(results: Results, region: str = REGION) -> JSONResponse:
    """The registry records whose bodies name a region and its children.

    For the region and each child: the latest ``regions/<district>`` record of
    a district in it (subject and entry index). The names are read from those
    entries, which a reader proves like any other.
    """
    return JSONResponse(results.names(_listed(results, region)))
