"""The key registry as of any tree size (replayed from the log itself)."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.deps import Reader, Registries
from api.schemas import KeysModel
from ledger.read.registry import keys_listing

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["keys"])


@router.get(
    "/keys",
    response_model=KeysModel,
    responses={404: {"description": "problem+json"}},
    summary="Every key granted up to a tree size, with role, scope and status",
)
async def keys(
    reader: Reader, registries: Registries, size: int | None = Query(None, ge=0)
) -> JSONResponse:
    """``size`` defaults to the latest signed tree's size."""
    tree_size = reader.size if size is None else size
    return JSONResponse(keys_listing(registries.registry_at(tree_size), tree_size))
