"""Writes (one envelope or a batch) and entry reads."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

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
from ledger.admission import Submission
from ledger.ledger import AppendReceipt
from ledger.writer import RecordWriter

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
) -> tuple[RecordWriter, ApiSettings, RateLimits]:
    # The write routes read these straight off the app: FastAPI's dependency
    # resolution costs more per request than the lookups it saves.
    state = request.app.state
    log: ServedLog = state.log
    return writer_of(log), state.settings, state.limits


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _check_client(request: Request, limits: RateLimits) -> None:
    wait = limits.client.take(_client(request), time.monotonic())
    if wait:
        raise ProblemError(
            "rate-limited", "too many requests from this address", retry_after=wait
        )


def _check_keys(submission: Submission, limits: RateLimits) -> None:
    now = time.monotonic()
    for keyid in submission.signers:
        wait = limits.key.take(keyid, now)
        if wait:
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
    request: Request, writer: RecordWriter, submission: Submission
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
    writer, settings, limits = _collaborators(request)
    _check_client(request, limits)
    envelope = await read_json(request, settings.max_body_bytes)
    if not isinstance(envelope, dict):
        raise ProblemError("malformed-input", "expected a DSSE envelope object")
    submission = writer.prepare(envelope)
    request.state.keyids = list(submission.signers)  # for the access log
    _check_keys(submission, limits)
    _check_in_flight(request, settings, 1)
    receipt = await _submit(request, writer, submission)
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
    writer, settings, limits = _collaborators(request)
    _check_client(request, limits)
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
    _check_in_flight(request, settings, len(envelopes))
    prepared: list[Submission | ProblemError] = []
    for envelope in envelopes:
        try:
            submission = writer.prepare(envelope)
            _check_keys(submission, limits)
            prepared.append(submission)
        except Exception as e:  # each envelope is refused on its own
            prepared.append(problem_for(e))
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
    for item in prepared:
        outcome: Any = item if isinstance(item, ProblemError) else next(outcomes)
        if isinstance(outcome, BaseException):
            problem = problem_for(outcome)
            body_ = problem_body(problem)
            results.append({"status": body_["status"], "problem": body_})
        else:
            results.append(
                {
                    "status": 200 if outcome.duplicate else 201,
                    "receipt": outcome.to_json(),
                }
            )
    return JSONResponse({"results": results})


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
