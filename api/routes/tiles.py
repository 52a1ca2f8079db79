"""The C2SP tlog-tiles read API under /log/: checkpoint, hash tiles, entry bundles.

Full tiles and full bundles never change: ``immutable`` for a year. Partial ones
are superseded as the log grows and the checkpoint changes at every commit: short
lifetimes.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from api.deps import Reader
from api.errors import ProblemError
from verifier.errors import MalformedInput
from verifier.tile_format import TILE_WIDTH, parse_tile_path

__all__ = ["router"]

router = APIRouter(prefix="/log", tags=["tlog-tiles"])
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=5"
CHECKPOINT = "no-cache"


@router.get(
    "/checkpoint",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
    summary="The latest signed checkpoint (C2SP tlog-checkpoint)",
)
async def checkpoint(reader: Reader) -> Response:
    """The current checkpoint note, as text."""
    return Response(
        reader.checkpoint(),
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": CHECKPOINT},
    )


@router.get(
    "/tile/{path:path}",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        404: {"description": "problem+json"},
    },
    summary="A hash tile or an entry bundle (C2SP tlog-tiles paths)",
)
async def tile(path: str, reader: Reader) -> Response:
    """``tile/<L>/<N>[.p/<W>]`` and ``tile/entries/<N>[.p/<W>]``."""
    try:
        level, index, width = parse_tile_path(f"tile/{path}")
    except MalformedInput as e:
        raise ProblemError("not-found", f"not a tile path: {e}") from e
    if level is None:
        data = reader.entry_bundle(index, width)
    else:
        data = reader.tile(level, index, width)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Cache-Control": IMMUTABLE if width == TILE_WIDTH else SHORT},
    )
