"""Liveness, and the documentation of every problem type."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.deps import Log, Reader, Settings
from api.errors import PROBLEMS, ProblemError
from api.metrics import CONTENT_TYPE, Metrics
from ledger.health import ready

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


@router.get(
    "/readyz",
    responses={503: {"description": "not ready (problem+json)"}},
    summary="Readiness: a checkpoint signed (and cosigned) within the limit",
)
async def readyz(log: Log, settings: Settings) -> JSONResponse:
    """200 while the log signs checkpoints in time, else 503 with the reasons.

    Ready: writes not stopped, a checkpoint signed within
    ``SAKSI_READY_MAX_AGE`` seconds and, with witnesses configured, a
    cosignature received within it too. For load balancers and uptime checks.
    """
    health = log.health()
    reasons = ready(health, settings.ready_max_age)
    if reasons:
        raise ProblemError("not-ready", "; ".join(reasons))
    return JSONResponse(
        {
            "status": "ready",
            "tree_size": health.published_size,
            "integrated_size": health.integrated_size,
            "checkpoint_age_seconds": round(max(0.0, health.now - health.signed_at), 3),
        }
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """The Prometheus exposition of this process's metrics."""
    exported: Metrics | None = request.app.state.metrics
    if exported is None:
        raise ProblemError("not-found", "metrics are switched off on this server")
    return Response(exported.render(), media_type=CONTENT_TYPE)


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
