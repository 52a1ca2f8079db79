"""Writes (one envelope or a batch) and entry reads."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from api.bodies import read_json
from api.deps import Entries, RateLimits, Reader, ServedLog, writer_of
from api.errors import ProblemError, problem_body, problem_for
from api.schemas import (
    BatchResultModel,
    EntryModel,
    HistoryModel,
    ProblemModel,
    ReceiptModel,
)
from api.settings import ApiSettings
from api.views import entry_json
from api.write_watch import WriteWatch
from ledger.admission import Submission
from ledger.ledger import AppendReceipt
from ledger.writer import Writer

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["entries"])

_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ProblemModel, "description": "problem+json"}
    for code in (400, 403, 409, 413, 415, 422, 429, 503)
}
_CREATED: dict[int | str, dict[str, Any]] = {
    200: {"model": ReceiptModel, "description": "already logged: the original entry"}
}


def _collaborators(
    request: Request,
) -> tuple[Writer, ApiSettings, RateLimits]:
    # The write routes read these straight off the app: FastAPI's dependency
    # resolution costs more per request than the lookups it saves.
    state = request.app.state
    log: ServedLog = state.log
    return writer_of(log), state.settings, state.limits


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _check_client(request: Request, limits: RateLimits, watch: WriteWatch) -> None:
    wait = limits.client.take(_client(request), time.monotonic())
    if wait:
        watch.rate_limited("client")
        raise ProblemError(
            "rate-limited", "too many requests from this address", retry_after=wait
        )


def _check_keys(submission: Submission, limits: RateLimits, watch: WriteWatch) -> None:
    now = time.monotonic()
    for keyid in submission.signers:
        wait = limits.key.take(keyid, now)
        if wait:
            watch.rate_limited("key")
            raise ProblemError(
                "rate-limited",
                f"too many submissions signed by key {keyid}",
                retry_after=wait,
            )


def _check_in_flight(request: Request, settings: ApiSettings, count: int) -> None:
    if request.app.state.in_flight + count > settings.max_in_flight:
        raise ProblemError(
            "overloaded", "too many submissions in flight", retry_after=1.0
        )


async def _submit(
    request: Request, writer: Writer, submission: Submission
) -> AppendReceipt:
    request.app.state.in_flight += 1
    try:
        return await writer.submit(submission)
    finally:
        request.app.state.in_flight -= 1


@router.post(
    "/entries",
    status_code=201,
    response_model=ReceiptModel,
    responses=_CREATED | _WRITE_ERRORS,
    summary="Append one signed record (a DSSE envelope)",
)
async def post_entry(request: Request) -> JSONResponse:
    """Answered after the durable commit, with the receipt; idempotent."""
    started = time.perf_counter()
    watch: WriteWatch = request.app.state.watch
    submission: Submission | None = None
    try:
        writer, settings, limits = _collaborators(request)
        _check_client(request, limits, watch)
        envelope = await read_json(request, settings.max_body_bytes)
        if not isinstance(envelope, dict):
            raise ProblemError("malformed-input", "expected a DSSE envelope object")
        submission = writer.prepare(envelope)
        request.state.keyids = list(submission.signers)  # for the access log
        _check_keys(submission, limits, watch)
        _check_in_flight(request, settings, 1)
        receipt = await _submit(request, writer, submission)
    except ClientDisconnect:
        raise
    except Exception as e:  # every refusal is reported, then answered
        watch.refused(request, problem_for(e), submission)
        raise
    watch.appended(request, submission, receipt)
    watch.finished("/v1/entries", time.perf_counter() - started)
    return JSONResponse(
        receipt.to_json(),
        status_code=200 if receipt.duplicate else 201,
    )


@router.post(
    "/entries/batch",
    response_model=BatchResultModel,
    responses=_WRITE_ERRORS,
    summary="Append many envelopes; each is accepted or refused on its own",
)
async def post_batch(request: Request) -> JSONResponse:
    """``{"envelopes": [...]}`` in; one ``{status, receipt | problem}`` each out."""
    started = time.perf_counter()
    watch: WriteWatch = request.app.state.watch
    try:
        writer, settings, limits = _collaborators(request)
        _check_client(request, limits, watch)
        envelopes = await _batch_body(request, settings)
        _check_in_flight(request, settings, len(envelopes))
    except ClientDisconnect:
        raise
    except Exception as e:  # the whole request is refused
        watch.refused(request, problem_for(e))
        raise
    prepared: list[Submission | ProblemError] = []
    for envelope in envelopes:
        submission: Submission | None = None
        try:
            submission = writer.prepare(envelope)
            _check_keys(submission, limits, watch)
            prepared.append(submission)
        except Exception as e:  # each envelope is refused on its own
            problem = problem_for(e)
            watch.refused(request, problem, submission)
            prepared.append(problem)
    calls = [
        _submit(request, writer, item)
        for item in prepared
        if isinstance(item, Submission)
    ]
    request.state.keyids = sorted(
        {k for item in prepared if isinstance(item, Submission) for k in item.signers}
    )
    outcomes = iter(await asyncio.gather(*calls, return_exceptions=True))
    results: list[dict[str, Any]] = []
    receipts = 0
    for item in prepared:
        if isinstance(item, ProblemError):
            body_ = problem_body(item)
            results.append({"status": body_["status"], "problem": body_})
            continue
        outcome: AppendReceipt | BaseException = next(outcomes)
        if isinstance(outcome, BaseException):
            problem = problem_for(outcome)
            watch.refused(request, problem, item)
            body_ = problem_body(problem)
            results.append({"status": body_["status"], "problem": body_})
        else:
            watch.appended(request, item, outcome)
            receipts += 1
            results.append(
                {
                    "status": 200 if outcome.duplicate else 201,
                    "receipt": outcome.to_json(),
                }
            )
    if receipts:
        watch.finished("/v1/entries/batch", time.perf_counter() - started)
    return JSONResponse({"results": results})


async def _batch_body(request: Request, settings: ApiSettings) -> list[Any]:
    """The envelopes of a batch request, each at least an object."""
    body = await read_json(request, settings.max_batch_bytes)
    if not isinstance(body, dict) or set(body) != {"envelopes"}:
        raise ProblemError("malformed-request", 'expected {"envelopes": [...]}')
    envelopes = body["envelopes"]
    if not isinstance(envelopes, list) or not 1 <= len(envelopes) <= settings.max_batch:
        raise ProblemError(
            "malformed-request",
            f"envelopes must be a list of 1 to {settings.max_batch} envelopes",
        )
    for number, envelope in enumerate(envelopes):
        if not isinstance(envelope, dict):
            raise ProblemError(
                "malformed-request", f"envelopes[{number}] is not an object"
            )
    return envelopes


@router.get(
    # An integer, so that /v1/entries/batch is never an entry (GET there: 405).
    "/entries/{index:int}",
    response_model=EntryModel,
    responses={404: {"description": "problem+json"}},
    summary="One entry, decoded",
)
async def get_entry(index: int, entries: Entries) -> JSONResponse:
    """The entry at ``index`` with its envelope and record summary."""
    return JSONResponse(entry_json(entries.entry(index)))


@router.get(
    "/subjects/{subject:path}",
    response_model=HistoryModel,
    responses={404: {"description": "problem+json"}},
    summary="Every revision of a subject, with inclusion proofs",
)
async def get_history(subject: str, reader: Reader, entries: Entries) -> JSONResponse:
    """Oldest first; each proof is to the returned (latest signed) checkpoint."""
    current = reader.latest()  # one snapshot: size and note agree
    checkpoint, size = current.note, current.size
    views = entries.history(subject, size)
    if not views:
        raise ProblemError("not-found", f"no records for subject {subject[:200]!r}")
    revisions = []
    for view in views:
        item = entry_json(view)
        item["inclusion_proof"] = [
            h.hex() for h in reader.inclusion_proof(view.index, size)
        ]
        revisions.append(item)
    return JSONResponse(
        {
            "subject": subject,
            "tree_size": size,
            "checkpoint": checkpoint.decode(),
            "revisions": revisions,
        }
    )
