"""The HTTP ledger API: ``create_app`` wires a running log to routes.

Nothing is built at import time: the caller opens the log (``saksi serve`` does it
from its flags: a ``RecordLog`` that writes, or a ``ReadOnlyLog`` that only
reads) and passes it in. Every error leaves as RFC 9457 problem+json with
a stable type (``api.errors``); client mistakes are 4xx, never a 500, and no
response carries a stack trace.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TextIO, get_args

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from api.deps import RateLimits, ServedLog
from api.errors import ProblemError, client_gone, problem_response
from api.fastlane import FastLane, SaksiAPI
from api.metrics import Metrics
from api.routes import entries, explorer, health, keys, proofs, results, tiles
from api.security_log import SecurityLog
from api.settings import ApiSettings
from api.write_watch import WriteWatch
from explorer import trust_document
from ledger.errors import LedgerError
from results import ResultsIndex
from verifier.errors import VerificationError
from verifier.note import VerifierKey

__all__ = ["create_app"]

_HTTP_CAUSES = {404: "not-found", 405: "method-not-allowed", 413: "body-too-large"}


_WHOLE = re.compile(r"0|[1-9][0-9]*")


def _one_value_each(request: Request) -> None:
    """Refuse a query parameter of the route given twice, or a number not in digits.

    ``?index=1&index=2`` is ambiguous: taking either value would answer a
    question the client may not have asked. An integer parameter takes plain
    decimal digits only (``0.0``, ``1e3`` or ``+1`` are not an index, though a
    lenient parser reads them as one). Both are 400 ``malformed-request``.
    """
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    whole = {
        param.alias
        for param in dependant.query_params
        if int in (param.field_info.annotation, *get_args(param.field_info.annotation))
    }
    names = {param.alias for param in dependant.query_params}
    seen: set[str] = set()
    for name, value in request.query_params.multi_items():
        if name in names and name in seen:
            raise ProblemError(
                "malformed-request", f"query parameter {name!r} given more than once"
            )
        if name in whole and not _WHOLE.fullmatch(value):
            raise ProblemError(
                "malformed-request",
                f"query parameter {name!r} must be a whole number in plain digits",
            )
        seen.add(name)


def create_app(
    log: ServedLog,
    settings: ApiSettings | None = None,
    *,
    metrics: bool = True,
    security_log: TextIO | None = None,
    backend: str = "",
    witnesses: Sequence[VerifierKey] = (),
    quorum: int | None = None,
) -> SaksiAPI:
    """The FastAPI app serving ``log`` (already started by the caller).

    ``metrics``: count and serve ``/metrics`` (``api.metrics``);
    ``security_log``: where the security event lines go (None: nowhere);
    ``backend``: the database's name, for ``saksi_build_info``;
    ``witnesses``, ``quorum``: the witness policy the results explorer pins
    (``/explorer/trust.json``): the witnesses' cosigner keys and how many of
    them a checkpoint must carry (default: one, when there are witnesses).
    """
    settings = settings or ApiSettings()
    app = SaksiAPI(
        # /v1/entries/ is not /v1/entries: a 404, not a redirect to follow.
        redirect_slashes=False,
        dependencies=[Depends(_one_value_each)],
        title="Saksi ledger API",
        version="0.1.0",
        description=(
            "Signed election records in an RFC 6962 transparency log. Writes take "
            "DSSE envelopes; reads follow C2SP tlog-tiles under /log/. Errors are "
            "RFC 9457 problem+json; see /problems/{type}."
        ),
    )
    app.state.log = log
    app.state.explorer_trust = trust_document(
        log.origin, log.verifier_key, witnesses, quorum
    )
    # Recap staleness and corrections per region, derived from the log.
    app.state.results_index = ResultsIndex(log.entries)
    app.state.settings = settings
    app.state.limits = RateLimits(settings)
    app.state.in_flight = 0
    app.state.metrics = None
    if metrics:
        app.state.metrics = app.metrics = Metrics(
            log,
            backend=backend,
            max_age=settings.ready_max_age,
            in_flight=lambda: int(app.state.in_flight),
        )
        writer = log.writer
        if writer is not None:
            writer.observe(app.metrics)
            genesis = writer.gate.registry.genesis
            app.metrics.prime(
                () if genesis is None else genesis.policy.roles,
                writer.gate.election.children_of(""),
            )
    events = None if security_log is None else SecurityLog(security_log)
    app.state.security_log = events
    if events is not None and app.state.metrics is not None:
        app.state.metrics.security_dropped = lambda: events.dropped
    app.state.watch = WriteWatch(app.state.metrics, events, _roles_of(log))

    @app.exception_handler(ProblemError)
    @app.exception_handler(LedgerError)
    @app.exception_handler(VerificationError)
    async def _refused(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(
        request: Request, exc: RequestValidationError
    ) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        detail = f"{where}: {first.get('msg', 'invalid')}"[:300]
        return problem_response(
            ProblemError("malformed-request", detail), request.url.path
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        cause = _HTTP_CAUSES.get(exc.status_code, "malformed-request")
        detail = str(exc.detail)[:200]
        if cause == "method-not-allowed":
            detail = f"{request.method[:10]} is not answered here"
        response = problem_response(ProblemError(cause, detail), request.url.path)
        if cause == "method-not-allowed" and exc.headers and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, _exc: ClientDisconnect) -> Response:
        client_gone(request.method, request.url.path)
        return Response(status_code=400)  # nobody is there to read it

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(exc, request.url.path, request.method)

    for module in (entries, proofs, keys, results, tiles, health, explorer):
        app.include_router(module.router)
    app.include_router(results.regions)
    app.fast_lane = FastLane(app, log.reader)
    return app


def _roles_of(log: ServedLog) -> Callable[[str], str | None]:
    """The role the live key registry gives a key id, None for unknown keys."""
    writer = log.writer
    if writer is None:
        return lambda _keyid: None
    gate = writer.gate

    def role(keyid: str) -> str | None:
        grant = gate.registry.grants.get(keyid)
        return None if grant is None else grant.role

    return role
