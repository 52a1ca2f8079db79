"""Liveness, and the documentation of every problem type."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import Log, Reader
from api.errors import PROBLEMS, ProblemError

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the log's size and last checkpoint time")
async def healthz(reader: Reader) -> JSONResponse:
    """200 while the log is served."""
    head = reader.tree().head
    return JSONResponse(
        {
            "status": "ok",
            "tree_size": head.size,
            "checkpoint_made_at_ms": head.made_at_ms,
        }
    )


@router.get("/v1/log", summary="The log's origin, verifier key and size")
async def log_info(log: Log) -> JSONResponse:
    """What a client needs before it pins the log key (compare it out of band)."""
    current = log.reader.current()
    head = current.tree.head
    return JSONResponse(
        {
            "origin": log.origin,
            "verifier_key": str(log.verifier_key),
            "tree_size": head.size,
            "checkpoint": head.note.decode(),
            "witnessed_checkpoint": current.note.decode(),
            "witnesses": log.witness_status(),
        }
    )


@router.get(
    "/problems/{cause}",
    responses={404: {"description": "problem+json"}},
    summary="What a problem type means",
)
async def problem_doc(cause: str) -> JSONResponse:
    """The title and status of the problem type ``/problems/<cause>``."""
    spec = PROBLEMS.get(cause)
    if spec is None:
        raise ProblemError("not-found", f"no problem type {cause[:60]!r}")
    return JSONResponse(
        {"type": f"/problems/{cause}", "title": spec.title, "status": spec.status}
    )
