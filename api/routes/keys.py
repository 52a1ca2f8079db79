"""The key registry as of any tree size (replayed from the log itself)."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.deps import Service
from api.schemas import KeysModel

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["keys"])


@router.get(
    "/keys",
    response_model=KeysModel,
    responses={404: {"description": "problem+json"}},
    summary="Every key granted up to a tree size, with role, scope and status",
)
async def keys(service: Service, size: int | None = Query(None, ge=0)) -> JSONResponse:
    """``size`` defaults to the current tree size."""
    return JSONResponse(service.keys_json(size))
