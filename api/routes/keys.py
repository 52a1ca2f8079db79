"""The key registry as of any tree size (replayed from the log itself)."""

from __future__ import annotations

import base64

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
    tree_size = service.size if size is None else size
    registry = service.registry_at(tree_size)
    threshold = registry.genesis.policy.threshold if registry.genesis else 0
    return JSONResponse(
        {
            "tree_size": tree_size,
            "threshold": threshold,
            "keys": [
                {
                    "keyid": g.keyid,
                    "public_key": base64.b64encode(g.public_key).decode(),
                    "role": g.role,
                    "scope": g.scope,
                    "holder": g.holder,
                    "granted_at": g.granted_at,
                    "expires_at": g.expires_at,
                    "revoked_at": g.revoked_at,
                }
                for g in sorted(registry.grants.values(), key=lambda g: g.granted_at)
            ],
        }
    )
