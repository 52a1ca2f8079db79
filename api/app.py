"""The HTTP ledger API: ``create_app`` wires a running ``RecordService`` to routes.

Nothing is built at import time: the caller opens the log (``saksi serve`` does it
from its flags) and passes it in. Every error leaves as RFC 9457 problem+json with
a stable type (``api.errors``); client mistakes are 4xx, never a 500, and no
response carries a stack trace.
"""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import RateLimits
from api.errors import (
    PROBLEM_MEDIA_TYPE,
    PROBLEMS,
    ProblemError,
    problem_body,
    problem_for,
)
from api.routes import entries, health, keys, proofs, tiles
from api.settings import ApiSettings
from ledger.errors import LedgerError
from ledger.service import RecordService
from verifier.errors import VerificationError

__all__ = ["create_app"]

log = logging.getLogger("saksi.api")


def _respond(problem: ProblemError, request: Request) -> JSONResponse:
    body = problem_body(problem, instance=request.url.path)
    headers = {}
    if problem.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(problem.retry_after)))
    return JSONResponse(
        body, status_code=body["status"], media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def create_app(service: RecordService, settings: ApiSettings | None = None) -> FastAPI:
    """The FastAPI app serving ``service`` (already started by the caller)."""
    settings = settings or ApiSettings()
    app = FastAPI(
        title="Saksi ledger API",
        version="0.1.0",
        description=(
            "Signed election records in an RFC 6962 transparency log. Writes take "
            "DSSE envelopes; reads follow C2SP tlog-tiles under /log/. Errors are "
            "RFC 9457 problem+json; see /problems/{type}."
        ),
    )
    app.state.service = service
    app.state.settings = settings
    app.state.limits = RateLimits(settings)
    app.state.in_flight = 0

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return _respond(exc, request)

    @app.exception_handler(LedgerError)
    async def _ledger(request: Request, exc: LedgerError) -> JSONResponse:
        problem = problem_for(exc)
        if PROBLEMS[problem.cause].status >= 500:
            log.error("%s: %s", type(exc).__name__, exc)
        return _respond(problem, request)

    @app.exception_handler(VerificationError)
    async def _verification(request: Request, exc: VerificationError) -> JSONResponse:
        return _respond(problem_for(exc), request)

    @app.exception_handler(RequestValidationError)
    async def _validation(
        request: Request, exc: RequestValidationError
    ) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        detail = f"{where}: {first.get('msg', 'invalid')}"[:300]
        return _respond(ProblemError("malformed-request", detail), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        cause = "not-found" if exc.status_code == 404 else "malformed-request"
        problem = ProblemError(cause, str(exc.detail)[:200])
        response = _respond(problem, request)
        if exc.status_code not in (404, 400):
            response.status_code = exc.status_code
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The traceback stays in the server's log; the client learns nothing.
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _respond(ProblemError("internal-error", "internal error"), request)

    for module in (entries, proofs, keys, tiles, health):
        app.include_router(module.router)
    return app
